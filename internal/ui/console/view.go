package console

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/webhook"
)

// pageBase is what every console page has: the layout reads it.
type pageBase struct {
	Title   string
	Session *app.Session // nil when signed out
	Crumbs  []crumb
	// Notice is a one-line confirmation shown above the content (after a redirect).
	Notice string
	// Wide lets a page use the full width (tables of logs).
	Wide bool
	// Section is the top navigation entry the page belongs to: "events" for the Events pages; empty
	// means Webhooks. The layout marks that entry aria-current.
	Section string
}

func (b *pageBase) base() *pageBase { return b }

// crumb is one step of the breadcrumb trail. Href is empty for steps that are not pages; the
// last step, the page itself, is marked Current by render.
type crumb struct {
	Label   string
	Href    string
	Current bool
}

// notices are the confirmations a redirect can ask for with ?notice=. Only these fixed texts
// can appear, so a crafted link cannot put words in the console's mouth.
var notices = map[string]string{
	"created":     "Webhook created.",
	"updated":     "Webhook saved.",
	"deleted":     "Webhook deleted. Its pending deliveries were cancelled.",
	"paused":      "Webhook paused. New events are held until you resume it.",
	"resumed":     "Webhook resumed. Held events are being delivered, oldest first.",
	"resent":      "Delivery queued again: it will be sent shortly with the same body and ids.",
	"secretshown": "The signing secret is shown only once. If you did not copy it, regenerate a new one.",
	"signedout":   "You have signed out.",
}

func noticeText(code string) string { return notices[code] }

// webhookView is a webhook as pages show it. It has no secret field on purpose: only the page a create or a
// regenerate redirects to ever receives the secret, separately, once.
type webhookView struct {
	ID        string
	Name      string
	URL       string
	Events    []string
	IsActive  bool
	CreatedAt time.Time
	UpdatedAt time.Time
	// RotationUntil is when the previous secret stops signing webhook-signature; zero when none.
	RotationUntil time.Time
	// Format, HeaderNames (never values) and RateLimit ("" for none) are SPEC §12's fields.
	Format      string
	HeaderNames []string
	RateLimit   string
	// Recent holds the latest attempts, newest first (list and detail pages only).
	Recent []*attemptView
}

func webhookViewOf(w *webhook.Webhook, now time.Time) *webhookView {
	v := &webhookView{ID: w.ID, Name: w.Name, URL: w.URL, Events: w.Events, IsActive: w.IsActive,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, Format: cmp.Or(w.Format, webhook.FormatJSON),
		HeaderNames: webhook.SortedHeaderNames(w.Headers), RateLimit: rateLimitText(w.RateLimit)}
	if w.PreviousSecret != "" && now.Before(w.PreviousSecretExpiresAt) {
		v.RotationUntil = w.PreviousSecretExpiresAt
	}
	return v
}

// rateLimitText is a rate limit as the form and page show it: "" for none.
func rateLimitText(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// RecentSucceeded counts the recent attempts that succeeded.
func (w *webhookView) RecentSucceeded() int {
	n := 0
	for _, a := range w.Recent {
		if a.Succeeded {
			n++
		}
	}
	return n
}

// RecentOldestFirst returns Recent in time order, for the row of dots that reads left to right.
func (w *webhookView) RecentOldestFirst() []*attemptView {
	out := slices.Clone(w.Recent)
	slices.Reverse(out)
	return out
}

// Health summarises the recent attempts in one word, for the indicator's colour.
func (w *webhookView) Health() string {
	switch ok := w.RecentSucceeded(); {
	case len(w.Recent) == 0:
		return "none"
	case ok == len(w.Recent):
		return "good"
	case ok == 0:
		return "bad"
	default:
		return "mixed"
	}
}

// attemptView is a log entry as pages show it.
type attemptView struct {
	*webhook.Attempt
}

// Status is "succeeded" or "failed", as in the API.
func (a *attemptView) Status() string {
	if a.Succeeded {
		return "succeeded"
	}
	return "failed"
}

// ResponseMS is the response time in whole milliseconds.
func (a *attemptView) ResponseMS() int64 { return a.ResponseTime.Milliseconds() }

// PrettyPayload is the body sent, indented when it is JSON (it always is, but the bytes are shown
// as sent when indenting fails).
func (a *attemptView) PrettyPayload() string { return prettyJSON(a.Payload) }

// PrettyResponse is the endpoint's answer, indented when it happens to be JSON.
func (a *attemptView) PrettyResponse() string { return prettyJSON([]byte(a.ResponseBody)) }

// ResponseIsJSON reports whether the response body is JSON, which keeps its indentation on screen.
func (a *attemptView) ResponseIsJSON() bool { return json.Valid([]byte(a.ResponseBody)) }

// Headers returns the request headers sorted by name, for a stable table.
func (a *attemptView) Headers() []headerView {
	out := make([]headerView, 0, len(a.RequestHeaders))
	for k, v := range a.RequestHeaders {
		out = append(out, headerView{k, v})
	}
	slices.SortFunc(out, func(x, y headerView) int { return strings.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name)) })
	return out
}

type headerView struct{ Name, Value string }

func prettyJSON(data []byte) string {
	var buf bytes.Buffer
	if json.Valid(data) && json.Indent(&buf, data, "", "  ") == nil {
		return buf.String()
	}
	return string(data)
}

// toggleView is what the pause/resume switch needs.
type toggleView struct {
	ID, Name, CSRF, Back string
	Active               bool
}

// eventOption is one checkbox of the events fieldset.
type eventOption struct {
	Event, Description string
	Checked            bool
}

func eventOptions(checked []string) []eventOption {
	out := make([]eventOption, len(webhook.Catalogue))
	for i, e := range webhook.Catalogue {
		out[i] = eventOption{e.Event, e.Description, slices.Contains(checked, e.Event)}
	}
	return out
}

// funcs are the template helpers.
func (c *handler) funcs() template.FuncMap {
	return template.FuncMap{
		"asset": func(name string) string { return "/static/" + name + "?v=" + c.version },
		"toggle": func(csrf string, w *webhookView, back string) toggleView {
			return toggleView{ID: w.ID, Name: w.Name, CSRF: csrf, Back: back, Active: w.IsActive}
		},
		"datetime":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"testEvents": testEventOptions,
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2 Jan 2006, 15:04:05 UTC")
		},
		"ago": func(t time.Time) string { return ago(c.now().Sub(t)) },
		"query": func(kv ...string) template.URL {
			v := url.Values{}
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i+1] != "" {
					v.Set(kv[i], kv[i+1])
				}
			}
			if len(v) == 0 {
				return ""
			}
			return template.URL("?" + v.Encode())
		},
	}
}

func (c *handler) now() time.Time { return c.app.Now() }

// ago says how long ago something happened, coarsely: the list needs "is it recent", not
// the exact time (which the log page gives).
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	default:
		return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
	}
}
