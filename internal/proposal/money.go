package proposal

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Money is an exact amount in minor units of a currency: cents for USD, yen for JPY, fils for KWD.
// The currency is not part of the value: a proposal's line items are in the proposal's currency.
// Money never passes through a float.
type Money int64

// MaxAmount is the largest unit price and the largest total: 15 digits of minor units
// (9,999,999,999,999.99 USD, 999,999,999,999,999 JPY). Any decimal of at most 15 significant
// digits survives a round trip through an IEEE 754 double, so clients that read JSON numbers as
// doubles (JavaScript, n8n, most spreadsheets) still get every amount exactly.
const MaxAmount Money = 999_999_999_999_999

// QuantityMax is the largest quantity of a line item.
const QuantityMax = 1_000_000_000

// errNotNumber and errNegative are problems of ParseMoney, worded to follow a field name.
var (
	errNotNumber = errors.New("must be a number")
	errNegative  = errors.New("must not be negative")
)

// ParseMoney parses text, a JSON number as the API decodes it (json.Number) or a form sends it, into
// minor units of currency, without floating point. The value counts, not its spelling: "1e2", "100"
// and "100.000" are all 100 USD, while "0.1" is refused for JPY and "1.0001" for USD. It refuses
// negative amounts, amounts over MaxAmount and unknown currencies. Errors read as a problem that
// follows a field name ("has more decimals than JPY allows (0)"), for errs.Fields.
func ParseMoney(text, currency string) (Money, error) {
	dec, ok := CurrencyDecimals(currency)
	if !ok {
		return 0, fmt.Errorf("cannot be checked: unknown currency %q", currency)
	}
	d, ok := parseDecimal(text)
	switch {
	case !ok:
		return 0, errNotNumber
	case d.neg:
		return 0, errNegative
	}
	v, res := d.scaled(dec, int64(MaxAmount))
	switch res {
	case tooPrecise:
		return 0, fmt.Errorf("has more decimals than %s allows (%d)", currency, dec)
	case tooLarge:
		return 0, fmt.Errorf("is too large (at most %s %s)", MaxAmount.Format(currency), currency)
	}
	return Money(v), nil
}

// ParseQuantity parses text, a JSON number, as a line item quantity: a whole number from 1 to
// QuantityMax. As with ParseMoney the value counts, so "2.0" and "2e0" are 2.
func ParseQuantity(text string) (int64, error) {
	d, ok := parseDecimal(text)
	if !ok || d.neg {
		return 0, errors.New("must be a positive whole number")
	}
	v, res := d.scaled(0, QuantityMax)
	switch {
	case res == tooPrecise || (res == fits && v == 0):
		return 0, errors.New("must be a positive whole number")
	case res == tooLarge:
		return 0, fmt.Errorf("must be at most %d", QuantityMax)
	}
	return v, nil
}

// Format returns m as a decimal with exactly the decimals of currency: "200.20" USD, "1500" JPY,
// "0.300" KWD. A currency Quikly does not know is formatted with two decimals.
func (m Money) Format(currency string) string {
	return formatMinor(int64(m), decimals(currency))
}

// Number returns m as a JSON number with exactly the decimals of currency. encoding/json writes a
// json.Number as is, so 200.20 stays 200.20 on the wire rather than becoming 200.2.
func (m Money) Number(currency string) json.Number {
	return json.Number(m.Format(currency))
}

func formatMinor(v int64, dec int) string {
	s := strconv.FormatInt(v, 10)
	sign := ""
	if v < 0 {
		sign, s = "-", s[1:]
	}
	if dec == 0 {
		return sign + s
	}
	if len(s) <= dec {
		s = strings.Repeat("0", dec-len(s)+1) + s
	}
	return sign + s[:len(s)-dec] + "." + s[len(s)-dec:]
}

// rescale converts m from minor units with fromDec decimals to minor units with toDec decimals
// (10.50 USD is 1050, and 10500 once the currency is KWD). It reports false when m has more
// decimals than toDec allows or the result would exceed MaxAmount.
func (m Money) rescale(fromDec, toDec int) (Money, bool) {
	v := int64(m)
	for ; fromDec > toDec; fromDec-- {
		if v%10 != 0 {
			return 0, false
		}
		v /= 10
	}
	for ; fromDec < toDec; fromDec++ {
		if v > int64(MaxAmount)/10 {
			return 0, false
		}
		v *= 10
	}
	return Money(v), v <= int64(MaxAmount)
}

// Amount returns quantity × unit price, and false when that is over MaxAmount (or the item is not
// valid: a quantity below 1 or a negative price).
func (li LineItem) Amount() (Money, bool) {
	if li.Quantity < 1 || li.UnitPrice < 0 {
		return 0, false
	}
	if li.UnitPrice != 0 && li.Quantity > int64(MaxAmount/li.UnitPrice) {
		return 0, false
	}
	return Money(li.Quantity) * li.UnitPrice, true
}

// Total returns the exact sum of quantity × unit price over items, and false when it is over
// MaxAmount.
func Total(items []LineItem) (Money, bool) {
	var total Money
	for _, li := range items {
		a, ok := li.Amount()
		if !ok {
			return 0, false
		}
		total += a // both terms are at most MaxAmount: no overflow
		if total > MaxAmount {
			return 0, false
		}
	}
	return total, true
}

// decimal is a parsed JSON number: ±digits × 10^-scale, with digits free of leading and trailing
// zeros ("" for zero), so that the value, not its spelling, decides what fits.
type decimal struct {
	neg    bool
	digits string
	scale  int64
}

// expLimit bounds the exponents parseDecimal keeps. No string in memory has that many digits, so
// clamping a larger exponent to it changes no outcome (far too large, or far too precise), and the
// scale arithmetic stays well inside int64.
const expLimit = 1_000_000_000_000_000

// parseDecimal parses the JSON number grammar -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?,
// ignoring surrounding white space.
func parseDecimal(text string) (decimal, bool) {
	s := strings.TrimSpace(text)
	var d decimal
	if strings.HasPrefix(s, "-") {
		d.neg, s = true, s[1:]
	}
	intPart, s := cutDigits(s)
	if intPart == "" || (len(intPart) > 1 && intPart[0] == '0') {
		return decimal{}, false
	}
	var frac string
	if rest, ok := strings.CutPrefix(s, "."); ok {
		if frac, s = cutDigits(rest); frac == "" {
			return decimal{}, false
		}
	}
	var exp int64
	if len(s) > 0 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		expNeg := false
		if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
			expNeg, s = s[0] == '-', s[1:]
		}
		var digits string
		if digits, s = cutDigits(s); digits == "" {
			return decimal{}, false
		}
		digits = strings.TrimLeft(digits, "0")
		if len(digits) > 16 {
			exp = expLimit
		} else if digits != "" {
			exp, _ = strconv.ParseInt(digits, 10, 64)
			exp = min(exp, expLimit)
		}
		if expNeg {
			exp = -exp
		}
	}
	if s != "" {
		return decimal{}, false
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return decimal{neg: false}, true // zero, including -0
	}
	trimmed := strings.TrimRight(digits, "0")
	d.digits = trimmed
	d.scale = int64(len(frac)) - exp - int64(len(digits)-len(trimmed))
	return d, true
}

func cutDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

type scaleResult int

const (
	fits scaleResult = iota
	tooPrecise
	tooLarge
)

// scaled returns |d| × 10^dec, which must be a whole number no larger than max.
func (d decimal) scaled(dec int, max int64) (int64, scaleResult) {
	if d.digits == "" {
		return 0, fits
	}
	if d.scale > int64(dec) {
		return 0, tooPrecise
	}
	shift := int64(dec) - d.scale
	if int64(len(d.digits))+shift > 18 { // 10^18 < MaxInt64: anything shorter cannot overflow
		return 0, tooLarge
	}
	v, err := strconv.ParseInt(d.digits, 10, 64)
	if err != nil {
		return 0, tooLarge
	}
	for ; shift > 0; shift-- {
		v *= 10
	}
	if v > max {
		return 0, tooLarge
	}
	return v, fits
}
