package webhook

import (
	"sort"
	"strings"

	"github.com/quikly/webhooks/internal/errs"
)

// The body formats of SPEC §12, as stored and as the API spells them (render.Format has the same
// values; this package cannot import render, which imports it).
const (
	FormatJSON    = "json"
	FormatSlack   = "slack"
	FormatDiscord = "discord"
)

// Limits of SPEC §12.
const (
	HeadersMax        = 10
	HeaderNameMaxLen  = 64
	HeaderValueMaxLen = 1024
	RateLimitMax      = 10000
)

// MaskedValue stands for a custom header's value wherever one is shown: responses, pages and logs.
const MaskedValue = "********"

// reservedHeaders are the headers the sender writes itself, which a webhook may not set (lower case).
var reservedHeaders = map[string]bool{
	"content-type": true, "content-length": true, "host": true, "user-agent": true,
	"connection": true, "transfer-encoding": true,
}

// ValidateFormat records a problem with format in f.
func ValidateFormat(f errs.Fields, format string) {
	switch format {
	case FormatJSON, FormatSlack, FormatDiscord:
	default:
		f.Add("format", `must be "json", "slack" or "discord"`)
	}
}

// ValidateHeaders records a problem with h in f: at most HeadersMax names, each an HTTP token of at
// most HeaderNameMaxLen characters that is neither one the sender writes itself nor one of the
// signature's ("X-Quikly-…", "webhook-…"), each value printable ASCII of at most HeaderValueMaxLen.
// Names differing only in case are one header, so they may not both appear.
func ValidateHeaders(f errs.Fields, h map[string]string) {
	if len(h) > HeadersMax {
		f.Add("headers", "must hold at most 10 headers")
		return
	}
	seen := make(map[string]bool, len(h))
	for _, name := range SortedHeaderNames(h) {
		lower := strings.ToLower(name)
		switch {
		case name == "" || len(name) > HeaderNameMaxLen || !isToken(name):
			f.Add("headers", "header names must be HTTP tokens of 1 to 64 characters; "+quote(name)+" is not")
		case reservedHeaders[lower]:
			f.Add("headers", quote(name)+" is set by the service and may not be replaced")
		case strings.HasPrefix(lower, "x-quikly-") || strings.HasPrefix(lower, "webhook-"):
			f.Add("headers", "header names may not start with X-Quikly- or webhook-; "+quote(name)+" does")
		case seen[lower]:
			f.Add("headers", quote(name)+" is given twice (header names ignore case)")
		case len(h[name]) > HeaderValueMaxLen || !printableASCII(h[name]):
			f.Add("headers", "the value of "+quote(name)+" must be printable ASCII of at most 1024 characters")
		default:
			seen[lower] = true
			continue
		}
		return
	}
}

// ValidateRateLimit records a problem with limit (attempts started per second; 0 means none) in f.
func ValidateRateLimit(f errs.Fields, limit int) {
	if limit < 0 || limit > RateLimitMax {
		f.Add("rate_limit", "must be null or an integer from 1 to 10000")
	}
}

// MaskedHeaders returns h with every value replaced by MaskedValue (an empty map for none).
func MaskedHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k := range h {
		out[k] = MaskedValue
	}
	return out
}

// SortedHeaderNames returns the names of h in a stable order (case-insensitive, then bytes).
func SortedHeaderNames(h map[string]string) []string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := strings.ToLower(names[i]), strings.ToLower(names[j])
		if a != b {
			return a < b
		}
		return names[i] < names[j]
	})
	return names
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// printableASCII reports whether s holds only printable ASCII (space to tilde).
func printableASCII(s string) bool {
	for i := range len(s) {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
