// Package console serves the web console at /: sign-in, Settings → Webhooks, a webhook's page and its
// delivery logs. Templates and static files are embedded. It calls the same use cases as the API
// (package app), and takes each error's HTTP status from package errs, as the API does.
package console

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/errs"
)

// The console's templates and static files live in the binary: no front-end build step, one file to
// deploy.
var (
	//go:embed templates/*.html
	templateFS embed.FS
	//go:embed static
	staticFS embed.FS
)

// maxForm bounds a console form body, like the API's 1 MiB bound on JSON bodies.
const maxForm = 1 << 20

// plainCookieName names the session cookie on plain http. On https the cookie carries the __Host-
// prefix, which browsers accept only with Secure, Path=/ and no Domain, so no sibling subdomain can
// plant or overwrite it.
const (
	plainCookieName  = "quikly_session"
	secureCookieName = "__Host-quikly_session"
)

// csrfField is the name of the hidden input that carries the per-session CSRF token.
const csrfField = "csrf_token"

// handler serves the web console. Safe for concurrent use.
type handler struct {
	app     *app.App
	log     *slog.Logger
	pages   map[string]*template.Template
	static  http.Handler
	version string // of the static files, busts caches when they change
	reveals usedReveals
}

// New returns the handler of the web console at /: sign-in, Settings → Webhooks and the
// delivery logs. It calls the same use cases as the API, never the API itself. Every state-changing
// request passes http.CrossOriginProtection and, once signed in, must carry the session's CSRF token.
func New(a *app.App, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the directory is embedded above; a failure is a build mistake
	}
	c := &handler{app: a, log: log, static: http.FileServerFS(static), version: assetVersion(static)}
	c.pages = parsePages(c)

	mux := http.NewServeMux()
	c.routes(mux)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, nil, http.StatusForbidden, "This request came from another site, so it was refused. Open the console directly and try again.")
	}))
	return securityHeaders(cop.Handler(mux))
}

// allMethods are the methods that get a 405 page (with Allow) on a path that does not take them.
// Method-less catch-alls would conflict with the method patterns of neighbouring paths
// ("GET /webhooks/{id}" and "/webhooks/new"), so each is registered by name.
var allMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// route registers path with one handler per method; other methods get a 405 page with Allow.
func (c *handler) route(mux *http.ServeMux, path string, methods map[string]http.HandlerFunc) {
	allow := make([]string, 0, len(methods))
	for _, m := range allMethods {
		if fn, ok := methods[m]; ok {
			mux.HandleFunc(m+" "+path, fn)
			allow = append(allow, m)
		}
	}
	_, get := methods["GET"]
	for _, m := range allMethods {
		if _, ok := methods[m]; ok || (m == "HEAD" && get) {
			continue // GET patterns serve HEAD too
		}
		mux.HandleFunc(m+" "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			c.renderError(w, r, nil, http.StatusMethodNotAllowed, r.Method+" is not allowed here.")
		})
	}
}

// routes is the console's URL map.
func (c *handler) routes(mux *http.ServeMux) {
	c.route(mux, "/{$}", map[string]http.HandlerFunc{"GET": c.handleRoot})
	c.route(mux, "/signin", map[string]http.HandlerFunc{"GET": c.handleSignInForm, "POST": c.handleSignIn})
	c.route(mux, "/signout", map[string]http.HandlerFunc{"POST": c.mutate(c.handleSignOut)})
	c.route(mux, "/webhooks", map[string]http.HandlerFunc{"GET": c.authed(c.handleWebhookList), "POST": c.mutate(c.handleWebhookCreate)})
	c.route(mux, "/webhooks/new", map[string]http.HandlerFunc{"GET": c.authed(c.handleWebhookNew)})
	c.route(mux, "/webhook-events", map[string]http.HandlerFunc{"GET": c.authed(c.handleCatalogue)})
	c.route(mux, "/webhooks/{id}", map[string]http.HandlerFunc{"GET": c.authed(c.handleWebhookView)})
	c.route(mux, "/webhooks/{id}/edit", map[string]http.HandlerFunc{"GET": c.authed(c.handleWebhookEditForm), "POST": c.mutate(c.handleWebhookEdit)})
	c.route(mux, "/webhooks/{id}/toggle", map[string]http.HandlerFunc{"POST": c.mutate(c.handleWebhookToggle)})
	c.route(mux, "/webhooks/{id}/secret", map[string]http.HandlerFunc{"GET": c.authed(c.handleSecret)})
	c.route(mux, "/webhooks/{id}/test", map[string]http.HandlerFunc{"POST": c.mutate(c.handleWebhookTest)})
	c.route(mux, "/webhooks/{id}/regenerate", map[string]http.HandlerFunc{"GET": c.authed(c.handleRegenerateConfirm), "POST": c.mutate(c.handleRegenerate)})
	c.route(mux, "/webhooks/{id}/delete", map[string]http.HandlerFunc{"GET": c.authed(c.handleDeleteConfirm), "POST": c.mutate(c.handleDelete)})
	c.route(mux, "/webhooks/{id}/logs", map[string]http.HandlerFunc{"GET": c.authed(c.handleLogList)})
	c.route(mux, "/webhooks/{id}/logs/{log_id}", map[string]http.HandlerFunc{"GET": c.authed(c.handleLogView)})
	c.route(mux, "/webhooks/{id}/logs/{log_id}/resend", map[string]http.HandlerFunc{"POST": c.mutate(c.handleResend)})
	c.deliveryRoutes(mux)
	mux.HandleFunc("GET /static/", c.handleStatic)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, c.optionalSession(r), http.StatusNotFound, "")
	})
}

// securityHeaders sets the headers every console response carries. The CSP allows only our own
// scripts and styles, so even a template bug cannot run injected script; pages hold account data
// and, once, secrets, so nothing is cached.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// handleStatic handles "GET /static/": the embedded CSS, JS and icon. A URL with the current version
// (as the templates write it) is cached for good; any other is revalidated.
func (c *handler) handleStatic(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("v") == c.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	http.StripPrefix("/static", c.static).ServeHTTP(w, r)
}

// assetVersion hashes the static files so their URLs change whenever they do.
func assetVersion(static fs.FS) string {
	h := sha256.New()
	fs.WalkDir(static, ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := fs.ReadFile(static, path)
			h.Write([]byte(path))
			h.Write(data)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// --- sessions and CSRF ---

// secure reports whether the console is served over https, judged by the configured base URL (a TLS
// terminating proxy in front of quikly hides the scheme from the request itself).
func (c *handler) secure() bool {
	return strings.HasPrefix(strings.ToLower(c.app.BaseURL), "https://")
}

func (c *handler) cookieName() string {
	if c.secure() {
		return secureCookieName
	}
	return plainCookieName
}

// setSessionCookie hands the browser a session. HttpOnly keeps it from scripts; SameSite=Lax keeps
// other sites' forms and fetches from sending it (top-level links still do, so a link to the console
// opens signed in).
func (c *handler) setSessionCookie(w http.ResponseWriter, s *app.Session) {
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: s.ID, Path: "/", Expires: s.ExpiresAt,
		MaxAge: int(s.ExpiresAt.Sub(c.now()).Seconds()), HttpOnly: true, Secure: c.secure(), SameSite: http.SameSiteLaxMode})
}

func (c *handler) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: c.secure(), SameSite: http.SameSiteLaxMode})
}

func (c *handler) sessionID(r *http.Request) string {
	if ck, err := r.Cookie(c.cookieName()); err == nil {
		return ck.Value
	}
	return ""
}

// optionalSession returns the request's session, or nil; for pages that look better signed in but do
// not need it (errors, not found).
func (c *handler) optionalSession(r *http.Request) *app.Session {
	id := c.sessionID(r)
	if id == "" {
		return nil
	}
	s, err := c.app.SessionAccount(r.Context(), id)
	if err != nil {
		return nil
	}
	return s
}

// sessionHandlerFunc is a handler that runs with a signed-in session.
type sessionHandlerFunc func(w http.ResponseWriter, r *http.Request, s *app.Session)

// authed runs fn with the request's session; without a valid one it sends the browser to sign in.
func (c *handler) authed(fn sessionHandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := c.sessionID(r)
		s, err := c.app.SessionAccount(r.Context(), id)
		switch {
		case errs.CodeOf(err) == errs.Unauthorized:
			if id != "" {
				c.clearSessionCookie(w) // a stale cookie would only repeat this round trip
			}
			if wantsJSON(r) {
				writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "signed_out"})
				return
			}
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		case err != nil:
			c.fail(w, r, nil, err)
			return
		}
		fn(w, r, s)
	}
}

// mutate is authed plus the per-session CSRF check: the form's token must equal the session's. It
// backs up http.CrossOriginProtection for browsers that send neither Sec-Fetch-Site nor Origin.
func (c *handler) mutate(fn sessionHandlerFunc) http.HandlerFunc {
	return c.authed(func(w http.ResponseWriter, r *http.Request, s *app.Session) {
		if !c.parseForm(w, r, s) {
			return
		}
		if !tokenEqual(r.PostForm.Get(csrfField), s.CSRFToken) {
			c.renderError(w, r, s, http.StatusForbidden, "This form has expired or did not come from this console. Go back, reload the page and try again.")
			return
		}
		fn(w, r, s)
	})
}

// parseForm reads a bounded form body; on failure it has answered the request.
func (c *handler) parseForm(w http.ResponseWriter, r *http.Request, s *app.Session) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			c.renderError(w, r, s, http.StatusRequestEntityTooLarge, "The form is too large.")
		} else {
			c.renderError(w, r, s, http.StatusBadRequest, "The form could not be read.")
		}
		return false
	}
	return true
}

// tokenEqual compares tokens in constant time, so response timing tells an attacker nothing
// about how much of a guess was right.
func tokenEqual(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// --- rendering ---

// errorTitles heads the error page of each status.
var errorTitles = map[int]string{
	http.StatusBadRequest:            "Bad request",
	http.StatusUnauthorized:          "Signed out",
	http.StatusForbidden:             "Request refused",
	http.StatusNotFound:              "Not found",
	http.StatusMethodNotAllowed:      "Method not allowed",
	http.StatusConflict:              "Not possible right now",
	http.StatusRequestEntityTooLarge: "Too large",
	http.StatusUnprocessableEntity:   "Invalid input",
	http.StatusTooManyRequests:       "Too many requests",
	http.StatusInternalServerError:   "Something went wrong",
}

// fail renders err as an error page. Errors without a code are internal: logged, never shown.
func (c *handler) fail(w http.ResponseWriter, r *http.Request, s *app.Session, err error) {
	e, ok := errors.AsType[*errs.Error](err)
	if !ok {
		c.log.Error("console: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		e = errs.Errorf(errs.Internal, "Something went wrong on our side; try again.")
	}
	status := errs.Status(e.Code)
	msg := e.Message
	for _, field := range slices.Sorted(maps.Keys(e.Fields)) {
		msg += " " + field + " " + e.Fields[field] + "."
	}
	if e.Code == errs.NotFound {
		msg = "" // the page's own wording covers "not yours" as well as "never existed"
	}
	c.renderError(w, r, s, status, msg)
}

// errorPage is the data of error.html.
type errorPage struct {
	pageBase
	Status  int
	Message string
}

func (c *handler) renderError(w http.ResponseWriter, r *http.Request, s *app.Session, status int, msg string) {
	if wantsJSON(r) {
		writeJSON(w, status, map[string]any{"error": msg})
		return
	}
	title := errorTitles[status]
	if title == "" {
		title = http.StatusText(status)
	}
	if msg == "" && status == http.StatusNotFound {
		msg = "There is nothing here. It may have been deleted, or it belongs to another account."
	}
	c.render(w, r, status, "error.html", &errorPage{pageBase: pageBase{Title: title, Session: s}, Status: status, Message: msg})
}

// render executes a page into a buffer first, so a template error becomes a clean 500, not half a page.
func (c *handler) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	t, ok := c.pages[page]
	if !ok {
		c.log.Error("console: no such page", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if b, ok := data.(interface{ base() *pageBase }); ok {
		if crumbs := b.base().Crumbs; len(crumbs) > 0 {
			crumbs[len(crumbs)-1].Current, crumbs[len(crumbs)-1].Href = true, ""
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		c.log.Error("console: render", "page", page, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// parsePages parses each page together with the layout and the shared partials.
func parsePages(c *handler) map[string]*template.Template {
	entries, err := fs.ReadDir(templateFS, "templates")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, e := range entries {
		name := e.Name()
		if name == "layout.html" || name == "partials.html" {
			continue
		}
		t := template.New(name).Funcs(c.funcs())
		pages[name] = template.Must(t.ParseFS(templateFS, "templates/layout.html",
			"templates/partials.html", "templates/"+name))
	}
	return pages
}
