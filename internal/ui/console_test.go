package ui_test

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
	"github.com/quikly/webhooks/internal/ui"
	"github.com/quikly/webhooks/internal/webhook"
)

// consoleClock is a settable clock for session expiry.
type consoleClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *consoleClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *consoleClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// consoleBundle is a console over a real SQLite store, driven in-process with httptest recorders.
type consoleBundle struct {
	app     *app.App
	handler http.Handler
	clock   *consoleClock
	key     string
}

func consoleSetup(t *testing.T, baseURL string) *consoleBundle {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "quikly.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	clock := &consoleClock{now: time.Date(2026, 4, 3, 14, 30, 0, 0, time.UTC)}
	a := &app.App{Store: db, BaseURL: baseURL, AllowPrivateTargets: true, Clock: clock}
	key, err := a.CreateAPIKey(context.Background(), "acme")
	require.NoError(t, err)
	return &consoleBundle{app: a, handler: ui.NewConsole(a, nil), clock: clock, key: key}
}

// do sends one request to the console; form, when set, is the urlencoded body.
func (b *consoleBundle) do(t *testing.T, method, path string, form url.Values, cookie *http.Cookie, header ...string) *http.Response {
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

func consoleBody(t *testing.T, res *http.Response) string {
	t.Helper()
	data, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return string(data)
}

func consoleHashForTest(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// signIn signs in with the bundle's key and returns the session cookie and the page's CSRF token.
func (b *consoleBundle) signIn(t *testing.T) (*http.Cookie, string) {
	t.Helper()
	res := b.do(t, "POST", "/signin", url.Values{"api_key": {b.key}}, nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/webhooks", res.Header.Get("Location"))
	cookies := res.Cookies()
	require.Len(t, cookies, 1)
	page := b.do(t, "GET", "/webhooks", nil, cookies[0])
	require.Equal(t, http.StatusOK, page.StatusCode)
	return cookies[0], consoleCSRF(t, consoleBody(t, page))
}

var consoleCSRFRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func consoleCSRF(t *testing.T, html string) string {
	t.Helper()
	m := consoleCSRFRe.FindStringSubmatch(html)
	require.NotNil(t, m, "no CSRF token on the page")
	return m[1]
}

func consoleCreateForm(csrf, name string) url.Values {
	return url.Values{"csrf_token": {csrf}, "name": {name}, "url": {"https://example.com/hook"},
		"events": {webhook.ProposalCreated}, "active": {"true"}}
}

func (b *consoleBundle) webhookCount(t *testing.T, accountID string) int {
	t.Helper()
	p, err := b.app.ListWebhooks(context.Background(), accountID, 0, "")
	require.NoError(t, err)
	return len(p.Items)
}

func (b *consoleBundle) account(t *testing.T) string {
	t.Helper()
	acct, err := b.app.Authenticate(context.Background(), b.key)
	require.NoError(t, err)
	return acct.ID
}

func TestConsoleSessionCookie(t *testing.T) {
	t.Parallel()

	t.Run("PlainHTTPBaseURL", func(t *testing.T) {
		t.Parallel()
		b := consoleSetup(t, "http://localhost:8080")
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
		b := consoleSetup(t, "https://quikly.example.com")
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
		b := consoleSetup(t, "http://localhost:8080")
		ck, _ := b.signIn(t)
		_, err := b.app.Store.SessionGet(context.Background(), []byte(ck.Value))
		require.Equal(t, errs.NotFound, errs.CodeOf(err), "the clear id is not a key of the table")
	})
}

func TestConsoleSignIn(t *testing.T) {
	t.Parallel()

	t.Run("WrongKeyShowsError", func(t *testing.T) {
		t.Parallel()
		b := consoleSetup(t, "http://localhost:8080")
		for _, key := range []string{"", "nonsense", "qk_" + strings.Repeat("x", 32)} {
			res := b.do(t, "POST", "/signin", url.Values{"api_key": {key}}, nil)
			require.Equal(t, http.StatusUnauthorized, res.StatusCode)
			require.Empty(t, res.Cookies())
			require.Contains(t, consoleBody(t, res), "That API key is not valid.")
		}
	})

	t.Run("SignedOutPagesRedirect", func(t *testing.T) {
		t.Parallel()
		b := consoleSetup(t, "http://localhost:8080")
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
		b := consoleSetup(t, "http://localhost:8080")
		res := b.do(t, "POST", "/signin", url.Values{"api_key": {"  " + b.key + "\n"}}, nil)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
	})
}

func TestConsoleCSRF(t *testing.T) {
	t.Parallel()

	t.Run("MissingOrWrongTokenChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := consoleSetup(t, "http://localhost:8080")
		ck, csrf := b.signIn(t)
		acct := b.account(t)
		for name, token := range map[string]string{"missing": "", "wrong": csrf[:len(csrf)-1] + "x", "other": strings.Repeat("a", len(csrf))} {
			res := b.do(t, "POST", "/webhooks", consoleCreateForm(token, "CRM"), ck)
			require.Equal(t, http.StatusForbidden, res.StatusCode, name)
			require.Contains(t, consoleBody(t, res), "did not come from this console", name)
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
		b := consoleSetup(t, "http://localhost:8080")
		ck, csrf := b.signIn(t)
		res := b.do(t, "POST", "/webhooks", consoleCreateForm(csrf, "CRM"), ck, "Sec-Fetch-Site", "cross-site")
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		res = b.do(t, "POST", "/webhooks", consoleCreateForm(csrf, "CRM"), ck, "Origin", "https://evil.example")
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Equal(t, 0, b.webhookCount(t, b.account(t)))
	})

	t.Run("ValidTokenCreatesAndShowsSecretOnce", func(t *testing.T) {
		t.Parallel()
		b := consoleSetup(t, "http://localhost:8080")
		ck, csrf := b.signIn(t)
		res := b.do(t, "POST", "/webhooks", consoleCreateForm(csrf, "CRM"), ck, "Sec-Fetch-Site", "same-origin")
		require.Equal(t, http.StatusCreated, res.StatusCode)
		require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
		body := consoleBody(t, res)
		p, err := b.app.ListWebhooks(context.Background(), b.account(t), 0, "")
		require.NoError(t, err)
		require.Len(t, p.Items, 1)
		secret := p.Items[0].Secret
		m := regexp.MustCompile(`id="secret" value="([^"]+)"`).FindStringSubmatch(body)
		require.NotNil(t, m)
		require.Equal(t, secret, html.UnescapeString(m[1]))
		require.Contains(t, body, "will not be shown again")

		for _, path := range []string{"/webhooks", "/webhooks/" + p.Items[0].ID, "/webhooks/" + p.Items[0].ID + "/edit"} {
			page := consoleBody(t, b.do(t, "GET", path, nil, ck))
			require.NotContains(t, page, m[1], path)
			require.NotContains(t, html.UnescapeString(page), secret, path)
		}
	})
}

func TestConsoleSignOutEndsSessionOnServer(t *testing.T) {
	t.Parallel()
	b := consoleSetup(t, "http://localhost:8080")
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
	b := consoleSetup(t, "http://localhost:8080")
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
	h := consoleHashForTest(ck.Value)
	_, err := b.app.Store.SessionGet(context.Background(), h)
	require.Equal(t, errs.NotFound, errs.CodeOf(err))
}

func TestConsoleOtherAccountsWebhookIsNotFound(t *testing.T) {
	t.Parallel()
	b := consoleSetup(t, "http://localhost:8080")
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
		body := consoleBody(t, res)
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
		b := consoleSetup(t, "http://localhost:8080")
		ck, csrf := b.signIn(t)
		res := b.do(t, "POST", "/webhooks", url.Values{"csrf_token": {csrf}, "name": {""}, "url": {"ftp://example.com"}}, ck)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		body := consoleBody(t, res)
		require.Contains(t, body, `id="name-error">Name must be 1 to 100 characters.`)
		require.Contains(t, body, `id="url-error">URL must use https.`)
		require.Contains(t, body, `id="events-error">Events must list at least one event.`)
		require.Contains(t, body, `value="ftp://example.com"`, "what was typed is kept")
		require.Equal(t, 0, b.webhookCount(t, b.account(t)))
	})

	t.Run("ToggleWithoutScriptRedirectsBack", func(t *testing.T) {
		t.Parallel()
		b := consoleSetup(t, "http://localhost:8080")
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
		b := consoleSetup(t, "http://localhost:8080")
		res := b.do(t, "GET", "/signout", nil, nil)
		require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
		require.Equal(t, "POST", res.Header.Get("Allow"))
		require.Contains(t, res.Header.Get("Content-Type"), "text/html")

		page := consoleBody(t, b.do(t, "GET", "/signin", nil, nil))
		m := regexp.MustCompile(`href="(/static/console\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(page)
		require.NotNil(t, m)
		res = b.do(t, "GET", m[1], nil, nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, res.Header.Get("Content-Type"), "text/css")
		require.Contains(t, res.Header.Get("Cache-Control"), "immutable")
		require.Contains(t, b.do(t, "GET", "/signin", nil, nil).Header.Get("Content-Security-Policy"), "script-src 'self'")
	})
}
