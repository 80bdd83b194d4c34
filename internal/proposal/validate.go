package proposal

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/quikly/webhooks/internal/errs"
)

// Limits of proposal and lead session fields, in characters (Unicode code points) after leading
// and trailing white space is trimmed.
const (
	NameMaxLen            = 200
	ClientNameMaxLen      = 200
	ClientEmailMaxLen     = 254 // the longest address SMTP can carry (RFC 5321)
	RequirementsMaxLen    = 20000
	LineItemsMax          = 100
	DescriptionMaxLen     = 500
	RevisionCommentMaxLen = 2000
	ChannelIDMaxLen       = 200
	BriefMaxLen           = 10000
)

// textKind says which characters a text field may hold.
type textKind int

const (
	// singleLine fields (names, e-mail, channel id) hold no control characters at all.
	singleLine textKind = iota
	// multiLine fields (requirements, descriptions, briefs, comments) may hold tabs and line breaks.
	multiLine
)

// checkText records in f a problem with s as the value of field and returns s trimmed of leading and
// trailing white space. A required field must not be empty after trimming. Invalid UTF-8 and NUL are
// refused because PostgreSQL cannot store them in text columns.
func checkText(f errs.Fields, field, s string, required bool, maxLen int, kind textKind) string {
	s = strings.TrimSpace(s)
	switch n := utf8.RuneCountInString(s); {
	case !utf8.ValidString(s):
		f.Add(field, "must be valid UTF-8 text")
	case required && n == 0:
		f.Add(field, "is required")
	case n > maxLen:
		f.Add(field, fmt.Sprintf("must be at most %d characters", maxLen))
	case strings.IndexFunc(s, func(r rune) bool { return forbidden(r, kind) }) >= 0:
		if kind == singleLine {
			f.Add(field, "must be a single line without control characters")
		} else {
			f.Add(field, "must not contain control characters other than tabs and line breaks")
		}
	}
	return s
}

func forbidden(r rune, kind textKind) bool {
	if kind == multiLine && (r == '\n' || r == '\r' || r == '\t') {
		return false
	}
	return unicode.IsControl(r)
}

// checkEmail records in f a problem with s as an optional e-mail address and returns it trimmed; ""
// means none. It takes a bare address (no display name) with a dot in its domain, which catches
// "bob@gmail" while taking every address a proposal's client plausibly has.
func checkEmail(f errs.Fields, field, s string) string {
	s = checkText(f, field, s, false, ClientEmailMaxLen, singleLine)
	if s == "" || f[field] != "" {
		return s
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		f.Add(field, "must be an e-mail address such as name@example.com")
		return s
	}
	domain := s[strings.LastIndexByte(s, '@')+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		f.Add(field, "must be an e-mail address such as name@example.com")
	}
	return s
}

// checkCurrency records in f a problem with s as a currency and returns it normalized (upper case)
// and whether it is valid.
func checkCurrency(f errs.Fields, field, s string) (string, bool) {
	c, ok := NormalizeCurrency(s)
	switch {
	case c == "":
		f.Add(field, "is required")
	case !ok:
		f.Add(field, fmt.Sprintf("must be an ISO 4217 currency code such as USD, EUR or JPY (got %s)", quote(c)))
	}
	return c, ok
}

// LineItemInput is a line item as a request gives it. Quantity and UnitPrice are the JSON numbers as
// written (decode with json.Decoder.UseNumber), so that amounts never pass through a float; "" means
// the field was missing.
type LineItemInput struct {
	Description string
	Quantity    string
	UnitPrice   string
}

// parseLineItems records in f the problems of items, priced in currency (currencyOK false when the
// currency itself is invalid: prices are then checked only for being non-negative numbers), and
// returns them parsed.
func parseLineItems(f errs.Fields, items []LineItemInput, currency string, currencyOK bool) []LineItem {
	switch {
	case len(items) == 0:
		f.Add("line_items", "must list at least one line item")
		return nil
	case len(items) > LineItemsMax:
		f.Add("line_items", fmt.Sprintf("must list at most %d line items", LineItemsMax))
		return nil
	}
	before := len(f)
	out := make([]LineItem, len(items))
	for i, in := range items {
		prefix := fmt.Sprintf("line_items[%d].", i)
		out[i].Description = checkText(f, prefix+"description", in.Description, true, DescriptionMaxLen, multiLine)
		switch q, err := ParseQuantity(in.Quantity); {
		case in.Quantity == "":
			f.Add(prefix+"quantity", "is required")
		case err != nil:
			f.Add(prefix+"quantity", err.Error())
		default:
			out[i].Quantity = q
		}
		switch {
		case in.UnitPrice == "":
			f.Add(prefix+"unit_price", "is required")
		case !currencyOK:
			if d, ok := parseDecimal(in.UnitPrice); !ok {
				f.Add(prefix+"unit_price", errNotNumber.Error())
			} else if d.neg {
				f.Add(prefix+"unit_price", errNegative.Error())
			}
		default:
			p, err := ParseMoney(in.UnitPrice, currency)
			if err != nil {
				f.Add(prefix+"unit_price", err.Error())
			}
			out[i].UnitPrice = p
		}
	}
	if len(f) == before && currencyOK {
		if _, ok := Total(out); !ok {
			f.Add("line_items", fmt.Sprintf("make a total over the largest amount (%s %s)", MaxAmount.Format(currency), currency))
		}
	}
	return out
}

func quote(s string) string {
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:40]) + "…"
	}
	return fmt.Sprintf("%q", s)
}
