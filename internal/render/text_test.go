package render

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClip(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a&amp;b", clip("a&b", 7, slackEscape), "fits exactly")
	require.Equal(t, "a…", clip("a&b", 6, slackEscape), "an escape is never cut in half")
	require.Equal(t, "😀…", clip("😀😀", 3, nil), "a character outside the BMP counts two")
	require.Equal(t, "…", clip("😀😀", 2, nil))
	require.Equal(t, "", clip("abc", 0, nil))
	require.Equal(t, "ab…", clip("ab cd", 4, nil), "no space before the ellipsis")
	require.Equal(t, `\*…`, clip("**", 3, discordEscape))
}

func TestCompose(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100)
	got := compose(40, nil, litPart("A "), userPart(long), litPart(" B "), userPart("short"), litPart("."))
	require.Equal(t, 40, units(got))
	require.True(t, strings.HasPrefix(got, "A x"), got)
	require.True(t, strings.HasSuffix(got, "… B short."), "the short value stays whole: %s", got)

	got = compose(20, slackEscape, rawPart("*L*\n"), userPart(strings.Repeat("<", 50)))
	require.Equal(t, "*L*\n&lt;&lt;&lt;…", got)
}

func TestFairShares(t *testing.T) {
	t.Parallel()
	require.Equal(t, []int{10, 45, 45}, fairShares([]int{10, 100, 200}, 100))
	require.Equal(t, []int{3, 4}, fairShares([]int{3, 4}, 100))
	require.Equal(t, []int{0, 0}, fairShares([]int{3, 4}, 0))
}

func TestClean(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a b", clean(" a\nb ", false))
	require.Equal(t, "a\nb", clean("a\r\nb", true))
	require.Equal(t, "gnp.exe", clean("\u202Egnp.exe\u202C", false))
	require.Equal(t, "x \uFFFD", clean("x \xff", false))
	require.Equal(t, "a b", clean("a\x00b", false))
}

func TestAmount(t *testing.T) {
	t.Parallel()
	cases := map[string]data{
		"USD 1,200.50":             {"total": "1200.5", "currency": "USD"},
		"JPY 1,500":                {"total": "1500", "currency": "JPY"},
		"KWD 0.300":                {"total": "0.3", "currency": "KWD"},
		"USD 999.00":               {"total": "999", "currency": "USD"},
		"USD 9,999,999,999,999.99": {"total": "9999999999999.99", "currency": "USD"},
		"XYZ 12.5":                 {"total": "12.5", "currency": "XYZ"}, // unknown currency: as written
		"":                         {"currency": "USD"},
	}
	for want, d := range cases {
		require.Equal(t, want, amount(d))
	}
}

func TestSafeLink(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"https://app.example/p/tok", "http://localhost:8080/p/x?a=1&b=2"} {
		require.Equal(t, ok, safeLink(ok))
	}
	for _, bad := range []string{"", "javascript:alert(1)", "https://x/<a>", "https://x/a|b", "https://x/a b",
		"//x.example/p", "https://user:pw@x.example/", "https://x.example/\xff", "https://x/" + strings.Repeat("a", 2000)} {
		require.Empty(t, safeLink(bad), bad)
	}
}
