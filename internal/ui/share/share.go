// Package share serves the client's share page, {base-url}/p/{token}: a proposal to accept, reject or
// ask changes of. Its template and style are embedded; each error's HTTP status comes from package
// errs, as the API's does.
package share

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/proposal"
)

// The share page is the one page a client sees: {base-url}/p/{token}. It needs no sign-in (the
// unguessable token is the access) and no cookie, so cross-site forgery of its answer forms is
// stopped by http.CrossOriginProtection alone: browsers say where a POST comes from (Sec-Fetch-Site,
// Origin), and a POST from another site is refused.

//go:embed templates/share.html templates/share.css
var templateFS embed.FS

var (
	templates = template.Must(template.ParseFS(templateFS, "templates/share.html"))
	pageCSS   = template.CSS(mustRead("templates/share.css"))
	// pageCSP allows nothing but the page's own inline style (by hash, so no injected style or
	// script runs), forms that post back here, and no framing (an answer button must never sit
	// under another site's overlay: clickjacking).
	pageCSP = "default-src 'none'; style-src '" + cspHash(string(pageCSS)) + "'; form-action 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'"
)

func mustRead(name string) string {
	b, err := templateFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// maxForm bounds an answer's form body: a comment is at most 2000 characters (8 KB of UTF-8),
// so this leaves room for encoding and nothing for abuse.
const maxForm = 64 << 10

// pages serves the share pages. Safe for concurrent use.
type pages struct {
	app *app.App
	log *slog.Logger
}

// New returns the handler of the client's share pages under /p/: GET /p/{token} shows the
// proposal, POST /p/{token} records the client's answer (form fields answer = accept, reject or
// request_changes, and an optional comment) and redirects (303) back to the page. Cross-origin
// POSTs are refused with 403.
func New(a *app.App, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	s := &pages{app: a, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /p/{token}", s.handleView)
	mux.HandleFunc("POST /p/{token}", s.handleAnswer)
	mux.HandleFunc("/p/{token}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.renderMessage(w, http.StatusMethodNotAllowed, "This page can't do that",
			"Open the link in your browser to see the proposal.")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.renderNotFound(w) })

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderMessage(w, http.StatusForbidden, "Your answer was not recorded",
			"The answer did not come from this proposal's page. Open the link you were sent and answer there.")
	}))
	return securityHeaders(cop.Handler(mux))
}

// securityHeaders sets the headers every share page carries. The token in the URL is the only key to
// the proposal, so the page is never cached, indexed, or revealed to other sites through Referer.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Robots-Tag", "noindex, nofollow")
		next.ServeHTTP(w, r)
	})
}

// handleView handles "GET /p/{token}".
func (s *pages) handleView(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	p, err := s.app.GetSharedProposal(r.Context(), token)
	if err != nil {
		s.renderError(w, err, nil)
		return
	}
	s.render(w, http.StatusOK, &pageData{Title: p.Name, Proposal: viewOf(p, token, "")})
}

// handleAnswer handles "POST /p/{token}".
func (s *pages) handleAnswer(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.renderMessage(w, http.StatusRequestEntityTooLarge, "Your answer was not recorded",
				"The comment is too long. Go back, shorten it and send it again.")
			return
		}
		s.renderMessage(w, http.StatusBadRequest, "Your answer was not recorded",
			"The answer could not be read. Go back to the proposal and try again.")
		return
	}
	answer := proposal.Answer(r.PostForm.Get("answer"))
	comment := r.PostForm.Get("comment")
	_, err := s.app.AnswerProposal(r.Context(), token, answer, comment)
	if err != nil {
		// Show the proposal as it stands now, with why the answer was refused; a comment that was
		// refused (too long) is kept in the form so the client need not type it again.
		p, getErr := s.app.GetSharedProposal(r.Context(), token)
		if getErr != nil {
			s.renderError(w, err, nil)
			return
		}
		s.renderError(w, err, viewOf(p, token, comment))
		return
	}
	// Post/redirect/get: a reload shows the outcome rather than re-submitting the answer.
	http.Redirect(w, r, "/p/"+token, http.StatusSeeOther)
}

// renderError renders err with its status, above the proposal when there is one to show.
func (s *pages) renderError(w http.ResponseWriter, err error, v *proposalView) {
	var e *errs.Error
	if !errors.As(err, &e) {
		// The token is a secret: the log says what failed, not which link.
		s.log.Error("share page: internal error", "err", err)
		e = errs.Errorf(errs.Internal, "")
	}
	status := errs.Status(e.Code)
	var heading, text string
	switch e.Code {
	case errs.NotFound:
		s.renderNotFound(w)
		return
	case errs.Conflict:
		heading, text = "Your answer was not recorded", e.Message
	case errs.Invalid:
		heading, text = "Your answer was not recorded", fieldProblems(e)
	default:
		heading, text = "Something went wrong", "We could not process this just now; please try again in a moment."
		v = nil
	}
	title := heading
	if v != nil {
		title = v.Name
	}
	s.render(w, status, &pageData{Title: title, Message: &message{Heading: heading, Text: text, Tone: "error"}, Proposal: v})
}

// fieldProblems words a validation error of the answer form for the client.
func fieldProblems(e *errs.Error) string {
	if p, ok := e.Fields["comment"]; ok {
		return "Your comment " + p + "."
	}
	if _, ok := e.Fields["answer"]; ok {
		return "Please choose Accept, Reject or Request changes."
	}
	return e.Message
}

// renderNotFound is the friendly 404: most likely a link cut short by a mail client, not an error
// of the client's, so it is worded and styled calmly.
func (s *pages) renderNotFound(w http.ResponseWriter) {
	heading := "This link doesn't lead to a proposal"
	s.render(w, http.StatusNotFound, &pageData{Title: heading, Message: &message{Heading: heading, Tone: "notice",
		Text: "The link may be incomplete or mistyped. Check that you copied all of it, or ask the person who sent it for a new one."}})
}

func (s *pages) renderMessage(w http.ResponseWriter, status int, heading, text string) {
	s.render(w, status, &pageData{Title: heading, Message: &message{Heading: heading, Text: text, Tone: "error"}})
}

// render executes the page into a buffer first, so a template failure becomes a clean 500 rather
// than half a page.
func (s *pages) render(w http.ResponseWriter, status int, d *pageData) {
	d.CSS = pageCSS
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "share", d); err != nil {
		s.log.Error("share page: render", "err", err)
		http.Error(w, "Something went wrong; please try again.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// pageData is what the page template shows: a message, a proposal, or both.
type pageData struct {
	Title    string
	CSS      template.CSS
	Message  *message
	Proposal *proposalView
}

type message struct {
	Heading string
	Text    string
	Tone    string // the CSS class: "error", or "notice" for a calmer message
}

// proposalView is a proposal as the client sees it, amounts already formatted.
type proposalView struct {
	Name            string
	ClientName      string
	Requirements    string
	Currency        string
	Items           []itemView
	Total           string
	Status          string
	RespondedAt     string
	RevisionComment string
	Action          string
	Comment         string
	CommentMaxLen   int
}

type itemView struct {
	Description string
	Quantity    string
	UnitPrice   string
	Amount      string
}

func viewOf(p *proposal.Proposal, token, comment string) *proposalView {
	v := &proposalView{
		Name: p.Name, ClientName: p.ClientName, Requirements: p.Requirements, Currency: p.Currency,
		Total: money(p.Total(), p.Currency), Status: string(p.Status), RevisionComment: p.RevisionComment,
		Action: "/p/" + token, Comment: comment, CommentMaxLen: proposal.RevisionCommentMaxLen,
	}
	if !p.RespondedAt.IsZero() {
		v.RespondedAt = p.RespondedAt.UTC().Format("2 January 2006 at 15:04 UTC")
	}
	for _, li := range p.LineItems {
		amount, _ := li.Amount() // validated proposals never overflow
		v.Items = append(v.Items, itemView{Description: li.Description, Quantity: groupDigits(strconv.FormatInt(li.Quantity, 10)),
			UnitPrice: money(li.UnitPrice, p.Currency), Amount: money(amount, p.Currency)})
	}
	return v
}

// money formats an amount with the currency's decimals and thousands separators: 12,500.00.
func money(m proposal.Money, currency string) string {
	whole, frac, found := strings.Cut(m.Format(currency), ".")
	if !found {
		return groupDigits(whole)
	}
	return groupDigits(whole) + "." + frac
}

// groupDigits puts a comma between each group of three digits of a non-negative whole number.
func groupDigits(digits string) string {
	if len(digits) <= 3 {
		return digits
	}
	var groups []string
	for len(digits) > 3 {
		groups = append(groups, digits[len(digits)-3:])
		digits = digits[:len(digits)-3]
	}
	groups = append(groups, digits)
	slices.Reverse(groups)
	return strings.Join(groups, ",")
}
