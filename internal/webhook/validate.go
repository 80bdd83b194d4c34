package webhook

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/quikly/webhooks/internal/errs"
)

// Limits of SPEC §4.
const (
	NameMaxLen = 100
	URLMaxLen  = 2048
)

// ValidateName records a problem with name in f.
func ValidateName(f errs.Fields, name string) {
	if n := utf8.RuneCountInString(name); n < 1 || n > NameMaxLen {
		f.Add("name", "must be 1 to 100 characters")
		return
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		f.Add("name", "must be one line of text without control characters")
	}
}

// ValidateURL records a problem with raw in f. Plain http is accepted only when allowHTTP is set
// (private targets allowed, for development); it returns the parsed URL when valid.
func ValidateURL(f errs.Fields, raw string, allowHTTP bool) *url.URL {
	if raw == "" {
		f.Add("url", "is required")
		return nil
	}
	if len(raw) > URLMaxLen {
		f.Add("url", "must be at most 2048 characters")
		return nil
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "":
		f.Add("url", "must be an absolute URL")
	case u.User != nil:
		f.Add("url", "must not contain user information")
	case u.Scheme == "https":
		return u
	case u.Scheme == "http" && allowHTTP:
		return u
	case u.Scheme == "http":
		f.Add("url", "must use https")
	default:
		f.Add("url", "must use https")
	}
	return nil
}

// NormalizeEvents records a problem with events in f and returns them without duplicates, in the
// order given.
func NormalizeEvents(f errs.Fields, events []string) []string {
	if len(events) == 0 {
		f.Add("events", "must list at least one event")
		return nil
	}
	seen := make(map[string]bool, len(events))
	out := make([]string, 0, len(events))
	for _, e := range events {
		if !InCatalogue(e) {
			f.Add("events", "unknown event "+quote(e)+"; see GET /webhook-events")
			return nil
		}
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

func quote(s string) string {
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return `"` + s + `"`
}
