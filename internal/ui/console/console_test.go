package console_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/store/sqlite"
	"github.com/quikly/webhooks/internal/ui/console"
	"github.com/quikly/webhooks/internal/webhook"
)

// testClock is a settable clock for session expiry.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// bundle is a console over a real SQLite store, driven in-process with httptest recorders.
type bundle struct {
	app     *app.App
	handler http.Handler
	clock   *testClock
	key     string
}

func newBundle(t *testing.T, baseURL string) *bundle {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "quikly.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	clock := &testClock{now: time.Date(2026, 4, 3, 14, 30, 0, 0, time.UTC)}
	a := &app.App{Store: db, BaseURL: baseURL, AllowPrivateTargets: true, Clock: clock}
	key, err := a.CreateAPIKey(context.Background(), "acme")
	require.NoError(t, err)
	return &bundle{app: a, handler: console.New(a, nil), clock: clock, key: key}
}

// do sends one request to the console; form, when set, is the urlencoded body.
func (b *bundle) do(t *testing.T, method, path string, form url.Values, cookie *http.Cookie, header ...string) *http.Response {
	t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	return rec.Result()
}

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	data, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return string(data)
}

func hashForTest(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// signIn signs in with the bundle's key and returns the session cookie and the page's CSRF token.
func (b *bundle) signIn(t *testing.T) (*http.Cookie, string) {
	t.Helper()
	res := b.do(t, "POST", "/signin", url.Values{"api_key": {b.key}}, nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/webhooks", res.Header.Get("Location"))
	cookies := res.Cookies()
	require.Len(t, cookies, 1)
	page := b.do(t, "GET", "/webhooks", nil, cookies[0])
	require.Equal(t, http.StatusOK, page.StatusCode)
	return cookies[0], csrfOf(t, readBody(t, page))
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfOf(t *testing.T, html string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(html)
	require.NotNil(t, m, "no CSRF token on the page")
	return m[1]
}

func createForm(csrf, name string) url.Values {
	return url.Values{"csrf_token": {csrf}, "name": {name}, "url": {"https://example.com/hook"},
		"events": {webhook.ProposalCreated}, "active": {"true"}}
}

func (b *bundle) webhookCount(t *testing.T, accountID string) int {
	t.Helper()
	p, err := b.app.ListWebhooks(context.Background(), accountID, 0, "")
	require.NoError(t, err)
	return len(p.Items)
}

func (b *bundle) account(t *testing.T) string {
	t.Helper()
	acct, err := b.app.Authenticate(context.Background(), b.key)
	require.NoError(t, err)
	return acct.ID
}

func TestConsoleSessionCookie(t *testing.T) {
	t.Parallel()

	t.Run("PlainHTTPBaseURL", func(t *testing.T) {
		t.Parallel()
		b := newBundle(t, "http://localhost:8080")
		res := b.do(t, "POST", "/signin", url.Values{"api_key": {b.key}}, nil)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		ck := res.Cookies()[0]
		require.Equal(t, "quikly_session", ck.Name)
		require.True(t, ck.HttpOnly)
		require.Equal(t, http.SameSiteLaxMode, ck.SameSite)
		require.False(t, ck.Secure, "a Secure cookie would never come back over plain http")
		require.Equal(t, "/", ck.Path)
		require.InDelta(t, app.SessionLifetime.Seconds(), ck.MaxAge, 5, "the cookie lives as long as the session")
		require.GreaterOrEqual(t, len(ck.Value), 43, "≥ 256 bits of randomness")
		require.Contains(t, res.Header.Get("Set-Cookie"), "SameSite=Lax")
	})

	t.Run("HTTPSBaseURLSetsSecure", func(t *testing.T) {
		t.Parallel()
		b := newBundle(t, "https://quikly.example.com")
		res := b.do(t, "POST", "/signin", url.Values{"api_key": {b.key}}, nil)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		ck := res.Cookies()[0]
		require.Equal(t, "__Host-quikly_session", ck.Name)
		require.True(t, ck.Secure)
		require.True(t, ck.HttpOnly)
		require.Equal(t, http.SameSiteLaxMode, ck.SameSite)
		require.Equal(t, http.StatusOK, b.do(t, "GET", "/webhooks", nil, ck).StatusCode)
	})

	t.Run("OnlyTheHashIsStored", func(t *testing.T) {
		t.Parallel()
		b := newBundle(t, "http://localhost:8080")
		ck, _ := b.signIn(t)
		_, err := b.app.Store.SessionGet(context.Background(), []byte(ck.Value))
		require.Equal(t, errs.NotFound, errs.CodeOf(err), "the clear id is not a key of the table")
	})
}

func TestConsoleSignIn(t *testing.T) {
	t.Parallel()

	t.Run("WrongKeyShowsError", func(t *testing.T) {
		t.Parallel()
		b := newBundle(t, "http://localhost:8080")
		for _, key := range []string{"", "nonsense", "qk_" + strings.Repeat("x", 32)} {
			res := b.do(t, "POST", "/signin", url.Values{"api_key": {key}}, nil)
			require.Equal(t, http.StatusUnauthorized, res.StatusCode)
			require.Empty(t, res.Cookies())
			require.Contains(t, readBody(t, res), "That API key is not valid.")
		}
	})

	t.Run("SignedOutPagesRedirect", func(t *testing.T) {
		t.Parallel()
		b := newBundle(t, "http://localhost:8080")
		for _, path := range []string{"/", "/webhooks", "/webhooks/new", "/webhooks/wh_x/logs"} {
			res := b.do(t, "GET", path, nil, nil)
			require.Equal(t, http.StatusSeeOther, res.StatusCode, path)
			require.Equal(t, "/signin", res.Header.Get("Location"), path)
		}
		res := b.do(t, "POST", "/webhooks", url.Values{"name": {"x"}}, nil)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, "/signin", res.Header.Get("Location"))
	})

	t.Run("KeyWithSurroundingSpaceWorks", func(t *testing.T) {
		t.Parallel()
		b := newBundle(t, "http://localhost:8080")
		res := b.do(t, "POST", "/signin", url.Values{"api_key": {"  " + b.key + "\n"}}, nil)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
	})
}

func TestConsoleCSRF(t *testing.T) {
	t.Parallel()

	t.Run("MissingOrWrongTokenChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := newBundle(t, "http://localhost:8080")
		ck, csrf := b.signIn(t)
		acct := b.account(t)
		// "wrong" is the token with its last character changed. (Setting it to "x" left one token
		// in 62, those ending in "x", unchanged: CI once saw that one accepted.)
		wrong := []byte(csrf)
		wrong[len(wrong)-1] ^= 1
		for name, token := range map[string]string{"missing": "", "wrong": string(wrong), "other": strings.Repeat("a", len(csrf))} {
			res := b.do(t, "POST", "/webhooks", createForm(token, "CRM"), ck)
			require.Equal(t, http.StatusForbidden, res.StatusCode, name)
			require.Contains(t, readBody(t, res), "did not come from this console", name)
		}
		require.Equal(t, 0, b.webhookCount(t, acct))

		wh, err := b.app.CreateWebhook(context.Background(), acct, app.WebhookInput{Name: new("CRM"),
			URL: new("https://example.com/hook"), Events: &[]string{webhook.ProposalCreated}})
		require.NoError(t, err)
		for _, path := range []string{"/webhooks/" + wh.ID + "/toggle", "/webhooks/" + wh.ID + "/delete",
			"/webhooks/" + wh.ID + "/regenerate", "/webhooks/" + wh.ID + "/edit", "/signout"} {
			res := b.do(t, "POST", path, url.Values{"active": {"false"}, "name": {"Renamed"}}, ck)
			require.Equal(t, http.StatusForbidden, res.StatusCode, path)
		}
		got, err := b.app.GetWebhook(context.Background(), acct, wh.ID)
		require.NoError(t, err)
		require.True(t, got.IsActive)
		require.Equal(t, "CRM", got.Name)
		require.Equal(t, wh.Secret, got.Secret)
		require.Equal(t, http.StatusOK, b.do(t, "GET", "/webhooks", nil, ck).StatusCode, "still signed in")
	})

	t.Run("CrossSiteRequestRefusedEvenWithToken", func(t *testing.T) {
		t.Parallel()
		b := newBundle(t, "http://localhost:8080")
		ck, csrf := b.signIn(t)
		res := b.do(t, "POST", "/webhooks", createForm(csrf, "CRM"), ck, "Sec-Fetch-Site", "cross-site")
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		res = b.do(t, "POST", "/webhooks", createForm(csrf, "CRM"), ck, "Origin", "https://evil.example")
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Equal(t, 0, b.webhookCount(t, b.account(t)))
	})

	t.Run("ValidTokenCreatesAndShowsSecretOnce", func(t *testing.T) {
		t.Parallel()
		b := newBundle(t, "http://localhost:8080")
		ck, csrf := b.signIn(t)
		res := b.do(t, "POST", "/webhooks", createForm(csrf, "CRM"), ck, "Sec-Fetch-Site", "same-origin")
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		p, err := b.app.ListWebhooks(context.Background(), b.account(t), 0, "")
		require.NoError(t, err)
		require.Len(t, p.Items, 1)
		secret := p.Items[0].Secret
		loc := res.Header.Get("Location")
		require.True(t, strings.HasPrefix(loc, "/webhooks/"+p.Items[0].ID+"/secret?reveal="), loc)
		require.NotContains(t, loc, secret, "the secret never travels in a URL")

		res = b.do(t, "GET", loc, nil, ck)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
		body := readBody(t, res)
		m := regexp.MustCompile(`id="secret" value="([^"]+)"`).FindStringSubmatch(body)
		require.NotNil(t, m)
		require.Equal(t, secret, html.UnescapeString(m[1]))
		require.Contains(t, body, "will not be shown again")

		for _, path := range []string{loc, "/webhooks", "/webhooks/" + p.Items[0].ID, "/webhooks/" + p.Items[0].ID + "/edit"} {
			page := readBody(t, b.do(t, "GET", path, nil, ck))
			require.NotContains(t, page, m[1], path)
			require.NotContains(t, html.UnescapeString(page), secret, path)
		}
	})
}

// TestConsolePostRedirectGet checks SPEC §15: every state-changing form answers 303, so a reload
// repeats nothing; the secret's page shows it once, to the session that made it only, and only while
// it is the webhook's secret.
func TestConsolePostRedirectGet(t *testing.T) {
	t.Parallel()
	b := newBundle(t, "http://localhost:8080")
	ck, csrf := b.signIn(t)
	acct := b.account(t)

	res := b.do(t, "POST", "/webhooks", createForm(csrf, "CRM"), ck)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	created := res.Header.Get("Location")
	p, err := b.app.ListWebhooks(context.Background(), acct, 0, "")
	require.NoError(t, err)
	require.Len(t, p.Items, 1)
	wh := p.Items[0]

	// Another session of the same account cannot use the link.
	ck2, csrf2 := b.signIn(t)
	res = b.do(t, "GET", created, nil, ck2)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/webhooks/"+wh.ID+"?notice=secretshown", res.Header.Get("Location"))

	// Once shown, a reload of the same URL sends the browser to the webhook's page, which says why.
	require.Equal(t, http.StatusOK, b.do(t, "GET", created, nil, ck).StatusCode)
	res = b.do(t, "GET", created, nil, ck)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/webhooks/"+wh.ID+"?notice=secretshown", res.Header.Get("Location"))
	require.Contains(t, readBody(t, b.do(t, "GET", res.Header.Get("Location"), nil, ck)), "shown only once")
	require.Equal(t, 1, b.webhookCount(t, acct))

	// Regenerate: 303 to the secret's page. A link is refused once its secret has been replaced, and
	// once it has expired.
	res = b.do(t, "POST", "/webhooks/"+wh.ID+"/regenerate", url.Values{"csrf_token": {csrf2}}, ck2)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	regenerated := res.Header.Get("Location")
	got, err := b.app.GetWebhook(context.Background(), acct, wh.ID)
	require.NoError(t, err)
	require.NotEqual(t, wh.Secret, got.Secret)
	require.NotContains(t, regenerated, got.Secret)
	res = b.do(t, "GET", regenerated, nil, ck2)
	require.Equal(t, http.StatusOK, res.StatusCode)
	body := readBody(t, res)
	require.Contains(t, html.UnescapeString(body), `value="`+got.Secret+`"`)
	require.Contains(t, body, "Secret regenerated")

	regenerate := func() string {
		t.Helper()
		res := b.do(t, "POST", "/webhooks/"+wh.ID+"/regenerate", url.Values{"csrf_token": {csrf}}, ck)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		return res.Header.Get("Location")
	}
	superseded, late := regenerate(), regenerate()
	res = b.do(t, "GET", superseded, nil, ck)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "a link for a secret that was replaced shows nothing")
	b.clock.Advance(6 * time.Minute)
	res = b.do(t, "GET", late, nil, ck)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "an expired link shows nothing")
	require.Equal(t, "/webhooks/"+wh.ID+"?notice=secretshown", res.Header.Get("Location"))

	// (Send test event → reload → one request: TestConsoleInBrowser, against the whole service.)
	// A test link naming another attempt, or none of this webhook's, shows the page without a result.
	for _, bad := range []string{"att_nope", "%00", "x"} {
		res = b.do(t, "GET", "/webhooks/"+wh.ID+"?test="+bad, nil, ck)
		require.Equal(t, http.StatusOK, res.StatusCode, bad)
		require.NotContains(t, readBody(t, res), `id="test-result"`, bad)
	}
}

func TestConsoleSignOutEndsSessionOnServer(t *testing.T) {
	t.Parallel()
	b := newBundle(t, "http://localhost:8080")
	ck, csrf := b.signIn(t)
	res := b.do(t, "POST", "/signout", url.Values{"csrf_token": {csrf}}, ck)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/signin?notice=signedout", res.Header.Get("Location"))
	cleared := res.Cookies()[0]
	require.Equal(t, ck.Name, cleared.Name)
	require.Less(t, cleared.MaxAge, 0, "the browser drops the cookie")

	// A copy of the old cookie no longer works: the session is gone from the store.
	res = b.do(t, "GET", "/webhooks", nil, ck)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/signin", res.Header.Get("Location"))
	_, err := b.app.SessionAccount(context.Background(), ck.Value)
	require.Equal(t, errs.Unauthorized, errs.CodeOf(err))
}

func TestConsoleExpiredSessionRedirectsToSignIn(t *testing.T) {
	t.Parallel()
	b := newBundle(t, "http://localhost:8080")
	ck, _ := b.signIn(t)
	b.clock.Advance(app.SessionLifetime - time.Minute)
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/webhooks", nil, ck).StatusCode)
	b.clock.Advance(time.Minute)
	res := b.do(t, "GET", "/webhooks", nil, ck)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/signin", res.Header.Get("Location"))
	require.Less(t, res.Cookies()[0].MaxAge, 0, "the stale cookie is cleared")

	// The next sign-in clears expired sessions out of the table.
	b.signIn(t)
	h := hashForTest(ck.Value)
	_, err := b.app.Store.SessionGet(context.Background(), h)
	require.Equal(t, errs.NotFound, errs.CodeOf(err))
}

func TestConsoleOtherAccountsWebhookIsNotFound(t *testing.T) {
	t.Parallel()
	b := newBundle(t, "http://localhost:8080")
	ck, csrf := b.signIn(t)
	otherKey, err := b.app.CreateAPIKey(context.Background(), "globex")
	require.NoError(t, err)
	other, err := b.app.Authenticate(context.Background(), otherKey)
	require.NoError(t, err)
	wh, err := b.app.CreateWebhook(context.Background(), other.ID, app.WebhookInput{Name: new("Theirs"),
		URL: new("https://example.com/hook"), Events: &[]string{webhook.ProposalCreated}})
	require.NoError(t, err)

	for _, path := range []string{"/webhooks/" + wh.ID, "/webhooks/" + wh.ID + "/edit", "/webhooks/" + wh.ID + "/logs",
		"/webhooks/" + wh.ID + "/logs/att_x", "/webhooks/" + wh.ID + "/delete", "/no/such/page"} {
		res := b.do(t, "GET", path, nil, ck)
		require.Equal(t, http.StatusNotFound, res.StatusCode, path)
		body := readBody(t, res)
		require.Contains(t, body, "<h1>Not found</h1>", path)
		require.NotContains(t, body, "Theirs", path)
	}
	res := b.do(t, "POST", "/webhooks/"+wh.ID+"/delete", url.Values{"csrf_token": {csrf}}, ck)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	_, err = b.app.GetWebhook(context.Background(), other.ID, wh.ID)
	require.NoError(t, err, "the other account's webhook is untouched")
}

func TestConsoleForms(t *testing.T) {
	t.Parallel()

	t.Run("ValidationErrorsNextToFields", func(t *testing.T) {
		t.Parallel()
		b := newBundle(t, "http://localhost:8080")
		ck, csrf := b.signIn(t)
		res := b.do(t, "POST", "/webhooks", url.Values{"csrf_token": {csrf}, "name": {""}, "url": {"ftp://example.com"}}, ck)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		body := readBody(t, res)
		require.Contains(t, body, `id="name-error">Name must be 1 to 100 characters.`)
		require.Contains(t, body, `id="url-error">URL must use https.`)
		require.Contains(t, body, `id="events-error">Events must list at least one event.`)
		require.Contains(t, body, `value="ftp://example.com"`, "what was typed is kept")
		require.Equal(t, 0, b.webhookCount(t, b.account(t)))
	})

	t.Run("ToggleWithoutScriptRedirectsBack", func(t *testing.T) {
		t.Parallel()
		b := newBundle(t, "http://localhost:8080")
		ck, csrf := b.signIn(t)
		acct := b.account(t)
		wh, err := b.app.CreateWebhook(context.Background(), acct, app.WebhookInput{Name: new("CRM"),
			URL: new("https://example.com/hook"), Events: &[]string{webhook.ProposalCreated}})
		require.NoError(t, err)

		res := b.do(t, "POST", "/webhooks/"+wh.ID+"/toggle", url.Values{"csrf_token": {csrf}, "active": {"false"}, "back": {"list"}}, ck)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, "/webhooks?notice=paused", res.Header.Get("Location"))
		got, err := b.app.GetWebhook(context.Background(), acct, wh.ID)
		require.NoError(t, err)
		require.False(t, got.IsActive)
		// The same form twice keeps it paused: the form names the state, not a flip.
		b.do(t, "POST", "/webhooks/"+wh.ID+"/toggle", url.Values{"csrf_token": {csrf}, "active": {"false"}}, ck)
		got, err = b.app.GetWebhook(context.Background(), acct, wh.ID)
		require.NoError(t, err)
		require.False(t, got.IsActive)

		res = b.do(t, "POST", "/webhooks/"+wh.ID+"/toggle", url.Values{"csrf_token": {csrf}, "active": {"true"}}, ck,
			"Accept", "application/json")
		require.Equal(t, http.StatusOK, res.StatusCode)
		var out map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
		require.Equal(t, true, out["is_active"])
	})

	t.Run("MethodNotAllowedAndAssets", func(t *testing.T) {
		t.Parallel()
		b := newBundle(t, "http://localhost:8080")
		res := b.do(t, "GET", "/signout", nil, nil)
		require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
		require.Equal(t, "POST", res.Header.Get("Allow"))
		require.Contains(t, res.Header.Get("Content-Type"), "text/html")

		page := readBody(t, b.do(t, "GET", "/signin", nil, nil))
		m := regexp.MustCompile(`href="(/static/console\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(page)
		require.NotNil(t, m)
		res = b.do(t, "GET", m[1], nil, nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, res.Header.Get("Content-Type"), "text/css")
		require.Contains(t, res.Header.Get("Cache-Control"), "immutable")
		require.Contains(t, b.do(t, "GET", "/signin", nil, nil).Header.Get("Content-Security-Policy"), "script-src 'self'")
	})
}
