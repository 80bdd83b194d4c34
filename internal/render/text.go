package render

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text of chat messages is assembled from parts: our own words, and values from the event (names,
// comments) that anyone can type. Values are cleaned, escaped for the target's markup, and then cut
// to fit the target's limits, so that an escape is never cut in half and a limit always holds after
// escaping.
//
// Lengths are counted in UTF-16 code units: that is how JavaScript counts (Slack's and Discord's
// clients), and it is never less than the number of code points, so a text within a limit in units
// is within it however the service counts characters.

// partKind says how compose treats a part.
type partKind int

const (
	raw  partKind = iota // our markup, written as is
	lit                  // our words, escaped, never cut
	user                 // a value from the event: cleaned, escaped, cut to fit
)

type part struct {
	s    string
	kind partKind
}

func rawPart(s string) part  { return part{s, raw} }
func litPart(s string) part  { return part{s, lit} }
func userPart(s string) part { return part{s, user} }

// escaper escapes one rune for a markup ("" for no change).
type escaper func(r rune) string

// units returns the length of s in UTF-16 code units.
func units(s string) int {
	n := 0
	for _, r := range s {
		n += runeUnits(r)
	}
	return n
}

func runeUnits(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// escapeAll returns s with every rune escaped by esc.
func escapeAll(s string, esc escaper) string {
	if esc == nil {
		return s
	}
	i := strings.IndexFunc(s, func(r rune) bool { return esc(r) != "" })
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		if e := esc(r); e != "" {
			b.WriteString(e)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ellipsis marks a value that was cut.
const ellipsis = "…"

// clip returns s escaped by esc and cut, on a rune boundary and never inside an escape, so that it
// is at most max units long, ending in an ellipsis when cut.
func clip(s string, max int, esc escaper) string {
	return clipEscaped(s, escapeAll(s, esc), max, esc)
}

// clipEscaped is clip with escapeAll(s, esc) already at hand.
func clipEscaped(s, full string, max int, esc escaper) string {
	if units(full) <= max {
		return full
	}
	if max < units(ellipsis) {
		return ""
	}
	budget := max - units(ellipsis)
	var b strings.Builder
	for _, r := range s {
		e := string(r)
		if esc != nil {
			if x := esc(r); x != "" {
				e = x
			}
		}
		if units(e) > budget {
			break
		}
		budget -= units(e)
		b.WriteString(e)
	}
	return strings.TrimRight(b.String(), " ") + ellipsis
}

// compose joins parts into one text of at most limit units. Our words are kept whole; when the
// values do not all fit, the room left is shared fairly between them (a short value keeps all of
// its text; the long ones are cut to equal shares).
func compose(limit int, esc escaper, parts ...part) string {
	fixed := 0
	var widths []int
	var escaped []string
	for _, p := range parts {
		switch p.kind {
		case raw:
			fixed += units(p.s)
		case lit:
			fixed += units(escapeAll(p.s, esc))
		case user:
			e := escapeAll(p.s, esc)
			escaped = append(escaped, e)
			widths = append(widths, units(e))
		}
	}
	budget := limit - fixed
	shares := fairShares(widths, max(budget, 0))
	var b strings.Builder
	n := 0
	for _, p := range parts {
		switch p.kind {
		case raw:
			b.WriteString(p.s)
		case lit:
			b.WriteString(escapeAll(p.s, esc))
		case user:
			b.WriteString(clipEscaped(p.s, escaped[n], shares[n], esc))
			n++
		}
	}
	out := b.String()
	if units(out) > limit { // our own words alone overflow: never with the limits used here
		out = clip(out, limit, nil)
	}
	return out
}

// fairShares divides budget between values of the given widths: values no wider than an equal share
// of what is left keep their width; the rest split the remainder equally.
func fairShares(widths []int, budget int) []int {
	order := make([]int, len(widths))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return widths[a] - widths[b] })
	out := make([]int, len(widths))
	left := budget
	for k, i := range order {
		share := left / (len(order) - k)
		out[i] = min(widths[i], share)
		left -= out[i]
	}
	return out
}

// clean makes a value from an event safe to place in a message: invalid UTF-8 becomes U+FFFD, the
// bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) are removed so a
// name cannot reverse the rest of the sentence, and control characters become spaces (line breaks
// too, unless multiline). The result is trimmed.
func clean(s string, multiline bool) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || isBidiControl(r) || r == '\u2028' || r == '\u2029' }) {
		return strings.TrimSpace(s)
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	for _, r := range s {
		switch {
		case isBidiControl(r):
		case multiline && (r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029'):
			b.WriteByte('\n')
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return strings.TrimSpace(b.String())
}

func isBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// marshal encodes v without escaping <, > and & as \u003c…: the bodies go to JSON APIs, not into
// HTML, and Slack's own escapes (&lt;) stay readable in the logs.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
