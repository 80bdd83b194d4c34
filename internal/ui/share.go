// Package ui serves the web pages: the console (Settings → Webhooks, logs) and the client's share
// pages. Templates and static files are embedded.
package ui

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

//go:embed share_templates/share.html share_templates/share.css
var shareFS embed.FS

var (
	shareTemplates = template.Must(template.ParseFS(shareFS, "share_templates/share.html"))
	shareCSS       = template.CSS(shareMustRead("share_templates/share.css"))
	// shareCSP allows nothing but the page's own inline style (by hash, so no injected style or
	// script runs), forms that post back here, and no framing (an answer button must never sit
	// under another site's overlay: clickjacking).
	shareCSP = "default-src 'none'; style-src '" + shareHash(string(shareCSS)) + "'; form-action 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'"
)

func shareMustRead(name string) string {
	b, err := shareFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func shareHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// shareMaxForm bounds an answer's form body: a comment is at most 2000 characters (8 KB of UTF-8),
// so this leaves room for encoding and nothing for abuse.
const shareMaxForm = 64 << 10

// shareStatusOf is the share page's table from error code to HTTP status.
var shareStatusOf = map[errs.Code]int{
	errs.Invalid:  http.StatusUnprocessableEntity,
	errs.NotFound: http.StatusNotFound,
	errs.Conflict: http.StatusConflict,
	errs.TooLarge: http.StatusRequestEntityTooLarge,
	errs.Internal: http.StatusInternalServerError,
}

// sharePages serves the share pages. Safe for concurrent use.
type sharePages struct {
	app *app.App
	log *slog.Logger
}

// NewSharePages returns the handler of the client's share pages under /p/: GET /p/{token} shows the
// proposal, POST /p/{token} records the client's answer (form fields answer = accept, reject or
// request_changes, and an optional comment) and redirects (303) back to the page. Cross-origin
// POSTs are refused with 403.
func NewSharePages(a *app.App, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	s := &sharePages{app: a, log: log}
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
	return shareHeaders(cop.Handler(mux))
}

// shareHeaders sets the headers every share page carries. The token in the URL is the only key to
// the proposal, so the page is never cached, indexed, or revealed to other sites through Referer.
func shareHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", shareCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Robots-Tag", "noindex, nofollow")
		next.ServeHTTP(w, r)
	})
}

// handleView handles "GET /p/{token}".
func (s *sharePages) handleView(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	p, err := s.app.GetSharedProposal(r.Context(), token)
	if err != nil {
		s.renderError(w, err, nil)
		return
	}
	s.render(w, http.StatusOK, &shareData{Title: p.Name, Proposal: shareView(p, token, "")})
}

// handleAnswer handles "POST /p/{token}".
func (s *sharePages) handleAnswer(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	r.Body = http.MaxBytesReader(w, r.Body, shareMaxForm)
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
		s.renderError(w, err, shareView(p, token, comment))
		return
	}
	// Post/redirect/get: a reload shows the outcome rather than re-submitting the answer.
	http.Redirect(w, r, "/p/"+token, http.StatusSeeOther)
}

// renderError renders err with its status, above the proposal when there is one to show.
func (s *sharePages) renderError(w http.ResponseWriter, err error, v *shareProposal) {
	var e *errs.Error
	if !errors.As(err, &e) {
		// The token is a secret: the log says what failed, not which link.
		s.log.Error("share page: internal error", "err", err)
		e = errs.Errorf(errs.Internal, "")
	}
	status, ok := shareStatusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	var heading, text string
	switch e.Code {
	case errs.NotFound:
		s.renderNotFound(w)
		return
	case errs.Conflict:
		heading, text = "Your answer was not recorded", e.Message
	case errs.Invalid:
		heading, text = "Your answer was not recorded", shareFieldProblems(e)
	default:
		heading, text = "Something went wrong", "We could not process this just now; please try again in a moment."
		v = nil
	}
	title := heading
	if v != nil {
		title = v.Name
	}
	s.render(w, status, &shareData{Title: title, Message: &shareMessage{Heading: heading, Text: text, Tone: "error"}, Proposal: v})
}

// shareFieldProblems words a validation error of the answer form for the client.
func shareFieldProblems(e *errs.Error) string {
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
func (s *sharePages) renderNotFound(w http.ResponseWriter) {
	heading := "This link doesn't lead to a proposal"
	s.render(w, http.StatusNotFound, &shareData{Title: heading, Message: &shareMessage{Heading: heading, Tone: "notice",
		Text: "The link may be incomplete or mistyped. Check that you copied all of it, or ask the person who sent it for a new one."}})
}

func (s *sharePages) renderMessage(w http.ResponseWriter, status int, heading, text string) {
	s.render(w, status, &shareData{Title: heading, Message: &shareMessage{Heading: heading, Text: text, Tone: "error"}})
}

// render executes the page into a buffer first, so a template failure becomes a clean 500 rather
// than half a page.
func (s *sharePages) render(w http.ResponseWriter, status int, d *shareData) {
	d.CSS = shareCSS
	var buf bytes.Buffer
	if err := shareTemplates.ExecuteTemplate(&buf, "share", d); err != nil {
		s.log.Error("share page: render", "err", err)
		http.Error(w, "Something went wrong; please try again.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// shareData is what the page template shows: a message, a proposal, or both.
type shareData struct {
	Title    string
	CSS      template.CSS
	Message  *shareMessage
	Proposal *shareProposal
}

type shareMessage struct {
	Heading string
	Text    string
	Tone    string // the CSS class: "error", or "notice" for a calmer message
}

// shareProposal is a proposal as the client sees it, amounts already formatted.
type shareProposal struct {
	Name            string
	ClientName      string
	Requirements    string
	Currency        string
	Items           []shareItem
	Total           string
	Status          string
	RespondedAt     string
	RevisionComment string
	Action          string
	Comment         string
	CommentMaxLen   int
}

type shareItem struct {
	Description string
	Quantity    string
	UnitPrice   string
	Amount      string
}

func shareView(p *proposal.Proposal, token, comment string) *shareProposal {
	v := &shareProposal{
		Name: p.Name, ClientName: p.ClientName, Requirements: p.Requirements, Currency: p.Currency,
		Total: shareMoney(p.Total(), p.Currency), Status: string(p.Status), RevisionComment: p.RevisionComment,
		Action: "/p/" + token, Comment: comment, CommentMaxLen: proposal.RevisionCommentMaxLen,
	}
	if !p.RespondedAt.IsZero() {
		v.RespondedAt = p.RespondedAt.UTC().Format("2 January 2006 at 15:04 UTC")
	}
	for _, li := range p.LineItems {
		amount, _ := li.Amount() // validated proposals never overflow
		v.Items = append(v.Items, shareItem{Description: li.Description, Quantity: shareGroup(strconv.FormatInt(li.Quantity, 10)),
			UnitPrice: shareMoney(li.UnitPrice, p.Currency), Amount: shareMoney(amount, p.Currency)})
	}
	return v
}

// shareMoney formats an amount with the currency's decimals and thousands separators: 12,500.00.
func shareMoney(m proposal.Money, currency string) string {
	whole, frac, found := strings.Cut(m.Format(currency), ".")
	if !found {
		return shareGroup(whole)
	}
	return shareGroup(whole) + "." + frac
}

// shareGroup puts a comma between each group of three digits of a non-negative whole number.
func shareGroup(digits string) string {
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
