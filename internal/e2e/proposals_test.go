package e2e_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/testenv"
	"github.com/quikly/webhooks/internal/webhook"
)

// These tests drive the event sources end to end (their helpers carry the src prefix, as this
// package is shared with other suites): the real service on a temporary SQLite file, the
// API over HTTP, the share page's forms submitted as a srcBrowser submits them, and a loopback receiver
// that records every delivery. Nothing is mocked.

// srcAllEvents is the catalogue: a webhook subscribed to it hears every state change.
var srcAllEvents = []string{
	webhook.ProposalCreated, webhook.ProposalUpdated, webhook.ProposalShared, webhook.ProposalAccepted,
	webhook.ProposalRejected, webhook.ProposalRevisionRequested, webhook.LeadSessionCreated, webhook.LeadSessionUpdated,
}

// srcProposalDataKeys and srcLeadDataKeys are the data fields of SPEC §5, exactly.
var (
	srcProposalDataKeys = []string{"client_name", "currency", "name", "proposal_id", "responded_at", "revision_comment",
		"share_url", "status", "total"}
	srcLeadDataKeys = []string{"brief", "channel", "channel_id", "client_name", "lead_session_id", "status"}
)

type srcBundle struct {
	env *testenv.Env
	rec *testenv.Receiver
	// hookID and secret are the webhook that delivers to rec.
	hookID string
	secret string
}

// srcSetup starts a service with one webhook subscribed to events (every event when none are given)
// and delivering to a fresh receiver.
func srcSetup(t *testing.T, events ...string) *srcBundle {
	t.Helper()
	if len(events) == 0 {
		events = srcAllEvents
	}
	b := &srcBundle{env: testenv.Start(t, testenv.Options{})}
	b.rec, b.hookID, b.secret = srcAddHook(t, b.env, b.env.Key, events...)
	return b
}

// srcAddHook creates a webhook through the API, delivering to a new receiver.
func srcAddHook(t *testing.T, env *testenv.Env, key string, events ...string) (*testenv.Receiver, string, string) {
	t.Helper()
	rec := testenv.NewReceiver(t)
	res := env.Do(key, "POST", "/webhooks", map[string]any{"name": "CRM sync", "url": rec.URL, "events": events})
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	hook := srcDecode(t, res.Body)
	return rec, hook["id"].(string), hook["secret"].(string)
}

// srcDecode decodes an object keeping numbers as their text, so amounts are compared exactly as
// written (200.20 and 200.2 differ).
func srcDecode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	require.NoError(t, dec.Decode(&m), "body: %s", body)
	return m
}

// srcCall sends an API request as key and requires the status; it returns the decoded body (nil when
// empty).
func srcCall(t *testing.T, env *testenv.Env, key, method, path string, body any, wantStatus int) map[string]any {
	t.Helper()
	res := env.Do(key, method, path, body)
	require.Equal(t, wantStatus, res.Status, "%s %s: %s", method, path, res.Body)
	if len(res.Body) == 0 {
		return nil
	}
	return srcDecode(t, res.Body)
}

// srcRequireError checks a SPEC §3 error body and returns its fields.
func srcRequireError(t *testing.T, res map[string]any, code string) map[string]any {
	t.Helper()
	e, ok := res["error"].(map[string]any)
	require.True(t, ok, "an error body: %v", res)
	require.Equal(t, code, e["code"])
	require.NotEmpty(t, e["message"])
	fields, _ := e["fields"].(map[string]any)
	return fields
}

func srcProposalBody() map[string]any {
	return map[string]any{
		"name":         "Website redesign",
		"client_name":  "Acme Corp",
		"client_email": "jane@acme.example",
		"requirements": "A marketing site\nwith a blog.",
		"currency":     "USD",
		"line_items": []any{
			map[string]any{"description": "Design", "quantity": 1, "unit_price": json.Number("2500")},
			map[string]any{"description": "Hours", "quantity": 3, "unit_price": json.Number("0.1")},
		},
	}
}

// srcEvent is one delivery as the receiver got it.
type srcEvent struct {
	Type      string
	Timestamp time.Time
	Data      map[string]any
	Header    http.Header
}

// next waits for the receiver's next delivery, requires it to be of type want, and checks what SPEC
// §5 says of every delivery: headers, signature, and the exact keys of the body and its data.
func (b *srcBundle) next(t *testing.T, rec *testenv.Receiver, hookID, secret, want string) *srcEvent {
	t.Helper()
	got := rec.Next(t)
	body := srcDecode(t, got.Body)
	require.Equal(t, want, body["event"], "next event; body: %s", got.Body)
	require.ElementsMatch(t, []string{"event", "timestamp", "webhook_id", "data"}, srcKeys(body))
	require.Equal(t, hookID, body["webhook_id"])
	ts, err := time.Parse(time.RFC3339, body["timestamp"].(string))
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(body["timestamp"].(string), "Z"), "UTC with Z")
	require.WithinDuration(t, time.Now(), ts, time.Minute)

	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	require.Equal(t, want, got.Header.Get("X-Quikly-Event"))
	require.Equal(t, hookID, got.Header.Get("X-Quikly-Webhook-Id"))
	require.True(t, strings.HasPrefix(got.Header.Get("webhook-id"), "evt_"))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(got.Body)
	require.Equal(t, hex.EncodeToString(mac.Sum(nil)), got.Header.Get("X-Quikly-Signature"), "signed with the webhook's secret")

	data := body["data"].(map[string]any)
	if strings.HasPrefix(want, "proposal.") {
		require.ElementsMatch(t, srcProposalDataKeys, srcKeys(data), "proposal data of SPEC §5")
	} else {
		require.ElementsMatch(t, srcLeadDataKeys, srcKeys(data), "lead session data of SPEC §5")
	}
	return &srcEvent{Type: want, Timestamp: ts, Data: data, Header: got.Header}
}

// expect is next on the bundle's own webhook.
func (b *srcBundle) expect(t *testing.T, want string) *srcEvent {
	t.Helper()
	return b.next(t, b.rec, b.hookID, b.secret, want)
}

// expectProposal waits for a proposal event and requires its data to match the proposal as the
// API shows it now: the event and the stored row agree on every field.
func (b *srcBundle) expectProposal(t *testing.T, want string, id string) (*srcEvent, map[string]any) {
	t.Helper()
	e := b.expect(t, want)
	p := srcCall(t, b.env, b.env.Key, "GET", "/proposals/"+id, nil, http.StatusOK)
	srcRequireProposalData(t, p, e.Data)
	return e, p
}

// srcRequireProposalData checks the event data of SPEC §5 against the proposal object of SPEC §7.
func srcRequireProposalData(t *testing.T, p, data map[string]any) {
	t.Helper()
	require.Equal(t, p["id"], data["proposal_id"])
	require.Equal(t, p["name"], data["name"])
	require.Equal(t, p["status"], data["status"])
	require.Equal(t, p["client_name"], data["client_name"])
	require.IsType(t, json.Number(""), data["total"], "total is a JSON number")
	require.Equal(t, p["total"], data["total"], "the same exact amount, with the currency's decimals")
	require.Equal(t, p["currency"], data["currency"])
	require.Equal(t, p["share_url"], data["share_url"])
	require.Equal(t, p["responded_at"], data["responded_at"])
	require.Equal(t, p["revision_comment"], data["revision_comment"])
}

func srcKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// --- the share page, as a srcBrowser uses it ---

// srcBrowser is a client that does not follow redirects, so tests see the 303 itself.
var srcBrowser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type srcPage struct {
	Status int
	Header http.Header
	HTML   string
}

func srcGetPage(t *testing.T, pageURL string) *srcPage {
	t.Helper()
	res, err := srcBrowser.Get(pageURL)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return &srcPage{Status: res.StatusCode, Header: res.Header, HTML: string(body)}
}

var (
	srcFormRe   = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)">(.*?)</form>`)
	srcAnswerRe = regexp.MustCompile(`<input type="hidden" name="answer" value="([^"]*)">`)
)

// forms returns the page's answer forms: answer value → the form's action.
func (p *srcPage) forms() map[string]string {
	out := map[string]string{}
	for _, m := range srcFormRe.FindAllStringSubmatch(p.HTML, -1) {
		if a := srcAnswerRe.FindStringSubmatch(m[2]); a != nil {
			out[a[1]] = m[1]
		}
	}
	return out
}

// srcSubmit posts form data to action (resolved against pageURL) as a same-origin srcBrowser form
// submission does: form encoding, and the Origin and Sec-Fetch-Site headers browsers add.
func srcSubmit(t *testing.T, pageURL, action string, form url.Values, headers map[string]string) *srcPage {
	t.Helper()
	base, err := url.Parse(pageURL)
	require.NoError(t, err)
	target, err := base.Parse(action)
	require.NoError(t, err)
	req, err := http.NewRequest("POST", target.String(), strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base.Scheme+"://"+base.Host)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Referer", pageURL)
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := srcBrowser.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return &srcPage{Status: res.StatusCode, Header: res.Header, HTML: string(body)}
}

// srcAnswer opens the share page, clicks the button of answer (typing comment first when given) and
// follows the redirect, returning the page the client then sees.
func srcAnswer(t *testing.T, shareURL, answer, comment string) *srcPage {
	t.Helper()
	p := srcGetPage(t, shareURL)
	require.Equal(t, http.StatusOK, p.Status)
	action, ok := p.forms()[answer]
	require.True(t, ok, "the page has a %s form; html: %s", answer, p.HTML)
	form := url.Values{"answer": {answer}}
	if answer == "request_changes" {
		form.Set("comment", comment)
	}
	res := srcSubmit(t, shareURL, action, form, nil)
	require.Equal(t, http.StatusSeeOther, res.Status, "%s", res.HTML)
	loc, err := url.Parse(shareURL)
	require.NoError(t, err)
	require.Equal(t, loc.Path, res.Header.Get("Location"), "back to the page")
	after := srcGetPage(t, shareURL)
	require.Equal(t, http.StatusOK, after.Status)
	require.Empty(t, after.forms(), "an answered proposal offers no more answers")
	return after
}

// srcPostAnswer posts an answer straight to the share URL (as a stale tab or a double click would) and
// returns the response page.
func srcPostAnswer(t *testing.T, shareURL, answer string) *srcPage {
	t.Helper()
	return srcSubmit(t, shareURL, "", url.Values{"answer": {answer}, "comment": {"again"}}, nil)
}

// createShared creates a proposal and shares it, consuming its events when the bundle's webhook
// hears them; it returns the shared proposal.
func (b *srcBundle) createShared(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	p := srcCall(t, b.env, b.env.Key, "POST", "/proposals", body, http.StatusCreated)
	b.expectProposal(t, webhook.ProposalCreated, p["id"].(string))
	p = srcCall(t, b.env, b.env.Key, "POST", "/proposals/"+p["id"].(string)+"/share", nil, http.StatusOK)
	b.expectProposal(t, webhook.ProposalShared, p["id"].(string))
	return p
}

// signal fires a lead_session.created and requires it to be the next delivery: the positive proof
// that whatever was done before it fired nothing (deliveries go out in the order they fall due).
func (b *srcBundle) signal(t *testing.T) {
	t.Helper()
	l := srcCall(t, b.env, b.env.Key, "POST", "/lead-sessions",
		map[string]any{"channel": "api", "channel_id": "signal", "client_name": "Signal"}, http.StatusCreated)
	e := b.expect(t, webhook.LeadSessionCreated)
	require.Equal(t, l["id"], e.Data["lead_session_id"], "nothing was delivered before the signal")
}

// --- tests ---

func TestEveryEventFromItsRealAction(t *testing.T) {
	t.Parallel()
	b := srcSetup(t)
	env, key := b.env, b.env.Key

	// lead_session.created
	l := srcCall(t, env, key, "POST", "/lead-sessions", map[string]any{"channel": "telegram", "channel_id": "chat-42",
		"client_name": "Jane Doe", "brief": "Wants a new website"}, http.StatusCreated)
	require.Equal(t, "gathering_info", l["status"])
	e := b.expect(t, webhook.LeadSessionCreated)
	require.Equal(t, map[string]any{"lead_session_id": l["id"], "channel": "telegram", "channel_id": "chat-42",
		"client_name": "Jane Doe", "brief": "Wants a new website", "status": "gathering_info"}, e.Data)

	// A brief alone changes silently; a status change fires lead_session.updated with the new brief.
	srcCall(t, env, key, "PUT", "/lead-sessions/"+l["id"].(string), map[string]any{"brief": "A website and a blog"}, http.StatusOK)
	l = srcCall(t, env, key, "PUT", "/lead-sessions/"+l["id"].(string), map[string]any{"status": "proposal_ready"}, http.StatusOK)
	require.Equal(t, "proposal_ready", l["status"])
	e = b.expect(t, webhook.LeadSessionUpdated)
	require.Equal(t, map[string]any{"lead_session_id": l["id"], "channel": "telegram", "channel_id": "chat-42",
		"client_name": "Jane Doe", "brief": "A website and a blog", "status": "proposal_ready"}, e.Data)

	// proposal.created: a draft, nothing shared or answered yet.
	p := srcCall(t, env, key, "POST", "/proposals", srcProposalBody(), http.StatusCreated)
	id := p["id"].(string)
	require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, id, "a UUID, version 7 (time-ordered)")
	e, _ = b.expectProposal(t, webhook.ProposalCreated, id)
	require.Equal(t, map[string]any{"proposal_id": id, "name": "Website redesign", "status": "draft",
		"client_name": "Acme Corp", "total": json.Number("2500.30"), "currency": "USD", "share_url": nil,
		"responded_at": nil, "revision_comment": nil}, e.Data)

	// proposal.updated: requirements, settings and pricing each fire it.
	p = srcCall(t, env, key, "PUT", "/proposals/"+id, map[string]any{"requirements": "Also a shop."}, http.StatusOK)
	require.Equal(t, "Also a shop.", p["requirements"])
	b.expectProposal(t, webhook.ProposalUpdated, id)
	srcCall(t, env, key, "PUT", "/proposals/"+id, map[string]any{"name": "Website and shop"}, http.StatusOK)
	e, _ = b.expectProposal(t, webhook.ProposalUpdated, id)
	require.Equal(t, "Website and shop", e.Data["name"])
	srcCall(t, env, key, "PUT", "/proposals/"+id, map[string]any{"line_items": []any{
		map[string]any{"description": "Everything", "quantity": 2, "unit_price": json.Number("100.10")}}}, http.StatusOK)
	e, _ = b.expectProposal(t, webhook.ProposalUpdated, id)
	require.Equal(t, json.Number("200.20"), e.Data["total"])
	// The same values again change nothing and fire nothing (the next event is the share).
	srcCall(t, env, key, "PUT", "/proposals/"+id, map[string]any{"name": "Website and shop"}, http.StatusOK)

	// proposal.shared: a share link on the service's base URL with an unguessable token.
	p = srcCall(t, env, key, "POST", "/proposals/"+id+"/share", nil, http.StatusOK)
	require.Equal(t, "shared", p["status"])
	shareURL := p["share_url"].(string)
	require.Regexp(t, `^`+regexp.QuoteMeta(env.URL)+`/p/[0-9A-Za-z]{32}$`, shareURL)
	e, _ = b.expectProposal(t, webhook.ProposalShared, id)
	require.Equal(t, shareURL, e.Data["share_url"])
	require.Nil(t, e.Data["responded_at"])

	// proposal.revision_requested, through the share page's form, with the client's comment.
	after := srcAnswer(t, shareURL, "request_changes", "Could you split it into two phases?")
	require.Contains(t, after.HTML, "You asked for changes")
	require.Contains(t, after.HTML, "Could you split it into two phases?")
	e, p = b.expectProposal(t, webhook.ProposalRevisionRequested, id)
	require.Equal(t, "revision_requested", e.Data["status"])
	require.Equal(t, "Could you split it into two phases?", e.Data["revision_comment"])
	respondedAt, err := time.Parse(time.RFC3339, e.Data["responded_at"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, e.Timestamp, respondedAt, time.Second, "answered when the event happened")
	require.Equal(t, shareURL, p["share_url"], "the link stays")

	// The team edits (proposal.updated, still revision_requested) and shares again
	// (proposal.shared, the same link, the previous answer cleared).
	p = srcCall(t, env, key, "PUT", "/proposals/"+id, map[string]any{"line_items": []any{
		map[string]any{"description": "Phase 1", "quantity": 1, "unit_price": json.Number("100.10")},
		map[string]any{"description": "Phase 2", "quantity": 1, "unit_price": json.Number("100.10")}}}, http.StatusOK)
	require.Equal(t, "revision_requested", p["status"])
	e, _ = b.expectProposal(t, webhook.ProposalUpdated, id)
	require.Equal(t, "revision_requested", e.Data["status"])
	p = srcCall(t, env, key, "POST", "/proposals/"+id+"/share", nil, http.StatusOK)
	require.Equal(t, shareURL, p["share_url"])
	e, _ = b.expectProposal(t, webhook.ProposalShared, id)
	require.Nil(t, e.Data["responded_at"])
	require.Nil(t, e.Data["revision_comment"])

	// proposal.accepted, through the share page's form.
	after = srcAnswer(t, shareURL, "accept", "")
	require.Contains(t, after.HTML, "You accepted this proposal")
	e, _ = b.expectProposal(t, webhook.ProposalAccepted, id)
	require.Equal(t, "accepted", e.Data["status"])
	require.NotNil(t, e.Data["responded_at"])
	require.Nil(t, e.Data["revision_comment"])

	// proposal.rejected, on a second proposal.
	p2 := b.createShared(t, srcProposalBody())
	after = srcAnswer(t, p2["share_url"].(string), "reject", "")
	require.Contains(t, after.HTML, "You declined this proposal")
	e, _ = b.expectProposal(t, webhook.ProposalRejected, p2["id"].(string))
	require.Equal(t, "rejected", e.Data["status"])
	require.Equal(t, json.Number("2500.30"), e.Data["total"])
}

func TestWebhookSubscribedToOneEventGetsOnlyThatOne(t *testing.T) {
	t.Parallel()
	b := srcSetup(t) // hears everything
	onlyRec, onlyID, onlySecret := srcAddHook(t, b.env, b.env.Key, webhook.ProposalShared)

	// Every kind of event happens; the bundle's webhook hears each as it happens.
	p := b.createShared(t, srcProposalBody())
	srcAnswer(t, p["share_url"].(string), "request_changes", "")
	b.expectProposal(t, webhook.ProposalRevisionRequested, p["id"].(string))
	srcCall(t, b.env, b.env.Key, "PUT", "/proposals/"+p["id"].(string), map[string]any{"name": "v2"}, http.StatusOK)
	b.expectProposal(t, webhook.ProposalUpdated, p["id"].(string))
	srcCall(t, b.env, b.env.Key, "POST", "/proposals/"+p["id"].(string)+"/share", nil, http.StatusOK)
	b.expectProposal(t, webhook.ProposalShared, p["id"].(string))
	srcAnswer(t, p["share_url"].(string), "accept", "")
	b.expectProposal(t, webhook.ProposalAccepted, p["id"].(string))
	p2 := b.createShared(t, srcProposalBody())
	srcAnswer(t, p2["share_url"].(string), "reject", "")
	b.expectProposal(t, webhook.ProposalRejected, p2["id"].(string))
	l := srcCall(t, b.env, b.env.Key, "POST", "/lead-sessions", map[string]any{"channel": "widget", "channel_id": "v1", "client_name": "Bo"}, http.StatusCreated)
	b.expect(t, webhook.LeadSessionCreated)
	srcCall(t, b.env, b.env.Key, "PUT", "/lead-sessions/"+l["id"].(string), map[string]any{"status": "abandoned"}, http.StatusOK)
	b.expect(t, webhook.LeadSessionUpdated)

	// The subscriber of proposal.shared got the three shares, and then, as the positive signal
	// that nothing else is on its way, the share of a proposal made after everything above.
	var shared []any
	for range 3 {
		shared = append(shared, b.next(t, onlyRec, onlyID, onlySecret, webhook.ProposalShared).Data["proposal_id"])
	}
	require.ElementsMatch(t, []any{p["id"], p["id"], p2["id"]}, shared)
	last := b.createShared(t, srcProposalBody())
	e := b.next(t, onlyRec, onlyID, onlySecret, webhook.ProposalShared)
	require.Equal(t, last["id"], e.Data["proposal_id"])
	for _, got := range onlyRec.All() {
		require.Equal(t, webhook.ProposalShared, got.Header.Get("X-Quikly-Event"))
	}
	require.Len(t, onlyRec.All(), 4)
}

func TestSecondAnswerIsRefusedAndFiresNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, first, event, outcome string
	}{
		{"AfterAccept", "accept", webhook.ProposalAccepted, "already accepted"},
		{"AfterReject", "reject", webhook.ProposalRejected, "already rejected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := srcSetup(t)
			p := b.createShared(t, srcProposalBody())
			shareURL := p["share_url"].(string)
			srcAnswer(t, shareURL, tc.first, "")
			b.expectProposal(t, tc.event, p["id"].(string))

			for _, again := range []string{"accept", "reject", "request_changes"} {
				res := srcPostAnswer(t, shareURL, again)
				require.Equal(t, http.StatusConflict, res.Status, again)
				require.Contains(t, res.HTML, "Your answer was not recorded")
				require.Contains(t, res.HTML, tc.outcome, "the page says why")
				require.Empty(t, res.forms(), "and offers no answer")
			}
			got := srcCall(t, b.env, b.env.Key, "GET", "/proposals/"+p["id"].(string), nil, http.StatusOK)
			require.Equal(t, strings.TrimPrefix(tc.event, "proposal."), got["status"], "the first answer stands")
			require.Nil(t, got["revision_comment"])
			b.signal(t)
		})
	}
}

func TestRevisionEditShareAgainAccept(t *testing.T) {
	t.Parallel()
	b := srcSetup(t)
	p := b.createShared(t, srcProposalBody())
	id, shareURL := p["id"].(string), p["share_url"].(string)

	after := srcAnswer(t, shareURL, "request_changes", "Cheaper, please")
	require.Contains(t, after.HTML, "You asked for changes")
	b.expectProposal(t, webhook.ProposalRevisionRequested, id)

	// Until it is shared again, the page takes no answer.
	res := srcPostAnswer(t, shareURL, "accept")
	require.Equal(t, http.StatusConflict, res.Status)
	require.Contains(t, res.HTML, "Changes were requested")

	srcCall(t, b.env, b.env.Key, "PUT", "/proposals/"+id, map[string]any{"line_items": []any{
		map[string]any{"description": "Design", "quantity": 1, "unit_price": json.Number("2000")}}}, http.StatusOK)
	b.expectProposal(t, webhook.ProposalUpdated, id)
	p = srcCall(t, b.env, b.env.Key, "POST", "/proposals/"+id+"/share", nil, http.StatusOK)
	require.Equal(t, shareURL, p["share_url"], "the client's link works again")
	b.expectProposal(t, webhook.ProposalShared, id)

	pg := srcGetPage(t, shareURL)
	require.Len(t, pg.forms(), 3, "the page takes answers again")
	require.Contains(t, pg.HTML, "2,000.00")
	srcAnswer(t, shareURL, "accept", "")
	_, p = b.expectProposal(t, webhook.ProposalAccepted, id)
	require.Equal(t, "accepted", p["status"])
	require.Equal(t, "2000.00", string(p["total"].(json.Number)))
}

func TestSharingASharedProposalKeepsTheLinkAndFiresNothing(t *testing.T) {
	t.Parallel()
	b := srcSetup(t)
	p := b.createShared(t, srcProposalBody())
	again := srcCall(t, b.env, b.env.Key, "POST", "/proposals/"+p["id"].(string)+"/share", nil, http.StatusOK)
	require.Equal(t, p["share_url"], again["share_url"])
	require.Equal(t, p["updated_at"], again["updated_at"])
	// An edit of a shared proposal keeps it shared with the same link.
	edited := srcCall(t, b.env, b.env.Key, "PUT", "/proposals/"+p["id"].(string), map[string]any{"requirements": "More"}, http.StatusOK)
	require.Equal(t, "shared", edited["status"])
	require.Equal(t, p["share_url"], edited["share_url"])
	b.expectProposal(t, webhook.ProposalUpdated, p["id"].(string))
	b.signal(t)
}

func TestProposalAndLeadInvalidTransitionsAre409(t *testing.T) {
	t.Parallel()
	b := srcSetup(t)
	env, key := b.env, b.env.Key
	conflict := func(t *testing.T, method, path string, body any) {
		t.Helper()
		srcRequireError(t, srcCall(t, env, key, method, path, body, http.StatusConflict), "conflict")
	}

	accepted := b.createShared(t, srcProposalBody())
	srcAnswer(t, accepted["share_url"].(string), "accept", "")
	b.expect(t, webhook.ProposalAccepted)
	rejected := b.createShared(t, srcProposalBody())
	srcAnswer(t, rejected["share_url"].(string), "reject", "")
	b.expect(t, webhook.ProposalRejected)
	for _, p := range []map[string]any{accepted, rejected} {
		id := p["id"].(string)
		conflict(t, "POST", "/proposals/"+id+"/share", nil)
		conflict(t, "PUT", "/proposals/"+id, map[string]any{"name": "Changed"})
		conflict(t, "PUT", "/proposals/"+id, map[string]any{"line_items": []any{}}) // state is judged before input
		require.Equal(t, http.StatusConflict, srcPostAnswer(t, p["share_url"].(string), "accept").Status)
	}
	revised := b.createShared(t, srcProposalBody())
	srcAnswer(t, revised["share_url"].(string), "request_changes", "")
	b.expect(t, webhook.ProposalRevisionRequested)
	for _, a := range []string{"accept", "reject", "request_changes"} {
		require.Equal(t, http.StatusConflict, srcPostAnswer(t, revised["share_url"].(string), a).Status)
	}

	// Lead sessions: gathering_info → proposal_ready → completed, either of the first two →
	// abandoned; completed and abandoned are final.
	newLead := func(t *testing.T) string {
		t.Helper()
		l := srcCall(t, env, key, "POST", "/lead-sessions", map[string]any{"channel": "widget", "channel_id": "v", "client_name": "C", "brief": ""}, http.StatusCreated)
		b.expect(t, webhook.LeadSessionCreated)
		return "/lead-sessions/" + l["id"].(string)
	}
	move := func(t *testing.T, path, status string) {
		t.Helper()
		srcCall(t, env, key, "PUT", path, map[string]any{"status": status}, http.StatusOK)
		e := b.expect(t, webhook.LeadSessionUpdated)
		require.Equal(t, status, e.Data["status"])
	}
	gathering := newLead(t)
	conflict(t, "PUT", gathering, map[string]any{"status": "completed"})
	ready := newLead(t)
	move(t, ready, "proposal_ready")
	conflict(t, "PUT", ready, map[string]any{"status": "gathering_info"})
	completed := newLead(t)
	move(t, completed, "proposal_ready")
	move(t, completed, "completed")
	abandoned := newLead(t)
	move(t, abandoned, "abandoned")
	for _, final := range []string{completed, abandoned} {
		for _, s := range []string{"gathering_info", "proposal_ready", "completed", "abandoned"} {
			got := srcCall(t, env, key, "GET", final, nil, http.StatusOK)
			if s == got["status"] {
				srcCall(t, env, key, "PUT", final, map[string]any{"status": s}, http.StatusOK) // no move, no conflict
				continue
			}
			conflict(t, "PUT", final, map[string]any{"status": s})
		}
	}
	// The current status again is no move: 200 and no event.
	srcCall(t, env, key, "PUT", gathering, map[string]any{"status": "gathering_info"}, http.StatusOK)
	got := srcCall(t, env, key, "GET", gathering, nil, http.StatusOK)
	require.Equal(t, "gathering_info", got["status"], "a refused move changes nothing")
	b.signal(t)
}

func TestProposalTotalsAreExact(t *testing.T) {
	t.Parallel()
	b := srcSetup(t, webhook.ProposalCreated)
	for _, tc := range []struct {
		name     string
		currency string
		items    [][2]string // quantity, unit price, as JSON number text
		prices   []string    // unit prices as the API writes them
		total    string
	}{
		{"TenthTimesThree", "USD", [][2]string{{"3", "0.1"}}, []string{"0.10"}, "0.30"},
		{"CentsTimesTwo", "USD", [][2]string{{"2", "100.10"}}, []string{"100.10"}, "200.20"},
		{"Mixed", "usd", [][2]string{{"3", "0.1"}, {"2", "100.10"}, {"1", "0.07"}}, []string{"0.10", "100.10", "0.07"}, "200.57"},
		{"Exponent", "USD", [][2]string{{"2e0", "1.5e1"}}, []string{"15.00"}, "30.00"},
		{"Largest", "USD", [][2]string{{"1", "9999999999999.99"}}, []string{"9999999999999.99"}, "9999999999999.99"},
		{"Yen", "JPY", [][2]string{{"3", "1500"}, {"1", "1"}}, []string{"1500", "1"}, "4501"},
		{"Dinar", "KWD", [][2]string{{"3", "0.125"}, {"2", "1.1"}}, []string{"0.125", "1.100"}, "2.575"},
		{"Free", "EUR", [][2]string{{"5", "0"}}, []string{"0.00"}, "0.00"},
	} {
		items := make([]any, len(tc.items))
		for i, it := range tc.items {
			items[i] = map[string]any{"description": "Item", "quantity": json.Number(it[0]), "unit_price": json.Number(it[1])}
		}
		body := srcProposalBody()
		body["currency"], body["line_items"] = tc.currency, items
		res := b.env.Do(b.env.Key, "POST", "/proposals", body)
		require.Equal(t, http.StatusCreated, res.Status, "%s: %s", tc.name, res.Body)
		require.Contains(t, string(res.Body), `"total":`+tc.total+`,`, "%s: a JSON number with the currency's decimals", tc.name)
		p := srcDecode(t, res.Body)
		require.Equal(t, strings.ToUpper(tc.currency), p["currency"])
		for i, li := range p["line_items"].([]any) {
			require.Equal(t, json.Number(tc.prices[i]), li.(map[string]any)["unit_price"], tc.name)
		}
		e := b.expect(t, webhook.ProposalCreated)
		require.Equal(t, json.Number(tc.total), e.Data["total"], tc.name)
		require.Equal(t, p["id"], e.Data["proposal_id"])
	}

	// Amounts finer than the currency, or not numbers at all, are refused naming the field.
	for _, tc := range []struct {
		name, currency string
		item           map[string]any
		field          string
	}{
		{"YenFraction", "JPY", map[string]any{"quantity": 1, "unit_price": json.Number("0.5")}, "line_items[0].unit_price"},
		{"TenthOfACent", "USD", map[string]any{"quantity": 1, "unit_price": json.Number("1.001")}, "line_items[0].unit_price"},
		{"DinarTooFine", "KWD", map[string]any{"quantity": 1, "unit_price": json.Number("0.0001")}, "line_items[0].unit_price"},
		{"Negative", "USD", map[string]any{"quantity": 1, "unit_price": json.Number("-1")}, "line_items[0].unit_price"},
		{"PriceAsString", "USD", map[string]any{"quantity": 1, "unit_price": "10.50"}, "line_items[0].unit_price"},
		{"QuantityAsString", "USD", map[string]any{"quantity": "2", "unit_price": 1}, "line_items[0].quantity"},
		{"FractionalQuantity", "USD", map[string]any{"quantity": json.Number("1.5"), "unit_price": 1}, "line_items[0].quantity"},
		{"ZeroQuantity", "USD", map[string]any{"quantity": 0, "unit_price": 1}, "line_items[0].quantity"},
		{"TooLarge", "USD", map[string]any{"quantity": 1, "unit_price": json.Number("10000000000000")}, "line_items[0].unit_price"},
	} {
		tc.item["description"] = "Item"
		body := srcProposalBody()
		body["currency"], body["line_items"] = tc.currency, []any{tc.item}
		fields := srcRequireError(t, srcCall(t, b.env, b.env.Key, "POST", "/proposals", body, http.StatusUnprocessableEntity), "validation_failed")
		require.Contains(t, fields, tc.field, tc.name)
	}
	list := srcCall(t, b.env, b.env.Key, "GET", "/proposals?limit=200", nil, http.StatusOK)
	require.Len(t, list["data"], 8, "refused proposals are not stored")
}

func TestFailureBeforeCommitLeavesNeitherRowNorEvent(t *testing.T) {
	t.Parallel()
	simulated := errors.New("simulated crash before commit")
	failOn := func(b *srcBundle, event string) (remove func()) {
		return b.env.FailBeforeCommit(func(_ context.Context, eventType string) error {
			if eventType == event {
				return simulated
			}
			return nil
		})
	}

	t.Run("CreateProposal", func(t *testing.T) {
		t.Parallel()
		b := srcSetup(t)
		remove := failOn(b, webhook.ProposalCreated)
		srcRequireError(t, srcCall(t, b.env, b.env.Key, "POST", "/proposals", srcProposalBody(), http.StatusInternalServerError), "internal")
		list := srcCall(t, b.env, b.env.Key, "GET", "/proposals", nil, http.StatusOK)
		require.Empty(t, list["data"], "no row")
		remove()
		p := srcCall(t, b.env, b.env.Key, "POST", "/proposals", srcProposalBody(), http.StatusCreated)
		e := b.expect(t, webhook.ProposalCreated)
		require.Equal(t, p["id"], e.Data["proposal_id"], "the failed create's event never arrives")
		list = srcCall(t, b.env, b.env.Key, "GET", "/proposals", nil, http.StatusOK)
		require.Len(t, list["data"], 1)
	})

	t.Run("UpdateProposal", func(t *testing.T) {
		t.Parallel()
		b := srcSetup(t)
		p := srcCall(t, b.env, b.env.Key, "POST", "/proposals", srcProposalBody(), http.StatusCreated)
		b.expect(t, webhook.ProposalCreated)
		remove := failOn(b, webhook.ProposalUpdated)
		srcCall(t, b.env, b.env.Key, "PUT", "/proposals/"+p["id"].(string), map[string]any{"name": "Lost"}, http.StatusInternalServerError)
		got := srcCall(t, b.env, b.env.Key, "GET", "/proposals/"+p["id"].(string), nil, http.StatusOK)
		require.Equal(t, p, got, "the row is as it was")
		remove()
		b.signal(t)
	})

	t.Run("AnswerOnTheSharePage", func(t *testing.T) {
		t.Parallel()
		b := srcSetup(t)
		p := b.createShared(t, srcProposalBody())
		remove := failOn(b, webhook.ProposalAccepted)
		res := srcPostAnswer(t, p["share_url"].(string), "accept")
		require.Equal(t, http.StatusInternalServerError, res.Status)
		require.Contains(t, res.HTML, "Something went wrong")
		require.NotContains(t, res.HTML, simulated.Error(), "internal errors are not shown")
		got := srcCall(t, b.env, b.env.Key, "GET", "/proposals/"+p["id"].(string), nil, http.StatusOK)
		require.Equal(t, "shared", got["status"])
		require.Nil(t, got["responded_at"])
		remove()
		srcAnswer(t, p["share_url"].(string), "accept", "")
		e, _ := b.expectProposal(t, webhook.ProposalAccepted, p["id"].(string))
		require.Equal(t, "accepted", e.Data["status"])
	})

	t.Run("LeadSessionStatus", func(t *testing.T) {
		t.Parallel()
		b := srcSetup(t)
		l := srcCall(t, b.env, b.env.Key, "POST", "/lead-sessions", map[string]any{"channel": "api", "channel_id": "x", "client_name": "C"}, http.StatusCreated)
		b.expect(t, webhook.LeadSessionCreated)
		remove := failOn(b, webhook.LeadSessionUpdated)
		srcCall(t, b.env, b.env.Key, "PUT", "/lead-sessions/"+l["id"].(string), map[string]any{"status": "abandoned", "brief": "gone"}, http.StatusInternalServerError)
		got := srcCall(t, b.env, b.env.Key, "GET", "/lead-sessions/"+l["id"].(string), nil, http.StatusOK)
		require.Equal(t, l, got, "neither the status nor the brief changed")
		remove()
		b.signal(t)
	})
}

func TestSharePageRefusesCrossSitePosts(t *testing.T) {
	t.Parallel()
	b := srcSetup(t)
	p := b.createShared(t, srcProposalBody())
	shareURL := p["share_url"].(string)

	for name, headers := range map[string]map[string]string{
		"CrossSiteFetch":  {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		"SameSiteFetch":   {"Sec-Fetch-Site": "same-site", "Origin": "https://sub." + "evil.example"},
		"ForeignOrigin":   {"Sec-Fetch-Site": "", "Origin": "https://evil.example"},
		"NullOriginFrame": {"Sec-Fetch-Site": "", "Origin": "null"},
	} {
		res := srcSubmit(t, shareURL, "", url.Values{"answer": {"accept"}}, headers)
		require.Equal(t, http.StatusForbidden, res.Status, name)
		require.Contains(t, res.HTML, "Your answer was not recorded", name)
	}
	got := srcCall(t, b.env, b.env.Key, "GET", "/proposals/"+p["id"].(string), nil, http.StatusOK)
	require.Equal(t, "shared", got["status"], "a refused post changes nothing")
	b.signal(t)
}

func TestSharePageContent(t *testing.T) {
	t.Parallel()
	b := srcSetup(t)
	body := srcProposalBody()
	body["name"] = `Redesign <script>alert(1)</script>`
	body["line_items"] = []any{
		map[string]any{"description": "Design & build", "quantity": 1, "unit_price": json.Number("12500")},
		map[string]any{"description": "Hours", "quantity": 3, "unit_price": json.Number("0.1")},
	}
	p := b.createShared(t, body)
	shareURL := p["share_url"].(string)

	t.Run("ShowsTheProposal", func(t *testing.T) {
		t.Parallel()
		pg := srcGetPage(t, shareURL)
		require.Equal(t, http.StatusOK, pg.Status)
		require.Equal(t, "text/html; charset=utf-8", pg.Header.Get("Content-Type"))
		require.Contains(t, pg.HTML, `<meta name="viewport" content="width=device-width, initial-scale=1">`)
		require.Contains(t, pg.HTML, "Redesign &lt;script&gt;alert(1)&lt;/script&gt;", "escaped")
		require.NotContains(t, pg.HTML, "<script>")
		require.Contains(t, pg.HTML, "Acme Corp")
		require.Contains(t, pg.HTML, "Design &amp; build")
		require.Contains(t, pg.HTML, "12,500.00")
		require.Contains(t, pg.HTML, "12,500.30 USD", "the total")
		require.Contains(t, pg.HTML, "A marketing site\nwith a blog.", "the requirements")
		self := strings.TrimPrefix(shareURL, b.env.URL)
		require.Equal(t, map[string]string{"accept": self, "reject": self, "request_changes": self}, pg.forms(),
			"three forms that post back to the page")
		require.Contains(t, pg.HTML, `<textarea id="comment" name="comment"`)
		require.Contains(t, pg.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
		require.Equal(t, "no-referrer", pg.Header.Get("Referrer-Policy"), "the token never leaks through Referer")
		require.Equal(t, "no-store", pg.Header.Get("Cache-Control"))
	})

	t.Run("UnknownTokenIsAFriendly404", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/p/" + strings.Repeat("A", 32), "/p/short", "/p/", "/p/" + strings.Repeat("A", 32) + "/x"} {
			pg := srcGetPage(t, b.env.URL+path)
			require.Equal(t, http.StatusNotFound, pg.Status, path)
			require.Contains(t, pg.HTML, "This link doesn&#39;t lead to a proposal", path)
			require.Contains(t, pg.HTML, `name="viewport"`)
		}
		res := srcSubmit(t, b.env.URL+"/p/"+strings.Repeat("A", 32), "", url.Values{"answer": {"accept"}}, nil)
		require.Equal(t, http.StatusNotFound, res.Status)
	})

	t.Run("BadAnswerIs422", func(t *testing.T) {
		t.Parallel()
		res := srcSubmit(t, shareURL, "", url.Values{"answer": {"maybe"}}, nil)
		require.Equal(t, http.StatusUnprocessableEntity, res.Status)
		require.Contains(t, res.HTML, "Please choose Accept, Reject or Request changes")
		long := strings.Repeat("x", 2001)
		res = srcSubmit(t, shareURL, "", url.Values{"answer": {"request_changes"}, "comment": {long}}, nil)
		require.Equal(t, http.StatusUnprocessableEntity, res.Status)
		require.Contains(t, res.HTML, "at most 2000 characters")
		require.Contains(t, res.HTML, long, "the comment is kept for the client to shorten")
		got := srcCall(t, b.env, b.env.Key, "GET", "/proposals/"+p["id"].(string), nil, http.StatusOK)
		require.Equal(t, "shared", got["status"])
	})
}

func TestProposalValidationErrorsNameTheFields(t *testing.T) {
	t.Parallel()
	b := srcSetup(t)
	env, key := b.env, b.env.Key
	invalid := func(t *testing.T, method, path string, body any, fields ...string) {
		t.Helper()
		got := srcRequireError(t, srcCall(t, env, key, method, path, body, http.StatusUnprocessableEntity), "validation_failed")
		require.ElementsMatch(t, fields, srcKeys(got), "%s %s: %v", method, path, got)
	}

	invalid(t, "POST", "/proposals", map[string]any{}, "name", "client_name", "currency", "line_items")
	invalid(t, "POST", "/proposals", map[string]any{"name": "N", "client_name": "C", "currency": "XYZ", "client_email": "bob@gmail",
		"line_items": []any{map[string]any{"description": "", "quantity": 1, "unit_price": 1}}},
		"currency", "client_email", "line_items[0].description")
	invalid(t, "POST", "/proposals", map[string]any{"name": "N", "client_name": "C", "currency": "USD", "line_items": "many"}, "line_items")
	invalid(t, "POST", "/proposals", map[string]any{"name": "N", "client_name": "C", "currency": "USD", "line_items": []any{"x", 5}},
		"line_items[0]", "line_items[1]")
	invalid(t, "POST", "/proposals", map[string]any{"name": "N", "client_name": "C", "currency": "USD",
		"line_items": []any{map[string]any{"description": "D", "quantity": 1, "unit_price": 1, "tax": 2}}}, "line_items[0].tax")
	invalid(t, "POST", "/proposals", map[string]any{"name": "N", "client_name": "C", "currency": "USD",
		"line_items": []any{map[string]any{"description": "D", "quantity": nil, "unit_price": true}}},
		"line_items[0].quantity", "line_items[0].unit_price")
	invalid(t, "POST", "/proposals", map[string]any{"name": 5}, "name")
	invalid(t, "POST", "/proposals", map[string]any{"status": "accepted"}, "status")
	invalid(t, "POST", "/lead-sessions", map[string]any{}, "channel", "channel_id", "client_name")
	invalid(t, "POST", "/lead-sessions", map[string]any{"channel": "email", "channel_id": "x", "client_name": "C"}, "channel")

	p := srcCall(t, env, key, "POST", "/proposals", srcProposalBody(), http.StatusCreated)
	b.expect(t, webhook.ProposalCreated)
	path := "/proposals/" + p["id"].(string)
	invalid(t, "PUT", path, map[string]any{"name": "", "currency": "EUR", "line_items": []any{}}, "name", "line_items")
	invalid(t, "PUT", path, map[string]any{"currency": "JPY"}, "currency") // 0.10 has no yen equivalent
	invalid(t, "PUT", path, map[string]any{"status": "accepted"}, "status")
	srcRequireError(t, srcCall(t, env, key, "PUT", path, `{"name":`, http.StatusBadRequest), "invalid_json")
	require.Equal(t, p, srcCall(t, env, key, "GET", path, nil, http.StatusOK), "bad input changes nothing")

	l := srcCall(t, env, key, "POST", "/lead-sessions", map[string]any{"channel": "api", "channel_id": "x", "client_name": "C"}, http.StatusCreated)
	require.Equal(t, "", l["brief"])
	b.expect(t, webhook.LeadSessionCreated)
	lpath := "/lead-sessions/" + l["id"].(string)
	invalid(t, "PUT", lpath, map[string]any{"status": "won", "client_name": ""}, "status", "client_name")
	invalid(t, "PUT", lpath, map[string]any{"channel": "widget"}, "channel")
	require.Equal(t, l, srcCall(t, env, key, "GET", lpath, nil, http.StatusOK))

	// None of it fired anything.
	b.signal(t)
}

func TestProposalTenancyAndUnknownIDsAre404(t *testing.T) {
	t.Parallel()
	b := srcSetup(t)
	env := b.env
	other := env.NewKey("globex")
	p := srcCall(t, env, env.Key, "POST", "/proposals", srcProposalBody(), http.StatusCreated)
	b.expect(t, webhook.ProposalCreated)
	l := srcCall(t, env, env.Key, "POST", "/lead-sessions", map[string]any{"channel": "api", "channel_id": "x", "client_name": "C"}, http.StatusCreated)
	b.expect(t, webhook.LeadSessionCreated)
	pid, lid := p["id"].(string), l["id"].(string)

	notFound := func(t *testing.T, key, method, path string, body any) {
		t.Helper()
		srcRequireError(t, srcCall(t, env, key, method, path, body, http.StatusNotFound), "not_found")
	}
	for _, id := range []string{pid, "not-a-uuid", strings.ToUpper(pid), "00000000-0000-4000-8000-000000000000"} {
		k := env.Key
		if id == pid {
			k = other // another account's proposal is as absent as an unknown one
		}
		notFound(t, k, "GET", "/proposals/"+id, nil)
		notFound(t, k, "PUT", "/proposals/"+id, map[string]any{"name": "Mine now"})
		notFound(t, k, "PUT", "/proposals/"+id, `{"not json`) // 404 before the body is judged
		notFound(t, k, "POST", "/proposals/"+id+"/share", nil)
	}
	for _, id := range []string{lid, "not-a-uuid"} {
		k := env.Key
		if id == lid {
			k = other
		}
		notFound(t, k, "GET", "/lead-sessions/"+id, nil)
		notFound(t, k, "PUT", "/lead-sessions/"+id, map[string]any{"status": "abandoned"})
	}
	require.Empty(t, srcCall(t, env, other, "GET", "/proposals", nil, http.StatusOK)["data"])
	require.Empty(t, srcCall(t, env, other, "GET", "/lead-sessions", nil, http.StatusOK)["data"])
	require.Equal(t, p, srcCall(t, env, env.Key, "GET", "/proposals/"+pid, nil, http.StatusOK), "unchanged")
	require.Equal(t, l, srcCall(t, env, env.Key, "GET", "/lead-sessions/"+lid, nil, http.StatusOK), "unchanged")

	// Without a key, 401 comes first.
	srcRequireError(t, srcCall(t, env, "", "GET", "/proposals/"+pid, nil, http.StatusUnauthorized), "unauthorized")
	b.signal(t)
}

func TestProposalListsPageNewestFirst(t *testing.T) {
	t.Parallel()
	b := srcSetup(t, webhook.ProposalAccepted) // subscribed to nothing that fires here
	env, key := b.env, b.env.Key
	for _, kind := range []struct{ path string }{{"/proposals"}, {"/lead-sessions"}} {
		var ids []string
		for i := range 3 {
			var body map[string]any
			if kind.path == "/proposals" {
				body = srcProposalBody()
				body["name"] = fmt.Sprintf("P%d", i)
			} else {
				body = map[string]any{"channel": "api", "channel_id": fmt.Sprint(i), "client_name": "C"}
			}
			ids = append(ids, srcCall(t, env, key, "POST", kind.path, body, http.StatusCreated)["id"].(string))
		}
		first := srcCall(t, env, key, "GET", kind.path+"?limit=2", nil, http.StatusOK)
		data := first["data"].([]any)
		require.Equal(t, []any{ids[2], ids[1]}, []any{data[0].(map[string]any)["id"], data[1].(map[string]any)["id"]})
		cursor := first["next_cursor"].(string)
		rest := srcCall(t, env, key, "GET", kind.path+"?limit=2&cursor="+url.QueryEscape(cursor), nil, http.StatusOK)
		require.Len(t, rest["data"], 1)
		require.Equal(t, ids[0], rest["data"].([]any)[0].(map[string]any)["id"])
		require.Nil(t, rest["next_cursor"])
		srcRequireError(t, srcCall(t, env, key, "GET", kind.path+"?limit=201", nil, http.StatusUnprocessableEntity), "validation_failed")
		srcRequireError(t, srcCall(t, env, key, "GET", kind.path+"?cursor=garbage", nil, http.StatusUnprocessableEntity), "validation_failed")
	}
}
