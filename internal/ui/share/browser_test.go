package share_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/testenv"
	"github.com/quikly/webhooks/internal/ui/browsertest"
)

// shared creates a proposal through the API and shares it; it returns the share URL's path.
func shared(t *testing.T, env *testenv.Env, name string) string {
	t.Helper()
	res := env.Do(env.Key, "POST", "/proposals", map[string]any{
		"name": name, "client_name": "Acme Corp", "client_email": "jane@acme.example",
		"requirements": "A marketing site\nwith a blog.", "currency": "USD",
		"line_items": []any{
			map[string]any{"description": "Design", "quantity": 1, "unit_price": json.Number("2500")},
			map[string]any{"description": "Pages", "quantity": 12, "unit_price": json.Number("150.25")},
		}})
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	id := res.JSON(t)["id"].(string)
	res = env.Do(env.Key, "POST", "/proposals/"+id+"/share", nil)
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	u, err := url.Parse(res.JSON(t)["share_url"].(string))
	require.NoError(t, err)
	return u.Path
}

// TestSharePageInBrowser answers proposals on the share page in a real browser, in each state the
// page has (open, accepted, rejected, changes requested, an answer refused, a link that leads
// nowhere), and checks each with axe-core: no serious or critical violation (SPEC §15 / issue 12).
func TestSharePageInBrowser(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	b := browsertest.New(t, env.URL)

	// Open for answers, then accepted.
	accept := shared(t, env, "Website redesign")
	b.Open(accept, "button.accept")
	require.Equal(t, "Website redesign", b.Text("h1"))
	require.Contains(t, b.Text("tfoot"), "4,303.00 USD")
	b.Shot("share-open")
	b.CheckA11y("share-open")
	b.Click("button.accept", ".notice.accepted")
	require.Equal(t, accept, b.Path(), "the answer redirects back to the page")
	require.Contains(t, b.Text(".notice.accepted"), "You accepted this proposal")
	require.Equal(t, 0, b.Count("button.accept"), "an accepted proposal takes no more answers")
	b.Shot("share-accepted")
	b.CheckA11y("share-accepted")

	// Rejected.
	reject := shared(t, env, "Logo")
	b.Open(reject, "button.reject")
	b.Click("button.reject", ".notice.rejected")
	require.Contains(t, b.Text(".notice.rejected"), "You declined this proposal")
	b.CheckA11y("share-rejected")

	// Changes requested, with the client's comment.
	changes := shared(t, env, "Shop")
	b.Open(changes, "#comment")
	b.Do(chromedp.SendKeys(chromedp.CSS("#comment"), "Could you split it into two phases?"))
	b.Click("button.changes", ".notice.revision_requested")
	require.Contains(t, b.Text(".notice.revision_requested blockquote"), "two phases")
	b.CheckA11y("share-revision-requested")

	// An answer refused: the proposal was answered elsewhere while this tab was open (409), so the page
	// says so above the proposal as it now stands.
	stale := shared(t, env, "Hosting")
	b.Open(stale, "button.accept")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.PostForm(env.URL+stale, url.Values{"answer": {"reject"}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	b.Click("button.accept", ".error")
	require.Contains(t, b.Text(".error"), "Your answer was not recorded")
	require.Contains(t, b.Text(".notice.rejected"), "You declined this proposal")
	b.Shot("share-refused")
	b.CheckA11y("share-refused")

	// A link cut short: the calm not-found page.
	b.Open(accept[:len(accept)-3], "h1")
	require.True(t, strings.HasPrefix(b.Text("h1"), "This link doesn't lead to a proposal"), b.Text("h1"))
	b.Shot("share-not-found")
	b.CheckA11y("share-not-found")
}
