package proposal

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseMoney(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		text     string
		currency string
		want     Money
		wantErr  string
	}{
		{"Cents", "0.1", "USD", 10, ""},
		{"TwoDecimals", "100.10", "USD", 10010, ""},
		{"Whole", "1500", "JPY", 1500, ""},
		{"ThreeDecimals", "1.005", "KWD", 1005, ""},
		{"FourDecimals", "0.0001", "CLF", 1, ""},
		{"Zero", "0", "USD", 0, ""},
		{"ZeroWithDecimals", "0.000000", "JPY", 0, ""},
		{"NegativeZero", "-0", "USD", 0, ""},
		{"TrailingZerosBeyondDecimals", "100.000", "USD", 10000, ""},
		{"TrailingZerosJPY", "1500.00", "JPY", 1500, ""},
		{"Exponent", "1e2", "USD", 10000, ""},
		{"ExponentUpper", "1E+2", "JPY", 100, ""},
		{"ExponentWithFraction", "1.5e1", "JPY", 15, ""},
		{"NegativeExponent", "1e-2", "USD", 1, ""},
		{"NegativeExponentLong", "12345e-3", "KWD", 12345, ""},
		{"TinyTimesHuge", "0.00000000000000000000000001e26", "USD", 100, ""},
		{"ZeroHugeExponent", "0e99999999999999999999999", "USD", 0, ""},
		{"SurroundingSpace", " 1.5 ", "USD", 150, ""},
		{"Max", "9999999999999.99", "USD", MaxAmount, ""},
		{"MaxJPY", "999999999999999", "JPY", MaxAmount, ""},
		{"MaxKWD", "999999999999.999", "KWD", MaxAmount, ""},

		{"TooPreciseJPY", "0.1", "JPY", 0, "has more decimals than JPY allows (0)"},
		{"TooPreciseUSD", "1.0001", "USD", 0, "has more decimals than USD allows (2)"},
		{"TooPreciseKWD", "1.0005", "KWD", 0, "has more decimals than KWD allows (3)"},
		{"TooPreciseExponent", "1e-3", "USD", 0, "has more decimals than USD allows (2)"},
		{"TooPreciseHugeExponent", "1e-99999999999999999999", "USD", 0, "has more decimals than USD allows (2)"},
		{"Negative", "-1", "USD", 0, "must not be negative"},
		{"NegativeFraction", "-0.01", "USD", 0, "must not be negative"},
		{"TooLarge", "10000000000000", "USD", 0, "is too large (at most 9999999999999.99 USD)"},
		{"TooLargeJPY", "1000000000000000", "JPY", 0, "is too large (at most 999999999999999 JPY)"},
		{"TooLargeExponent", "1e400", "USD", 0, "is too large"},
		{"TooLargeHugeExponent", "1e99999999999999999999", "USD", 0, "is too large"},
		{"TooLargeDigits", "123456789012345678901234567890", "JPY", 0, "is too large"},
		{"Empty", "", "USD", 0, "must be a number"},
		{"Letters", "abc", "USD", 0, "must be a number"},
		{"LeadingZero", "01", "USD", 0, "must be a number"},
		{"TrailingDot", "1.", "USD", 0, "must be a number"},
		{"LeadingDot", ".5", "USD", 0, "must be a number"},
		{"Plus", "+1", "USD", 0, "must be a number"},
		{"BareExponent", "1e", "USD", 0, "must be a number"},
		{"Hex", "0x10", "USD", 0, "must be a number"},
		{"Comma", "1,5", "USD", 0, "must be a number"},
		{"NaN", "NaN", "USD", 0, "must be a number"},
		{"Infinity", "Infinity", "USD", 0, "must be a number"},
		{"UnknownCurrency", "1", "XYZ", 0, "unknown currency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseMoney(tt.text, tt.currency)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseQuantity(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		text    string
		want    int64
		wantErr string
	}{
		{"One", "1", 1, ""},
		{"WholeWithDecimals", "2.0", 2, ""},
		{"Exponent", "2e0", 2, ""},
		{"Max", "1e9", QuantityMax, ""},
		{"OverMax", "1000000001", 0, "must be at most 1000000000"},
		{"Huge", "1e400", 0, "must be at most"},
		{"Zero", "0", 0, "must be a positive whole number"},
		{"Negative", "-1", 0, "must be a positive whole number"},
		{"Fraction", "1.5", 0, "must be a positive whole number"},
		{"NotANumber", "two", 0, "must be a positive whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseQuantity(tt.text)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestMoneyFormat(t *testing.T) {
	t.Parallel()

	tests := []struct {
		m        Money
		currency string
		want     string
	}{
		{10, "USD", "0.10"},
		{30, "USD", "0.30"},
		{20020, "USD", "200.20"},
		{0, "USD", "0.00"},
		{1500, "JPY", "1500"},
		{0, "JPY", "0"},
		{300, "KWD", "0.300"},
		{2010, "KWD", "2.010"},
		{5, "CLF", "0.0005"},
		{MaxAmount, "USD", "9999999999999.99"},
		{-5, "USD", "-0.05"},
		{1234, "XYZ", "12.34"}, // unknown: two decimals
	}
	for _, tt := range tests {
		t.Run(tt.currency+"_"+tt.want, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.m.Format(tt.currency))
		})
	}

	t.Run("NumberKeepsDecimalsInJSON", func(t *testing.T) {
		t.Parallel()
		b, err := json.Marshal(map[string]any{"a": Money(20020).Number("USD"), "b": Money(300).Number("KWD"), "c": Money(1500).Number("JPY")})
		require.NoError(t, err)
		require.JSONEq(t, `{"a":200.20,"b":0.300,"c":1500}`, string(b))
		require.Contains(t, string(b), `"a":200.20`)
		require.Contains(t, string(b), `"b":0.300`)
	})
}

func TestTotal(t *testing.T) {
	t.Parallel()

	item := func(t *testing.T, qty int64, price, currency string) LineItem {
		t.Helper()
		p, err := ParseMoney(price, currency)
		require.NoError(t, err)
		return LineItem{Description: "x", Quantity: qty, UnitPrice: p}
	}

	tests := []struct {
		name     string
		currency string
		items    func(t *testing.T) []LineItem
		want     string
		ok       bool
	}{
		{"TenthTimesThree", "USD", func(t *testing.T) []LineItem { return []LineItem{item(t, 3, "0.1", "USD")} }, "0.30", true},
		{"CentsTimesTwo", "USD", func(t *testing.T) []LineItem { return []LineItem{item(t, 2, "100.10", "USD")} }, "200.20", true},
		{"JPY", "JPY", func(t *testing.T) []LineItem { return []LineItem{item(t, 3, "1500", "JPY")} }, "4500", true},
		{"KWD", "KWD", func(t *testing.T) []LineItem { return []LineItem{item(t, 2, "1.005", "KWD")} }, "2.010", true},
		{"Sum", "USD", func(t *testing.T) []LineItem {
			return []LineItem{item(t, 3, "0.1", "USD"), item(t, 2, "100.10", "USD"), item(t, 1, "0", "USD")}
		}, "200.50", true},
		{"ExactlyMax", "USD", func(t *testing.T) []LineItem {
			return []LineItem{{Quantity: 1, UnitPrice: MaxAmount - 1}, {Quantity: 1, UnitPrice: 1}}
		}, "9999999999999.99", true},
		{"ProductOverMax", "USD", func(t *testing.T) []LineItem { return []LineItem{{Quantity: 2, UnitPrice: MaxAmount}} }, "", false},
		{"ProductOverInt64", "USD", func(t *testing.T) []LineItem {
			return []LineItem{{Quantity: QuantityMax, UnitPrice: MaxAmount}}
		}, "", false},
		{"SumOverMax", "USD", func(t *testing.T) []LineItem {
			return []LineItem{{Quantity: 1, UnitPrice: MaxAmount}, {Quantity: 1, UnitPrice: 1}}
		}, "", false},
		{"InvalidQuantity", "USD", func(t *testing.T) []LineItem { return []LineItem{{Quantity: 0, UnitPrice: 1}} }, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Total(tt.items(t))
			require.Equal(t, tt.ok, ok)
			if ok {
				require.Equal(t, tt.want, got.Format(tt.currency))
			}
		})
	}
}

func TestCurrencies(t *testing.T) {
	t.Parallel()

	for code, want := range map[string]int{"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KRW": 0, "VND": 0, "KWD": 3, "BHD": 3,
		"JOD": 3, "OMR": 3, "TND": 3, "IQD": 3, "LYD": 3, "CLF": 4} {
		got, ok := CurrencyDecimals(code)
		require.True(t, ok, code)
		require.Equal(t, want, got, code)
	}
	for _, code := range []string{"", "usd", "XYZ", "XAU", "XTS", "US"} {
		_, ok := CurrencyDecimals(code)
		require.False(t, ok, code)
	}

	all := Currencies()
	require.Greater(t, len(all), 150)
	require.IsIncreasing(t, all)
	for _, c := range all {
		require.Regexp(t, `^[A-Z]{3}$`, c)
	}

	c, ok := NormalizeCurrency(" usd ")
	require.True(t, ok)
	require.Equal(t, "USD", c)
}
