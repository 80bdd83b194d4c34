package webhook

import (
	"net/url"
	"strconv"
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

// ValidateName records a problem with name in f and returns it trimmed of leading and trailing white
// space, which is what is stored (the console trims too, so both front doors store the same name).
// A name is one line of text: besides control characters it may not hold line or paragraph
// separators (U+2028, U+2029) or bidirectional controls (U+202A–U+202E, U+2066–U+2069, LRM, RLM, ALM),
// which would let a name break a log line or display reversed ("Trojan Source") in the console,
// receivers' Slack messages and terminals.
func ValidateName(f errs.Fields, name string) string {
	name = strings.TrimSpace(name)
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name):
		f.Add("name", "must be valid UTF-8 text")
	case n == 0 || n > NameMaxLen: // white space alone is empty
		f.Add("name", "must be 1 to 100 characters")
	case strings.ContainsFunc(name, notOneLine):
		f.Add("name", "must be one line of text without control, line-separator or bidirectional-override characters")
	}
	return name
}

// notOneLine reports whether r has no place in one line of plain text.
func notOneLine(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r)
}

// notInURL reports whether r may not appear unencoded in a URL: RFC 3986 leaves out space, controls
// and `"<>\^{|}` and the backtick; non-ASCII letters are taken (an IRI; the client encodes them), but
// no Unicode space, separator or bidirectional control.
func notInURL(r rune) bool {
	if r < utf8.RuneSelf {
		return r <= ' ' || r == 0x7f || strings.ContainsRune("\"<>\\^`{|}", r)
	}
	return notOneLine(r) || unicode.IsSpace(r) || r == utf8.RuneError
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
	// What is not a URL at all is told so first; then what a URL cannot hold.
	u, err := url.Parse(raw)
	switch {
	case err == nil && (!u.IsAbs() || u.Host == "" || u.Hostname() == ""):
		f.Add("url", "must be an absolute URL")
	case !utf8.ValidString(raw) || strings.ContainsFunc(raw, notInURL):
		f.Add("url", "must not contain spaces, control characters or any of \" < > \\ ^ ` { | } (percent-encode them)")
	case !wellEscaped(raw):
		f.Add("url", "has a % that does not start a percent-encoded byte (%XX)")
	case err != nil:
		f.Add("url", "must be an absolute URL")
	case u.User != nil:
		f.Add("url", "must not contain user information")
	case u.Scheme != "https" && !(u.Scheme == "http" && allowHTTP):
		f.Add("url", "must use https")
	case !validPort(u.Port()):
		f.Add("url", "must have a port from 1 to 65535 (or none)")
	default:
		return u
	}
	return nil
}

// wellEscaped reports whether every % in s starts a %XX escape. url.Parse checks this in the path
// but not in the query, which the sender then passes on as it is.
func wellEscaped(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validPort reports whether p, a URL's port ("" for the scheme's default), can be dialled.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
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

// ValidID reports whether s has the shape of an id made with prefix ("wh_", "att_", …): the prefix
// and 1 to 64 base62 characters (ids are the prefix and 24 today; the slack keeps any older or
// future length valid). Anything else names nothing, so callers answer 404 without asking a
// database, which could not even take some byte strings (PostgreSQL refuses NUL and invalid UTF-8).
func ValidID(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || len(rest) < 1 || len(rest) > 64 {
		return false
	}
	for i := range len(rest) {
		c := rest[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

func quote(s string) string {
	if r := []rune(s); len(r) > 60 {
		s = string(r[:60]) + "…"
	}
	return `"` + s + `"`
}
