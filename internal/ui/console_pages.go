package ui

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// Page sizes: the webhook list uses the API's default; logs are read in smaller pages.
const (
	consoleLogPageSize = 25
	// consoleRecentAttempts feeds the recent-success indicator of each webhook.
	consoleRecentAttempts = 10
)

// --- sign-in ---

// consoleSignInPage is the data of signin.html.
type consoleSignInPage struct {
	consoleBase
	Error string
}

// handleRoot handles "GET /": the console starts at Settings → Webhooks.
func (c *console) handleRoot(w http.ResponseWriter, r *http.Request) {
	if c.optionalSession(r) == nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
}

// handleSignInForm handles "GET /signin".
func (c *console) handleSignInForm(w http.ResponseWriter, r *http.Request) {
	if c.optionalSession(r) != nil {
		http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "signin.html", &consoleSignInPage{consoleBase: consoleBase{Title: "Sign in",
		Notice: consoleNotice(r.URL.Query().Get("notice"))}})
}

// handleSignIn handles "POST /signin". There is no session yet to bind a CSRF token to, so
// http.CrossOriginProtection alone guards it (against login CSRF).
func (c *console) handleSignIn(w http.ResponseWriter, r *http.Request) {
	if !c.parseForm(w, r, nil) {
		return
	}
	s, err := c.app.SignIn(r.Context(), r.PostForm.Get("api_key"))
	if errs.CodeOf(err) == errs.Unauthorized {
		c.render(w, r, http.StatusUnauthorized, "signin.html", &consoleSignInPage{consoleBase: consoleBase{Title: "Sign in"},
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
func (c *console) handleSignOut(w http.ResponseWriter, r *http.Request, s *app.Session) {
	if err := c.app.SignOut(r.Context(), s.ID); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.clearSessionCookie(w)
	http.Redirect(w, r, "/signin?notice=signedout", http.StatusSeeOther)
}

// --- webhooks ---

// consoleListPage is the data of webhooks.html.
type consoleListPage struct {
	consoleBase
	Webhooks   []*consoleWebhook
	NextCursor string
	Paged      bool // not the first page
}

var consoleSettingsCrumb = consoleCrumb{Label: "Settings"}

func consoleWebhooksCrumb() []consoleCrumb {
	return []consoleCrumb{consoleSettingsCrumb, {Label: "Webhooks", Href: "/webhooks"}}
}

// handleWebhookList handles "GET /webhooks": Settings → Webhooks.
func (c *console) handleWebhookList(w http.ResponseWriter, r *http.Request, s *app.Session) {
	cursor := r.URL.Query().Get("cursor")
	p, err := c.app.ListWebhooks(r.Context(), s.Account.ID, 0, cursor)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	page := &consoleListPage{consoleBase: consoleBase{Title: "Webhooks", Session: s,
		Crumbs: []consoleCrumb{consoleSettingsCrumb, {Label: "Webhooks"}}, Notice: consoleNotice(r.URL.Query().Get("notice"))},
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
func (c *console) withRecent(r *http.Request, s *app.Session, wh *webhook.Webhook) (*consoleWebhook, error) {
	v := consoleWebhookOf(wh, c.now())
	logs, err := c.app.ListLogs(r.Context(), s.Account.ID, wh.ID, app.LogFilter{}, consoleRecentAttempts, "")
	if err != nil {
		return nil, err
	}
	for _, a := range logs.Items {
		v.Recent = append(v.Recent, &consoleAttempt{a})
	}
	return v, nil
}

// consoleFormPage is the data of webhook_form.html, for create and edit.
type consoleFormPage struct {
	consoleBase
	Action    string
	Submit    string
	Editing   *consoleWebhook // nil when creating
	Name      string
	URL       string
	Active    bool
	Events    []consoleEventOption
	Errors    map[string]string
	AllowHTTP bool
}

// handleWebhookNew handles "GET /webhooks/new".
func (c *console) handleWebhookNew(w http.ResponseWriter, r *http.Request, s *app.Session) {
	c.render(w, r, http.StatusOK, "webhook_form.html", c.newForm(s, "", "", true, nil, nil))
}

func (c *console) newForm(s *app.Session, name, url string, active bool, events []string, fieldErrs map[string]string) *consoleFormPage {
	return &consoleFormPage{consoleBase: consoleBase{Title: "Create webhook", Session: s,
		Crumbs: append(consoleWebhooksCrumb(), consoleCrumb{Label: "Create webhook"})},
		Action: "/webhooks", Submit: "Create webhook", Name: name, URL: url, Active: active,
		Events: consoleEventOptions(events), Errors: fieldErrs, AllowHTTP: c.app.AllowPrivateTargets}
}

// consoleFormInput reads the create/edit form. Every field is present on these forms, so an unticked
// "active" box means paused and no ticked event means none (which validation refuses).
func consoleFormInput(r *http.Request) (app.WebhookInput, string, string, bool, []string) {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	url := strings.TrimSpace(r.PostForm.Get("url"))
	active := r.PostForm.Get("active") != ""
	events := r.PostForm["events"]
	if events == nil {
		events = []string{}
	}
	return app.WebhookInput{Name: &name, URL: &url, Events: &events, IsActive: &active}, name, url, active, events
}

// consoleSecretPage is the data of secret.html: the one response that carries a secret.
type consoleSecretPage struct {
	consoleBase
	Webhook     *consoleWebhook
	Secret      string
	Regenerated bool
}

// handleWebhookCreate handles "POST /webhooks". The secret is rendered in this response and nowhere
// else: not in a redirect URL, not in a cookie, never again.
func (c *console) handleWebhookCreate(w http.ResponseWriter, r *http.Request, s *app.Session) {
	in, name, url, active, events := consoleFormInput(r)
	wh, err := c.app.CreateWebhook(r.Context(), s.Account.ID, in)
	if e, ok := errors.AsType[*errs.Error](err); ok && e.Code == errs.Invalid {
		c.render(w, r, http.StatusUnprocessableEntity, "webhook_form.html", c.newForm(s, name, url, active, events, e.Fields))
		return
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v := consoleWebhookOf(wh, c.now())
	c.render(w, r, http.StatusCreated, "secret.html", &consoleSecretPage{consoleBase: consoleBase{Title: "Webhook created",
		Session: s, Crumbs: append(consoleWebhooksCrumb(), consoleCrumb{Label: wh.Name})}, Webhook: v, Secret: wh.Secret})
}

// consoleWebhookPage is the data of webhook.html.
type consoleWebhookPage struct {
	consoleBase
	Webhook *consoleWebhook
	// TestResult is the attempt of a test event just sent, shown inline.
	TestResult *consoleAttempt // Stats are the webhook's pending and held counts (SPEC §10).
	Stats      *store.WebhookStats
}

func consoleWebhookCrumbs(wh *consoleWebhook, more ...consoleCrumb) []consoleCrumb {
	if len(more) == 0 {
		return append(consoleWebhooksCrumb(), consoleCrumb{Label: wh.Name})
	}
	return append(append(consoleWebhooksCrumb(), consoleCrumb{Label: wh.Name, Href: "/webhooks/" + wh.ID}), more...)
}

// webhookPage loads a webhook and its latest attempts for the webhook page.
func (c *console) webhookPage(r *http.Request, s *app.Session) (*consoleWebhookPage, error) {
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
	return &consoleWebhookPage{consoleBase: consoleBase{Title: wh.Name, Session: s, Crumbs: consoleWebhookCrumbs(v)}, Webhook: v, Stats: stats}, nil
}

// handleWebhookView handles "GET /webhooks/{id}".
func (c *console) handleWebhookView(w http.ResponseWriter, r *http.Request, s *app.Session) {
	page, err := c.webhookPage(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	page.Notice = consoleNotice(r.URL.Query().Get("notice"))
	c.render(w, r, http.StatusOK, "webhook.html", page)
}

// handleWebhookEditForm handles "GET /webhooks/{id}/edit".
func (c *console) handleWebhookEditForm(w http.ResponseWriter, r *http.Request, s *app.Session) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "webhook_form.html", c.editForm(s, consoleWebhookOf(wh, c.now()), wh.Name, wh.URL, wh.IsActive, wh.Events, nil))
}

func (c *console) editForm(s *app.Session, v *consoleWebhook, name, url string, active bool, events []string, fieldErrs map[string]string) *consoleFormPage {
	return &consoleFormPage{consoleBase: consoleBase{Title: "Edit " + v.Name, Session: s,
		Crumbs: consoleWebhookCrumbs(v, consoleCrumb{Label: "Edit"})},
		Action: "/webhooks/" + v.ID + "/edit", Submit: "Save changes", Editing: v, Name: name, URL: url, Active: active,
		Events: consoleEventOptions(events), Errors: fieldErrs, AllowHTTP: c.app.AllowPrivateTargets}
}

// handleWebhookEdit handles "POST /webhooks/{id}/edit".
func (c *console) handleWebhookEdit(w http.ResponseWriter, r *http.Request, s *app.Session) {
	id := r.PathValue("id")
	in, name, url, active, events := consoleFormInput(r)
	_, err := c.app.UpdateWebhook(r.Context(), s.Account.ID, id, in)
	if e, ok := errors.AsType[*errs.Error](err); ok && e.Code == errs.Invalid {
		wh, gerr := c.app.GetWebhook(r.Context(), s.Account.ID, id)
		if gerr != nil {
			c.fail(w, r, s, gerr)
			return
		}
		c.render(w, r, http.StatusUnprocessableEntity, "webhook_form.html", c.editForm(s, consoleWebhookOf(wh, c.now()), name, url, active, events, e.Fields))
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
func (c *console) handleWebhookToggle(w http.ResponseWriter, r *http.Request, s *app.Session) {
	id := r.PathValue("id")
	active := r.PostForm.Get("active") == "true"
	wh, err := c.app.UpdateWebhook(r.Context(), s.Account.ID, id, app.WebhookInput{IsActive: &active})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if consoleWantsJSON(r) {
		consoleWriteJSON(w, http.StatusOK, map[string]any{"id": wh.ID, "is_active": wh.IsActive})
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

// handleWebhookTest handles "POST /webhooks/{id}/test": it sends a test event now and shows the
// outcome on the webhook page.
func (c *console) handleWebhookTest(w http.ResponseWriter, r *http.Request, s *app.Session) {
	at, err := c.app.TestWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	page, err := c.webhookPage(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	page.TestResult = &consoleAttempt{at}
	c.render(w, r, http.StatusOK, "webhook.html", page)
}

// consoleConfirmPage is the data of confirm.html, the no-script confirmation of a drastic action.
type consoleConfirmPage struct {
	consoleBase
	Webhook *consoleWebhook
	Action  string
	Danger  bool
	Button  string
	Lead    string
	Details []string
}

// handleRegenerateConfirm handles "GET /webhooks/{id}/regenerate".
func (c *console) handleRegenerateConfirm(w http.ResponseWriter, r *http.Request, s *app.Session) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v := consoleWebhookOf(wh, c.now())
	c.render(w, r, http.StatusOK, "confirm.html", &consoleConfirmPage{consoleBase: consoleBase{Title: "Regenerate secret",
		Session: s, Crumbs: consoleWebhookCrumbs(v, consoleCrumb{Label: "Regenerate secret"})}, Webhook: v,
		Action: "/webhooks/" + v.ID + "/regenerate", Button: "Regenerate secret",
		Lead: "A new signing secret replaces the current one, and is shown once.",
		Details: []string{
			"X-Quikly-Signature is signed with the new secret only, from the next delivery on.",
			"The webhook-signature header carries signatures with both the new and the current secret for 24 hours, so receivers that verify it can switch over without dropping events.",
		}})
}

// handleRegenerate handles "POST /webhooks/{id}/regenerate"; like create, it shows the new secret in
// this response only.
func (c *console) handleRegenerate(w http.ResponseWriter, r *http.Request, s *app.Session) {
	wh, err := c.app.RegenerateSecret(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v := consoleWebhookOf(wh, c.now())
	c.render(w, r, http.StatusOK, "secret.html", &consoleSecretPage{consoleBase: consoleBase{Title: "New signing secret",
		Session: s, Crumbs: consoleWebhookCrumbs(v, consoleCrumb{Label: "New secret"})}, Webhook: v, Secret: wh.Secret, Regenerated: true})
}

// handleDeleteConfirm handles "GET /webhooks/{id}/delete".
func (c *console) handleDeleteConfirm(w http.ResponseWriter, r *http.Request, s *app.Session) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v := consoleWebhookOf(wh, c.now())
	c.render(w, r, http.StatusOK, "confirm.html", &consoleConfirmPage{consoleBase: consoleBase{Title: "Delete webhook",
		Session: s, Crumbs: consoleWebhookCrumbs(v, consoleCrumb{Label: "Delete"})}, Webhook: v,
		Action: "/webhooks/" + v.ID + "/delete", Danger: true, Button: "Delete webhook",
		Lead: "This webhook will stop receiving events. This cannot be undone.",
		Details: []string{
			"Deliveries that are still pending or held are cancelled.",
			"Its delivery logs are no longer shown in the console.",
		}})
}

// handleDelete handles "POST /webhooks/{id}/delete".
func (c *console) handleDelete(w http.ResponseWriter, r *http.Request, s *app.Session) {
	if err := c.app.DeleteWebhook(r.Context(), s.Account.ID, r.PathValue("id")); err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/webhooks?notice=deleted", http.StatusSeeOther)
}

// --- logs ---

// consoleLogsPage is the data of logs.html.
type consoleLogsPage struct {
	consoleBase
	Webhook    *consoleWebhook
	Attempts   []*consoleAttempt
	Status     string // "", "succeeded" or "failed"
	Event      string
	EventTypes []string
	NextCursor string
	Paged      bool
}

// handleLogList handles "GET /webhooks/{id}/logs" with ?status=succeeded|failed, ?event= and
// ?cursor=: attempts newest first.
func (c *console) handleLogList(w http.ResponseWriter, r *http.Request, s *app.Session) {
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
	p, err := c.app.ListLogs(r.Context(), s.Account.ID, wh.ID, f, consoleLogPageSize, cursor)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v := consoleWebhookOf(wh, c.now())
	page := &consoleLogsPage{consoleBase: consoleBase{Title: "Logs · " + wh.Name, Session: s,
		Crumbs: consoleWebhookCrumbs(v, consoleCrumb{Label: "Logs"}), Wide: true}, Webhook: v, Status: status,
		Event: f.EventType, NextCursor: p.NextCursor, Paged: cursor != ""}
	for _, e := range webhook.Catalogue {
		page.EventTypes = append(page.EventTypes, e.Event)
	}
	page.EventTypes = append(page.EventTypes, webhook.TestEvent)
	for _, a := range p.Items {
		page.Attempts = append(page.Attempts, &consoleAttempt{a})
	}
	c.render(w, r, http.StatusOK, "logs.html", page)
}

// consoleLogPage is the data of log.html.
type consoleLogPage struct {
	consoleBase
	Webhook *consoleWebhook
	Attempt *consoleAttempt
	// ResendError explains why a resend was refused (the delivery is still pending).
	ResendError string
}

func (c *console) logPage(r *http.Request, s *app.Session) (*consoleLogPage, error) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	at, err := c.app.GetLog(r.Context(), s.Account.ID, wh.ID, r.PathValue("log_id"))
	if err != nil {
		return nil, err
	}
	v := consoleWebhookOf(wh, c.now())
	return &consoleLogPage{consoleBase: consoleBase{Title: at.EventType + " · attempt " + strconv.Itoa(at.Number), Session: s,
		Crumbs: consoleWebhookCrumbs(v, consoleCrumb{Label: "Logs", Href: "/webhooks/" + v.ID + "/logs"}, consoleCrumb{Label: at.ID}), Wide: true},
		Webhook: v, Attempt: &consoleAttempt{at}}, nil
}

// handleLogView handles "GET /webhooks/{id}/logs/{log_id}": one attempt in full.
func (c *console) handleLogView(w http.ResponseWriter, r *http.Request, s *app.Session) {
	page, err := c.logPage(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	page.Notice = consoleNotice(r.URL.Query().Get("notice"))
	c.render(w, r, http.StatusOK, "log.html", page)
}

// handleResend handles "POST /webhooks/{id}/logs/{log_id}/resend". A delivery that is still pending
// cannot be resent; the log page says so instead of a bare error page.
func (c *console) handleResend(w http.ResponseWriter, r *http.Request, s *app.Session) {
	id, logID := r.PathValue("id"), r.PathValue("log_id")
	_, err := c.app.Resend(r.Context(), s.Account.ID, id, logID)
	if errs.CodeOf(err) == errs.Conflict {
		page, perr := c.logPage(r, s)
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
