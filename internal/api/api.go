// Package api serves the REST API under /api/external/v1: authentication by X-API-Key, a per-key rate
// limit, strict JSON decoding, and errors in the SPEC §3 shape.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/time/rate"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/errs"
)

// Prefix is where the API lives.
const Prefix = "/api/external/v1"

// MaxBodyBytes is the largest request body accepted (SPEC §3).
const MaxBodyBytes = 1 << 20

// RateLimitDefault is the default sustained requests per second per API key.
const RateLimitDefault = 100

// Handler serves the API. Create it with New.
type Handler struct {
	app    *app.App
	mux    *http.ServeMux
	limits *limiter
	log    *slog.Logger
}

// Config configures New.
type Config struct {
	// RateLimit is the sustained requests per second allowed per API key, with bursts of twice that.
	// Zero means RateLimitDefault; -1 disables the limit.
	RateLimit float64
	Logger    *slog.Logger
}

// New returns the API handler for a.
func New(a *app.App, cfg Config) *Handler {
	if cfg.RateLimit == 0 {
		cfg.RateLimit = RateLimitDefault
	}
	h := &Handler{app: a, mux: http.NewServeMux(), log: cfg.Logger}
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

// ServeHTTP authenticates first (SPEC §3: 401 before 404, 413 or 415), then rate-limits, then routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("X-API-Key")
	acct, err := h.app.Authenticate(r.Context(), key)
	if err != nil {
		h.error(w, r, err)
		return
	}
	if h.limits != nil && !h.limits.allow(acct.ID) {
		w.Header().Set("Retry-After", "1")
		h.error(w, r, errs.Errorf(errs.RateLimited, "Too many requests for this API key; slow down and retry."))
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, acct)))
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

// statusOf is the one table from error code to HTTP status.
var statusOf = map[errs.Code]int{
	errs.InvalidJSON:      http.StatusBadRequest,
	errs.Invalid:          http.StatusUnprocessableEntity,
	errs.Unauthorized:     http.StatusUnauthorized,
	errs.NotFound:         http.StatusNotFound,
	errs.MethodNotAllowed: http.StatusMethodNotAllowed,
	errs.Conflict:         http.StatusConflict,
	errs.TooLarge:         http.StatusRequestEntityTooLarge,
	errs.UnsupportedMedia: http.StatusUnsupportedMediaType,
	errs.RateLimited:      http.StatusTooManyRequests,
	errs.Internal:         http.StatusInternalServerError,
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
	writeJSON(w, statusOf[e.Code], errorBody{errorDetail{e.Code, e.Message, e.Fields}})
}

// WriteError writes err as SPEC §3 JSON; for handlers outside this package that share the shape.
func WriteError(w http.ResponseWriter, err error) {
	var e *errs.Error
	if !errors.As(err, &e) {
		e = errs.Errorf(errs.Internal, "Something went wrong on our side; try again.")
	}
	writeJSON(w, statusOf[e.Code], errorBody{errorDetail{e.Code, e.Message, e.Fields}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// route registers one path with a handler per method; other methods answer 405 with Allow.
func (h *Handler) route(path string, methods map[string]http.HandlerFunc) {
	allow := make([]string, 0, len(methods))
	for m, fn := range methods {
		h.mux.HandleFunc(m+" "+Prefix+path, fn)
		allow = append(allow, m)
	}
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
