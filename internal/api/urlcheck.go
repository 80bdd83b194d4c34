package api

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/proposal"
	"github.com/quikly/webhooks/internal/webhook"
)

// checkURL refuses a URL that no route could take as it is (SPEC §15: malformed input anywhere in a
// URL is 400 or 422, never 500, and never silently ignored):
//   - a path that is not clean (a doubled slash, "." or ".." segments) names no endpoint: 404, where
//     http.ServeMux would answer with an HTML redirect;
//   - a path segment or a query parameter that is not valid UTF-8 text without control characters
//     (NUL included), or a query parameter that is not well-formed percent-encoding, is 422
//     validation_failed naming the path parameter ("id") or the query parameter ("cursor"), or
//     "path"/"query" when it has no name. url.Values would otherwise drop a malformed parameter and
//     answer as if it had not been sent, and PostgreSQL refuses NUL and invalid UTF-8 in text.
//
// A request line that Go's HTTP server cannot parse at all (e.g. a bad escape in the path) never
// gets here: the server answers it 400 itself.
func (h *Handler) checkURL(r *http.Request) error {
	if p := r.URL.Path; p != cleanPath(p) {
		return errs.Errorf(errs.NotFound, "No such endpoint: %s %s (the path is not in canonical form).", r.Method, r.URL.EscapedPath())
	}
	for i, seg := range strings.Split(r.URL.EscapedPath(), "/") {
		if v, err := url.PathUnescape(seg); err != nil || !isText(v) {
			return errs.Field(h.pathParam(r, i), "must be valid UTF-8 text without control characters")
		}
	}
	return checkQuery(r.URL.RawQuery)
}

// cleanPath is p as http.ServeMux would clean it: no empty, "." or ".." segments; a trailing slash kept.
func cleanPath(p string) string {
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// pathParam names the i-th segment of r's path: its wildcard in the route r matches, or "path".
func (h *Handler) pathParam(r *http.Request, i int) string {
	_, pattern := h.mux.Handler(r)
	if _, p, ok := strings.Cut(pattern, " "); ok {
		pattern = p
	}
	segs := strings.Split(pattern, "/")
	if i < len(segs) && strings.HasPrefix(segs[i], "{") {
		return strings.Trim(segs[i], "{}.")
	}
	return "path"
}

// checkQuery reports the first malformed parameter of a raw query string.
func checkQuery(raw string) error {
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(k)
		if err != nil || !isText(name) || strings.Contains(k, ";") || utf8.RuneCountInString(name) > 64 {
			return errs.Field("query", "has a parameter name that is not well-formed: percent-encode it as UTF-8 text")
		}
		value, err := url.QueryUnescape(v)
		switch {
		case err != nil:
			return errs.Field(name, "is not well-formed percent-encoding (a % must start %XX)")
		case strings.Contains(v, ";"):
			return errs.Field(name, "must not contain ';' (percent-encode it as %3B)")
		case !isText(value):
			return errs.Field(name, "must be valid UTF-8 text without control characters")
		}
	}
	return nil
}

// isText reports whether s is valid UTF-8 without control characters (NUL, C0, DEL, C1).
func isText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// idShapes returns the id check of each wildcard of a route's path (e.g. "/webhooks/{id}/logs/{log_id}").
// Ids of the known kinds must have their exact shape; any other wildcard at least the shape every
// id of ours has (1 to 100 characters of letters, digits, "_" and "-"), so that a route added later
// is covered without anyone remembering to.
func idShapes(routePath string) map[string]func(string) bool {
	shapes := map[string]func(string) bool{}
	segs := strings.Split(routePath, "/")
	for i, seg := range segs {
		name, ok := strings.CutPrefix(seg, "{")
		if !ok {
			continue
		}
		name = strings.TrimRight(name, "}.")
		parent := ""
		if i > 0 {
			parent = segs[i-1]
		}
		switch {
		case parent == "webhooks" && name == "id":
			shapes[name] = func(s string) bool { return webhook.ValidID("wh_", s) }
		case parent == "logs":
			shapes[name] = func(s string) bool { return webhook.ValidID("att_", s) }
		case parent == "proposals" || parent == "lead-sessions":
			shapes[name] = proposal.ValidID
		default:
			shapes[name] = looksLikeID
		}
	}
	return shapes
}

// looksLikeID reports whether s could be an id of any kind of ours.
func looksLikeID(s string) bool {
	if len(s) < 1 || len(s) > 100 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
