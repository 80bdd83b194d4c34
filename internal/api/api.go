// Package api serves the REST API under /api/external/v1: authentication by X-API-Key (failed ones
// limited per client address), a per-key rate limit, URL checks (malformed input is 422 naming the
// parameter, impossible ids 404, before any store), strict JSON decoding, and errors in the SPEC §3
// shape.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/time/rate"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/authlimit"
	"github.com/quikly/webhooks/internal/errs"
)

// Prefix is where the API lives.
const Prefix = "/api/external/v1"

// MaxBodyBytes is the largest request body accepted (SPEC §3).
const MaxBodyBytes = 1 << 20

// RateLimitDefault is the default of --rate-limit: sustained requests per second per API key.
const RateLimitDefault = 100

// Handler serves the API. Create it with New.
type Handler struct {
	app        *app.App
	mux        *http.ServeMux
	limits     *limiter
	failedAuth *authlimit.Limiter
	log        *slog.Logger
	// patterns are the registered routes ("GET /api/external/v1/webhooks/{id}"), for Routes.
	patterns []string
}

// Config configures New.
type Config struct {
	// RateLimit is the sustained requests per second allowed per API key, with bursts of twice that.
	// Zero (or less) disables the limit, as --rate-limit=0 does.
	RateLimit float64
	// FailedAuth limits failed authentications per client address (SPEC §15); share one with the
	// console's sign-in so that both doors count together. Defaults to a new authlimit.Limiter with
	// its defaults.
	FailedAuth *authlimit.Limiter
	Logger     *slog.Logger
}

// New returns the API handler for a.
func New(a *app.App, cfg Config) *Handler {
	h := &Handler{app: a, mux: http.NewServeMux(), log: cfg.Logger, failedAuth: cfg.FailedAuth}
	if h.failedAuth == nil {
		h.failedAuth = authlimit.New(authlimit.Config{})
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if cfg.RateLimit > 0 {
		h.limits = &limiter{per: rate.Limit(cfg.RateLimit), burst: int(2 * cfg.RateLimit), keys: map[string]*rate.Limiter{}}
	}
	h.routes()
	return h
}

type ctxKey struct{}

// accountFrom returns the authenticated account of a request.
func accountFrom(r *http.Request) *account.Account {
	return r.Context().Value(ctxKey{}).(*account.Account)
}

// ServeHTTP authenticates first (SPEC §3: 401 before 404, 413 or 415), then rate-limits, then checks
// that the URL is well formed (SPEC §15), then routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.serveOpenAPI(w, r) { // the API's description needs no key
		return
	}
	acct, err := h.authenticate(w, r)
	if err != nil {
		h.error(w, r, err)
		return
	}
	if h.limits != nil && !h.limits.allow(acct.ID) {
		w.Header().Set("Retry-After", "1")
		h.error(w, r, errs.Errorf(errs.RateLimited, "Too many requests for this API key; slow down and retry."))
		return
	}
	if err := h.checkURL(r); err != nil {
		h.error(w, r, err)
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, acct)))
}

// authenticate returns the account of the request's API key. A client address that has used up its
// failed authentications is refused (429 with Retry-After) before its key is looked up, a good key
// included (see authlimit). A request without a key is no guess and costs no look-up, so it is not
// counted.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (*account.Account, error) {
	key := r.Header.Get("X-API-Key")
	if key == "" {
		return h.app.Authenticate(r.Context(), key)
	}
	attempt, wait, ok := h.failedAuth.Begin(r)
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(authlimit.RetryAfterSeconds(wait)))
		return nil, errs.Errorf(errs.RateLimited, "Too many failed authentications from this address; retry after %d seconds.",
			authlimit.RetryAfterSeconds(wait))
	}
	acct, err := h.app.Authenticate(r.Context(), key)
	if errs.CodeOf(err) == errs.Unauthorized {
		attempt.Fail()
	}
	return acct, err
}

// Mount returns a handler that gives h every request whose path, once cleaned, is Prefix or under
// it, untouched, and the others to next. Mounted in an http.ServeMux instead, a path such as
// Prefix+"//webhooks" would be answered by the ServeMux itself with an HTML redirect, before
// authentication; here it is a JSON 404 after it.
func (h *Handler) Mount(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := path.Clean("/" + r.URL.Path); p == Prefix || strings.HasPrefix(p, Prefix+"/") {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Routes returns every route of the API as its http.ServeMux pattern, method first
// ("GET /api/external/v1/webhooks/{id}"), sorted; tests walk them so that a new route is covered.
func (h *Handler) Routes() []string {
	return slices.Sorted(slices.Values(h.patterns))
}

// limiter keeps a token bucket per account. Buckets are few (one per account that called) and small.
type limiter struct {
	per   rate.Limit
	burst int
	mu    sync.Mutex
	keys  map[string]*rate.Limiter
}

func (l *limiter) allow(key string) bool {
	l.mu.Lock()
	b, ok := l.keys[key]
	if !ok {
		b = rate.NewLimiter(l.per, l.burst)
		l.keys[key] = b
	}
	l.mu.Unlock()
	return b.Allow()
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    errs.Code         `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// error writes err as SPEC §3 JSON. Errors without a code are internal: logged, never shown.
func (h *Handler) error(w http.ResponseWriter, r *http.Request, err error) {
	var e *errs.Error
	if !errors.As(err, &e) {
		h.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		e = errs.Errorf(errs.Internal, "Something went wrong on our side; try again.")
	}
	if e.Code == errs.Unavailable {
		h.log.Warn("database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, errs.Status(e.Code), errorBody{errorDetail{e.Code, e.Message, e.Fields}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// route registers one path with a handler per method; other methods answer 405 with Allow. Each
// wildcard of path is checked against the shape of the ids it takes before the handler runs: a value
// of another shape names nothing, and answers 404 without a database look-up.
func (h *Handler) route(path string, methods map[string]http.HandlerFunc) {
	allow := make([]string, 0, len(methods))
	shapes := idShapes(path)
	for m, fn := range methods {
		h.mux.HandleFunc(m+" "+Prefix+path, func(w http.ResponseWriter, r *http.Request) {
			for name, valid := range shapes {
				if !valid(r.PathValue(name)) {
					h.error(w, r, errs.ErrNotFound)
					return
				}
			}
			fn(w, r)
		})
		h.patterns = append(h.patterns, m+" "+Prefix+path)
		allow = append(allow, m)
	}
	slices.Sort(allow)
	h.mux.HandleFunc(Prefix+path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		h.error(w, r, errs.Errorf(errs.MethodNotAllowed, "%s is not allowed here; use %s.", r.Method, strings.Join(allow, " or ")))
	})
}

func (h *Handler) routes() {
	h.route("/webhooks", map[string]http.HandlerFunc{"GET": h.handleWebhookList, "POST": h.handleWebhookCreate})
	h.route("/webhooks/{id}", map[string]http.HandlerFunc{"GET": h.handleWebhookGet, "PUT": h.handleWebhookUpdate, "DELETE": h.handleWebhookDelete})
	h.route("/webhooks/{id}/regenerate-secret", map[string]http.HandlerFunc{"POST": h.handleWebhookRegenerate})
	h.route("/webhooks/{id}/test", map[string]http.HandlerFunc{"POST": h.handleWebhookTest})
	h.route("/webhooks/{id}/logs", map[string]http.HandlerFunc{"GET": h.handleLogList})
	h.route("/webhooks/{id}/logs/{log_id}", map[string]http.HandlerFunc{"GET": h.handleLogGet})
	h.route("/webhooks/{id}/logs/{log_id}/resend", map[string]http.HandlerFunc{"POST": h.handleLogResend})
	h.route("/webhook-events", map[string]http.HandlerFunc{"GET": h.handleEventCatalogue})
	h.proposalRoutes()
	h.deliveryRoutes()
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.error(w, r, errs.Errorf(errs.NotFound, "No such endpoint: %s %s.", r.Method, r.URL.Path))
	})
}
