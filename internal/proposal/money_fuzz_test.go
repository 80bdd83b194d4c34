package proposal

import (
	"encoding/binary"
	"math/big"
	"strings"
	"testing"
)

// The money fuzz targets check the exact-decimal code against math/big, which has no precision to
// lose. Seeds: testdata/fuzz/FuzzMoney*. Run one with, e.g.,
// go test ./internal/proposal -run '^$' -fuzz '^FuzzMoneyFormatParse$'.

// FuzzMoneyFormatParse: every amount from 0 to MaxAmount, in every currency, survives Format then
// ParseMoney (and Number, the JSON spelling) without losing a minor unit, and Format writes exactly
// the currency's decimals.
func FuzzMoneyFormatParse(f *testing.F) {
	f.Add(int64(0))
	f.Add(int64(1))
	f.Add(int64(10))
	f.Add(int64(20020))
	f.Add(int64(MaxAmount))
	f.Add(int64(-1))
	currencies := Currencies()
	f.Fuzz(func(t *testing.T, v int64) {
		if v < 0 {
			v = -(v + 1) // every int64 maps to a non-negative one
		}
		m := Money(v % (int64(MaxAmount) + 1))
		for _, c := range currencies {
			dec, _ := CurrencyDecimals(c)
			s := m.Format(c)
			if got, err := ParseMoney(s, c); err != nil || got != m {
				t.Fatalf("ParseMoney(%q, %s) = %d, %v; want %d", s, c, got, err, m)
			}
			if got, err := ParseMoney(string(m.Number(c)), c); err != nil || got != m {
				t.Fatalf("ParseMoney(Number %q, %s) = %d, %v; want %d", m.Number(c), c, got, err, m)
			}
			_, frac, dot := strings.Cut(s, ".")
			if (dec == 0 && dot) || len(frac) != dec {
				t.Fatalf("%d %s formatted as %q: want exactly %d decimals", m, c, s, dec)
			}
			if want := ratOf(m, dec); exactRat(t, s).Cmp(want) != 0 {
				t.Fatalf("%d %s formatted as %q, which is not %s", m, c, s, want.FloatString(dec))
			}
		}
	})
}

// FuzzParseMoney: ParseMoney and ParseQuantity never panic on any text; what they accept is exactly
// the value of the JSON number (checked with math/big), in range, and formats back to the same
// amount; what they refuse is refused for a true reason: not a JSON number, negative, too precise
// for the currency or too large.
func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"0", "-0", "0.1", "100.10", "1e2", "1E+2", "1.5e-1", "0.000", "1.0001", "00", "01",
		".5", "5.", "+1", "1e", "1e-", "999999999999999", "9999999999999.99", "1e308", "1e-999999999999999999999",
		"0e99999999999999999999", " 12.50 ", "-1", "0x10", "NaN", "Infinity", "1_000", "１"} {
		f.Add(s, uint8(0))
	}
	f.Add("1.005", uint8(70))
	f.Add("0.0001", uint8(30))
	currencies := Currencies()
	f.Fuzz(func(t *testing.T, text string, pick uint8) {
		c := currencies[int(pick)%len(currencies)]
		dec, _ := CurrencyDecimals(c)
		m, err := ParseMoney(text, c)
		q, qErr := ParseQuantity(text)
		val, isNumber := jsonNumberRat(text)
		if err == nil {
			if m < 0 || m > MaxAmount {
				t.Fatalf("ParseMoney(%q, %s) = %d: out of range", text, c, m)
			}
			if back, err := ParseMoney(m.Format(c), c); err != nil || back != m {
				t.Fatalf("ParseMoney(%q, %s) = %d, which formats as %q and parses back as %d, %v", text, c, m, m.Format(c), back, err)
			}
		}
		if qErr == nil && (q < 1 || q > QuantityMax) {
			t.Fatalf("ParseQuantity(%q) = %d: out of range", text, q)
		}
		if val == nil {
			// Not a JSON number, or an exponent too long for math/big to expand in reasonable time:
			// only the "never accepts what is not a number" half can be checked.
			if !isNumber && (err == nil || qErr == nil) {
				t.Fatalf("%q is not a JSON number, yet ParseMoney = %d, %v and ParseQuantity = %d, %v", text, m, err, q, qErr)
			}
			return
		}
		minor := new(big.Rat).Mul(val, pow10(dec))
		switch {
		case val.Sign() < 0:
			if err == nil {
				t.Fatalf("ParseMoney(%q) accepted a negative amount: %d", text, m)
			}
		case !minor.IsInt():
			if err == nil {
				t.Fatalf("ParseMoney(%q, %s) = %d, but the value has more than %d decimals", text, c, m, dec)
			}
		case minor.Num().Cmp(big.NewInt(int64(MaxAmount))) > 0:
			if err == nil {
				t.Fatalf("ParseMoney(%q, %s) = %d, but the value is over MaxAmount", text, c, m)
			}
		default:
			if err != nil || big.NewInt(int64(m)).Cmp(minor.Num()) != 0 {
				t.Fatalf("ParseMoney(%q, %s) = %d, %v; want %s", text, c, m, err, minor.Num())
			}
		}
		wantQ := val.Sign() > 0 && val.IsInt() && val.Num().Cmp(big.NewInt(QuantityMax)) <= 0
		if wantQ != (qErr == nil) || (wantQ && big.NewInt(q).Cmp(val.Num()) != 0) {
			t.Fatalf("ParseQuantity(%q) = %d, %v; the value is %s", text, q, qErr, val.RatString())
		}
	})
}

// FuzzTotal: the total of line items (quantities and prices read from the fuzzed bytes) is the
// exact sum of quantity × price, and is refused exactly when that sum, or one item's amount, is
// over MaxAmount; rescaling between currencies' decimals is exact or refused.
func FuzzTotal(f *testing.F) {
	f.Add([]byte{})
	f.Add(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 3), 1999))
	f.Add(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 1), uint64(MaxAmount)))
	f.Add(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, QuantityMax), 1_000_000_001))
	f.Fuzz(func(t *testing.T, data []byte) {
		var items []LineItem
		for len(data) >= 16 && len(items) < 50 {
			q := int64(binary.BigEndian.Uint64(data) % (QuantityMax + 1))
			p := Money(binary.BigEndian.Uint64(data[8:]) % (uint64(MaxAmount) + 1))
			items = append(items, LineItem{Quantity: q, UnitPrice: p})
			data = data[16:]
		}
		sum, valid := new(big.Int), true
		for _, li := range items {
			a := new(big.Int).Mul(big.NewInt(li.Quantity), big.NewInt(int64(li.UnitPrice)))
			amount, ok := li.Amount()
			wantOK := li.Quantity >= 1 && a.Cmp(big.NewInt(int64(MaxAmount))) <= 0
			if ok != wantOK || (ok && big.NewInt(int64(amount)).Cmp(a) != 0) {
				t.Fatalf("Amount(%d × %d) = %d, %v; want %s, %v", li.Quantity, li.UnitPrice, amount, ok, a, wantOK)
			}
			valid = valid && wantOK
			sum.Add(sum, a)
		}
		valid = valid && sum.Cmp(big.NewInt(int64(MaxAmount))) <= 0
		total, ok := Total(items)
		if ok != valid || (ok && big.NewInt(int64(total)).Cmp(sum) != 0) {
			t.Fatalf("Total = %d, %v; want %s, %v", total, ok, sum, valid)
		}
		if ok {
			for _, from := range []int{0, 2, 3, 4} {
				for _, to := range []int{0, 2, 3, 4} {
					r, ok := total.rescale(from, to)
					want := new(big.Rat).Mul(new(big.Rat).SetFrac(big.NewInt(int64(total)), pow10(from).Num()), pow10(to))
					wantOK := want.IsInt() && want.Num().Cmp(big.NewInt(int64(MaxAmount))) <= 0
					if ok != wantOK || (ok && big.NewInt(int64(r)).Cmp(want.Num()) != 0) {
						t.Fatalf("rescale(%d, %d→%d) = %d, %v; want %s, %v", total, from, to, r, ok, want.RatString(), wantOK)
					}
				}
			}
		}
	})
}

// ratOf is m minor units with dec decimals, as an exact rational.
func ratOf(m Money, dec int) *big.Rat {
	return new(big.Rat).SetFrac(big.NewInt(int64(m)), pow10(dec).Num())
}

func pow10(n int) *big.Rat {
	return new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil))
}

func exactRat(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("math/big cannot read %q", s)
	}
	return r
}

// jsonNumberRat returns the value of text (white space around it allowed) when it is a JSON number,
// independently of parseDecimal: a JSON-grammar check, then math/big for the value. isNumber tells a
// JSON number apart from other text; the value is nil for non-numbers and for numbers with an
// exponent of more than four digits, which math/big would expand digit by digit.
func jsonNumberRat(text string) (val *big.Rat, isNumber bool) {
	s := strings.TrimSpace(text)
	if !jsonNumber(s) {
		return nil, false
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp := strings.TrimLeft(strings.TrimLeft(s[i+1:], "+-"), "0")
		if len(exp) > 4 {
			return nil, true
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, true
	}
	return r, true
}

// jsonNumber reports whether s matches -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? (RFC 8259).
func jsonNumber(s string) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i, n = i+1, n+1
		}
		return n
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	if n := digits(); n == 0 || (n > 1 && s[start] == '0') {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}
