package console

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// Page sizes: the webhook list uses the API's default; logs are read in smaller pages.
const (
	logPageSize = 25
	// recentAttempts feeds the recent-success indicator of each webhook.
	recentAttempts = 10
)

// --- sign-in ---

// signInPage is the data of signin.html.
type signInPage struct {
	pageBase
	Error string
}

// handleRoot handles "GET /": the console starts at Settings → Webhooks.
func (c *handler) handleRoot(w http.ResponseWriter, r *http.Request) {
	if c.optionalSession(r) == nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
}

// handleSignInForm handles "GET /signin".
func (c *handler) handleSignInForm(w http.ResponseWriter, r *http.Request) {
	if c.optionalSession(r) != nil {
		http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "signin.html", &signInPage{pageBase: pageBase{Title: "Sign in",
		Notice: noticeText(r.URL.Query().Get("notice"))}})
}

// handleSignIn handles "POST /signin". There is no session yet to bind a CSRF token to, so
// http.CrossOriginProtection alone guards it (against login CSRF).
func (c *handler) handleSignIn(w http.ResponseWriter, r *http.Request) {
	if !c.parseForm(w, r, nil) {
		return
	}
	s, err := c.app.SignIn(r.Context(), r.PostForm.Get("api_key"))
	if errs.CodeOf(err) == errs.Unauthorized {
		c.render(w, r, http.StatusUnauthorized, "signin.html", &signInPage{pageBase: pageBase{Title: "Sign in"},
			Error: err.Error()})
		return
	}
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	// A fresh id on every sign-in: an id planted before sign-in (session fixation) is worthless, and
	// the browser's previous session, if any, ends here.
	if old := c.sessionID(r); old != "" {
		if err := c.app.SignOut(r.Context(), old); err != nil {
			c.log.Warn("console: end previous session", "err", err)
		}
	}
	c.setSessionCookie(w, s)
	http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
}

// handleSignOut handles "POST /signout": the session ends on the server, not just in the browser.
func (c *handler) handleSignOut(w http.ResponseWriter, r *http.Request, s *app.Session) {
	if err := c.app.SignOut(r.Context(), s.ID); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.clearSessionCookie(w)
	http.Redirect(w, r, "/signin?notice=signedout", http.StatusSeeOther)
}

// --- webhooks ---

// listPage is the data of webhooks.html.
type listPage struct {
	pageBase
	Webhooks   []*webhookView
	NextCursor string
	Paged      bool // not the first page
}

var settingsCrumb = crumb{Label: "Settings"}

func webhooksCrumb() []crumb {
	return []crumb{settingsCrumb, {Label: "Webhooks", Href: "/webhooks"}}
}

// handleWebhookList handles "GET /webhooks": Settings → Webhooks.
func (c *handler) handleWebhookList(w http.ResponseWriter, r *http.Request, s *app.Session) {
	cursor := r.URL.Query().Get("cursor")
	p, err := c.app.ListWebhooks(r.Context(), s.Account.ID, 0, cursor)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	page := &listPage{pageBase: pageBase{Title: "Webhooks", Session: s,
		Crumbs: []crumb{settingsCrumb, {Label: "Webhooks"}}, Notice: noticeText(r.URL.Query().Get("notice"))},
		NextCursor: p.NextCursor, Paged: cursor != ""}
	for _, wh := range p.Items {
		v, err := c.withRecent(r, s, wh)
		if err != nil {
			c.fail(w, r, s, err)
			return
		}
		page.Webhooks = append(page.Webhooks, v)
	}
	c.render(w, r, http.StatusOK, "webhooks.html", page)
}

// withRecent adds the latest attempts for the recent-success indicator.
func (c *handler) withRecent(r *http.Request, s *app.Session, wh *webhook.Webhook) (*webhookView, error) {
	v := webhookViewOf(wh, c.now())
	logs, err := c.app.ListLogs(r.Context(), s.Account.ID, wh.ID, app.LogFilter{}, recentAttempts, "")
	if err != nil {
		return nil, err
	}
	for _, a := range logs.Items {
		v.Recent = append(v.Recent, &attemptView{a})
	}
	return v, nil
}

// formPage is the data of webhook_form.html, for create and edit.
type formPage struct {
	pageBase
	Action    string
	Submit    string
	Editing   *webhookView // nil when creating
	Name      string
	URL       string
	Active    bool
	Events    []eventOption
	Errors    map[string]string
	AllowHTTP bool
	// Extra holds the format, custom headers and rate limit fields (formats.go).
	Extra formExtra
}

// handleWebhookNew handles "GET /webhooks/new".
func (c *handler) handleWebhookNew(w http.ResponseWriter, r *http.Request, s *app.Session) {
	page := c.newForm(s, "", "", true, nil, nil)
	page.Extra = formExtraOf("", nil, "")
	c.render(w, r, http.StatusOK, "webhook_form.html", page)
}

func (c *handler) newForm(s *app.Session, name, url string, active bool, events []string, fieldErrs map[string]string) *formPage {
	return &formPage{pageBase: pageBase{Title: "Create webhook", Session: s,
		Crumbs: append(webhooksCrumb(), crumb{Label: "Create webhook"})},
		Action: "/webhooks", Submit: "Create webhook", Name: name, URL: url, Active: active,
		Events: eventOptions(events), Errors: fieldErrs, AllowHTTP: c.app.AllowPrivateTargets}
}

// formInput reads the create/edit form. Every field is present on these forms, so an unticked
// "active" box means paused and no ticked event means none (which validation refuses).
func formInput(r *http.Request) (app.WebhookInput, string, string, bool, []string) {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	url := strings.TrimSpace(r.PostForm.Get("url"))
	active := r.PostForm.Get("active") != ""
	events := r.PostForm["events"]
	if events == nil {
		events = []string{}
	}
	return app.WebhookInput{Name: &name, URL: &url, Events: &events, IsActive: &active}, name, url, active, events
}

// secretPage is the data of secret.html: the one page that shows a secret.
type secretPage struct {
	pageBase
	Webhook     *webhookView
	Secret      string
	Regenerated bool
}

// handleWebhookCreate handles "POST /webhooks" and redirects (303) to the page that shows the new
// secret once, so a reload cannot create a second webhook.
func (c *handler) handleWebhookCreate(w http.ResponseWriter, r *http.Request, s *app.Session) {
	in, name, url, active, events := formInput(r)
	fieldErrs := map[string]string{}
	in.Format, in.Headers, in.RateLimit = extraInput(r, nil, fieldErrs)
	again := func(fields map[string]string) {
		// Nothing was stored: the form again, with the problems and what was typed (header values
		// excepted: they are never shown back).
		page := c.newForm(s, name, url, active, events, fields)
		page.Extra = formExtraOf(r.PostForm.Get("format"), nil, r.PostForm.Get("rate_limit"))
		c.render(w, r, http.StatusUnprocessableEntity, "webhook_form.html", page)
	}
	if len(fieldErrs) > 0 {
		again(fieldErrs)
		return
	}
	wh, err := c.app.CreateWebhook(r.Context(), s.Account.ID, in)
	if e, ok := errors.AsType[*errs.Error](err); ok && e.Code == errs.Invalid {
		again(e.Fields)
		return
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.redirectToSecret(w, r, s, wh, revealCreated)
}

// redirectToSecret answers a create or a regenerate: 303 to the secret's page, with a reveal token
// (never the secret) in the URL.
func (c *handler) redirectToSecret(w http.ResponseWriter, r *http.Request, s *app.Session, wh *webhook.Webhook, kind revealKind) {
	token := revealToken(s, wh.ID, wh.Secret, kind, c.now().Add(revealTTL))
	http.Redirect(w, r, "/webhooks/"+wh.ID+"/secret?reveal="+token, http.StatusSeeOther)
}

// handleSecret handles "GET /webhooks/{id}/secret?reveal=": the secret just created or regenerated,
// shown once. Shown before, expired, or superseded by a newer secret, it sends the browser to the
// webhook's page, which says the secret is shown only once.
func (c *handler) handleSecret(w http.ResponseWriter, r *http.Request, s *app.Session) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	token := r.URL.Query().Get("reveal")
	kind, ok := checkReveal(s, wh.ID, wh.Secret, token, c.now())
	if !ok || !c.reveals.take(token, c.now()) {
		http.Redirect(w, r, "/webhooks/"+wh.ID+"?notice=secretshown", http.StatusSeeOther)
		return
	}
	v := webhookViewOf(wh, c.now())
	page := &secretPage{pageBase: pageBase{Title: "Webhook created", Session: s, Crumbs: append(webhooksCrumb(), crumb{Label: wh.Name})},
		Webhook: v, Secret: wh.Secret}
	if kind == revealRegenerated {
		page.Title, page.Crumbs, page.Regenerated = "New signing secret", webhookCrumbs(v, crumb{Label: "New secret"}), true
	}
	c.render(w, r, http.StatusOK, "secret.html", page)
}

// webhookPage is the data of webhook.html.
type webhookPage struct {
	pageBase
	Webhook *webhookView
	// TestResult is the attempt of a test event just sent, shown inline.
	TestResult *attemptView
	// Stats are the webhook's pending and held counts (SPEC §10).
	Stats *store.WebhookStats
}

func webhookCrumbs(wh *webhookView, more ...crumb) []crumb {
	if len(more) == 0 {
		return append(webhooksCrumb(), crumb{Label: wh.Name})
	}
	return append(append(webhooksCrumb(), crumb{Label: wh.Name, Href: "/webhooks/" + wh.ID}), more...)
}

// webhookPage loads a webhook and its latest attempts for the webhook page.
func (c *handler) loadWebhookPage(r *http.Request, s *app.Session) (*webhookPage, error) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	v, err := c.withRecent(r, s, wh)
	if err != nil {
		return nil, err
	}
	if len(v.Recent) > 5 {
		v.Recent = v.Recent[:5]
	}
	stats, err := c.app.WebhookStats(r.Context(), s.Account.ID, wh.ID)
	if err != nil {
		return nil, err
	}
	return &webhookPage{pageBase: pageBase{Title: wh.Name, Session: s, Crumbs: webhookCrumbs(v)}, Webhook: v, Stats: stats}, nil
}

// handleWebhookView handles "GET /webhooks/{id}", with ?test={log id} after "Send test event": that
// attempt is shown as the test's result.
func (c *handler) handleWebhookView(w http.ResponseWriter, r *http.Request, s *app.Session) {
	page, err := c.loadWebhookPage(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	page.Notice = noticeText(r.URL.Query().Get("notice"))
	if logID := r.URL.Query().Get("test"); logID != "" {
		at, err := c.app.GetLog(r.Context(), s.Account.ID, page.Webhook.ID, logID)
		switch {
		case err == nil:
			page.TestResult = &attemptView{at}
		case err != nil && errs.CodeOf(err) != errs.NotFound && errs.CodeOf(err) != errs.Invalid:
			c.fail(w, r, s, err)
			return
		} // a stale or edited link shows the page without a result
	}
	c.render(w, r, http.StatusOK, "webhook.html", page)
}

// handleWebhookEditForm handles "GET /webhooks/{id}/edit".
func (c *handler) handleWebhookEditForm(w http.ResponseWriter, r *http.Request, s *app.Session) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	page := c.editForm(s, webhookViewOf(wh, c.now()), wh.Name, wh.URL, wh.IsActive, wh.Events, nil)
	page.Extra = formExtraOf(wh.Format, wh.Headers, rateLimitText(wh.RateLimit))
	c.render(w, r, http.StatusOK, "webhook_form.html", page)
}

func (c *handler) editForm(s *app.Session, v *webhookView, name, url string, active bool, events []string, fieldErrs map[string]string) *formPage {
	return &formPage{pageBase: pageBase{Title: "Edit " + v.Name, Session: s,
		Crumbs: webhookCrumbs(v, crumb{Label: "Edit"})},
		Action: "/webhooks/" + v.ID + "/edit", Submit: "Save changes", Editing: v, Name: name, URL: url, Active: active,
		Events: eventOptions(events), Errors: fieldErrs, AllowHTTP: c.app.AllowPrivateTargets}
}

// handleWebhookEdit handles "POST /webhooks/{id}/edit".
func (c *handler) handleWebhookEdit(w http.ResponseWriter, r *http.Request, s *app.Session) {
	id := r.PathValue("id")
	in, name, url, active, events := formInput(r)
	// The stored headers, whose values a row left empty keeps.
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, id)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	fieldErrs := map[string]string{}
	in.Format, in.Headers, in.RateLimit = extraInput(r, wh.Headers, fieldErrs)
	again := func(fields map[string]string) {
		page := c.editForm(s, webhookViewOf(wh, c.now()), name, url, active, events, fields)
		page.Extra = formExtraOf(cmp.Or(r.PostForm.Get("format"), wh.Format), wh.Headers, r.PostForm.Get("rate_limit"))
		c.render(w, r, http.StatusUnprocessableEntity, "webhook_form.html", page)
	}
	if len(fieldErrs) > 0 {
		again(fieldErrs)
		return
	}
	_, err = c.app.UpdateWebhook(r.Context(), s.Account.ID, id, in)
	if e, ok := errors.AsType[*errs.Error](err); ok && e.Code == errs.Invalid {
		again(e.Fields)
		return
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/webhooks/"+id+"?notice=updated", http.StatusSeeOther)
}

// handleWebhookToggle handles "POST /webhooks/{id}/toggle": the pause/resume switch. The form says
// which state it wants rather than "flip", so a double submit cannot undo itself. The page's script
// posts it with Accept: application/json and gets the new state; without script it is a plain form
// that redirects back.
func (c *handler) handleWebhookToggle(w http.ResponseWriter, r *http.Request, s *app.Session) {
	id := r.PathValue("id")
	active := r.PostForm.Get("active") == "true"
	wh, err := c.app.UpdateWebhook(r.Context(), s.Account.ID, id, app.WebhookInput{IsActive: &active})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]any{"id": wh.ID, "is_active": wh.IsActive})
		return
	}
	notice := "paused"
	if wh.IsActive {
		notice = "resumed"
	}
	back := "/webhooks/" + wh.ID
	if r.PostForm.Get("back") == "list" {
		back = "/webhooks"
	}
	http.Redirect(w, r, back+"?notice="+notice, http.StatusSeeOther)
}

// handleWebhookTest handles "POST /webhooks/{id}/test": it sends a test event now, then redirects
// (303) to the webhook's page, which shows the outcome; a reload shows it again and sends nothing.
func (c *handler) handleWebhookTest(w http.ResponseWriter, r *http.Request, s *app.Session) {
	id := r.PathValue("id")
	at, err := c.app.TestWebhookEvent(r.Context(), s.Account.ID, id, r.PostForm.Get("event"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/webhooks/"+id+"?test="+url.QueryEscape(at.ID), http.StatusSeeOther)
}

// confirmPage is the data of confirm.html, the no-script confirmation of a drastic action.
type confirmPage struct {
	pageBase
	Webhook *webhookView
	Action  string
	Danger  bool
	Button  string
	Lead    string
	Details []string
}

// handleRegenerateConfirm handles "GET /webhooks/{id}/regenerate".
func (c *handler) handleRegenerateConfirm(w http.ResponseWriter, r *http.Request, s *app.Session) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v := webhookViewOf(wh, c.now())
	c.render(w, r, http.StatusOK, "confirm.html", &confirmPage{pageBase: pageBase{Title: "Regenerate secret",
		Session: s, Crumbs: webhookCrumbs(v, crumb{Label: "Regenerate secret"})}, Webhook: v,
		Action: "/webhooks/" + v.ID + "/regenerate", Button: "Regenerate secret",
		Lead: "A new signing secret replaces the current one, and is shown once.",
		Details: []string{
			"X-Quikly-Signature is signed with the new secret only, from the next delivery on.",
			"The webhook-signature header carries signatures with both the new and the current secret for 24 hours, so receivers that verify it can switch over without dropping events.",
		}})
}

// handleRegenerate handles "POST /webhooks/{id}/regenerate"; like create, it redirects to the page
// that shows the new secret once.
func (c *handler) handleRegenerate(w http.ResponseWriter, r *http.Request, s *app.Session) {
	wh, err := c.app.RegenerateSecret(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.redirectToSecret(w, r, s, wh, revealRegenerated)
}

// handleDeleteConfirm handles "GET /webhooks/{id}/delete".
func (c *handler) handleDeleteConfirm(w http.ResponseWriter, r *http.Request, s *app.Session) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v := webhookViewOf(wh, c.now())
	c.render(w, r, http.StatusOK, "confirm.html", &confirmPage{pageBase: pageBase{Title: "Delete webhook",
		Session: s, Crumbs: webhookCrumbs(v, crumb{Label: "Delete"})}, Webhook: v,
		Action: "/webhooks/" + v.ID + "/delete", Danger: true, Button: "Delete webhook",
		Lead: "This webhook will stop receiving events. This cannot be undone.",
		Details: []string{
			"Deliveries that are still pending or held are cancelled.",
			"Its delivery logs are no longer shown in the console.",
		}})
}

// handleDelete handles "POST /webhooks/{id}/delete".
func (c *handler) handleDelete(w http.ResponseWriter, r *http.Request, s *app.Session) {
	if err := c.app.DeleteWebhook(r.Context(), s.Account.ID, r.PathValue("id")); err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/webhooks?notice=deleted", http.StatusSeeOther)
}

// --- logs ---

// logsPage is the data of logs.html.
type logsPage struct {
	pageBase
	Webhook    *webhookView
	Attempts   []*attemptView
	Status     string // "", "succeeded" or "failed"
	Event      string
	EventTypes []string
	NextCursor string
	Paged      bool
}

// handleLogList handles "GET /webhooks/{id}/logs" with ?status=succeeded|failed, ?event= and
// ?cursor=: attempts newest first.
func (c *handler) handleLogList(w http.ResponseWriter, r *http.Request, s *app.Session) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	q := r.URL.Query()
	var f app.LogFilter
	status := q.Get("status")
	switch status {
	case "succeeded", "failed":
		ok := status == "succeeded"
		f.Succeeded = &ok
	default:
		status = "" // an unknown filter shows everything rather than an error page
	}
	if ev := q.Get("event"); ev == webhook.TestEvent || webhook.InCatalogue(ev) {
		f.EventType = ev
	}
	cursor := q.Get("cursor")
	p, err := c.app.ListLogs(r.Context(), s.Account.ID, wh.ID, f, logPageSize, cursor)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v := webhookViewOf(wh, c.now())
	page := &logsPage{pageBase: pageBase{Title: "Logs · " + wh.Name, Session: s,
		Crumbs: webhookCrumbs(v, crumb{Label: "Logs"}), Wide: true}, Webhook: v, Status: status,
		Event: f.EventType, NextCursor: p.NextCursor, Paged: cursor != ""}
	for _, e := range webhook.Catalogue {
		page.EventTypes = append(page.EventTypes, e.Event)
	}
	page.EventTypes = append(page.EventTypes, webhook.TestEvent)
	for _, a := range p.Items {
		page.Attempts = append(page.Attempts, &attemptView{a})
	}
	c.render(w, r, http.StatusOK, "logs.html", page)
}

// logPage is the data of log.html.
type logPage struct {
	pageBase
	Webhook *webhookView
	Attempt *attemptView
	// ResendError explains why a resend was refused (the delivery is still pending).
	ResendError string
}

func (c *handler) loadLogPage(r *http.Request, s *app.Session) (*logPage, error) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	at, err := c.app.GetLog(r.Context(), s.Account.ID, wh.ID, r.PathValue("log_id"))
	if err != nil {
		return nil, err
	}
	v := webhookViewOf(wh, c.now())
	return &logPage{pageBase: pageBase{Title: at.EventType + " · attempt " + strconv.Itoa(at.Number), Session: s,
		Crumbs: webhookCrumbs(v, crumb{Label: "Logs", Href: "/webhooks/" + v.ID + "/logs"}, crumb{Label: at.ID}), Wide: true},
		Webhook: v, Attempt: &attemptView{at}}, nil
}

// handleLogView handles "GET /webhooks/{id}/logs/{log_id}": one attempt in full.
func (c *handler) handleLogView(w http.ResponseWriter, r *http.Request, s *app.Session) {
	page, err := c.loadLogPage(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	page.Notice = noticeText(r.URL.Query().Get("notice"))
	c.render(w, r, http.StatusOK, "log.html", page)
}

// handleResend handles "POST /webhooks/{id}/logs/{log_id}/resend". A delivery that is still pending
// cannot be resent; the log page says so instead of a bare error page.
func (c *handler) handleResend(w http.ResponseWriter, r *http.Request, s *app.Session) {
	id, logID := r.PathValue("id"), r.PathValue("log_id")
	_, err := c.app.Resend(r.Context(), s.Account.ID, id, logID)
	if errs.CodeOf(err) == errs.Conflict {
		page, perr := c.loadLogPage(r, s)
		if perr != nil {
			c.fail(w, r, s, perr)
			return
		}
		page.ResendError = err.Error()
		c.render(w, r, http.StatusConflict, "log.html", page)
		return
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/webhooks/"+id+"/logs/"+logID+"?notice=resent", http.StatusSeeOther)
}
