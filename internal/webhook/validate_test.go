package webhook

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/errs"
)

func TestValidateName(t *testing.T) {
	t.Parallel()

	t.Run("TrimsAndKeepsOneLineText", func(t *testing.T) {
		t.Parallel()
		for in, want := range map[string]string{
			"  CRM sync  ":             "CRM sync",
			"Zap\u00a0→ Slack 🚀":       "Zap\u00a0→ Slack 🚀",
			"👩\u200d💻 dev":             "👩\u200d💻 dev", // a zero-width joiner is part of an emoji, not a control
			strings.Repeat("é", 100):   strings.Repeat("é", 100),
			"\u2028 padded \u3000\t\n": "padded",
		} {
			f := errs.Fields{}
			require.Equal(t, want, ValidateName(f, in), "%q", in)
			require.Empty(t, f, "%q", in)
		}
	})

	t.Run("RefusesEmptyAfterTrimControlsSeparatorsAndBidi", func(t *testing.T) {
		t.Parallel()
		for _, in := range []string{
			"", "   ", "\t\n", "\u2028\u2029", strings.Repeat("a", 101),
			"two\nlines", "tab\there", "nul\x00", "del\x7f", "c1\u0085control",
			"line\u2028separator", "para\u2029graph",
			"\u202aLRE", "\u202bRLE", "PDF\u202c", "\u202dLRO", "evil\u202eexe.txt",
			"\u2066LRI", "\u2067RLI", "\u2068FSI", "PDI\u2069", "mark\u200f", "bad\xffutf8",
		} {
			f := errs.Fields{}
			ValidateName(f, in)
			require.Contains(t, f, "name", "%q must be refused", in)
		}
	})
}

func TestValidateURL(t *testing.T) {
	t.Parallel()

	t.Run("Accepts", func(t *testing.T) {
		t.Parallel()
		for _, in := range []string{
			"https://crm.example.com/hooks",
			"https://crm.example.com:1/x", "https://crm.example.com:65535/x", "https://crm.example.com:/x",
			"https://crm.example.com/a%20b?q=%22x%22&r=1#frag",
			"https://bücher.example/straße",
			"https://[2001:db8::1]:8443/h",
			"https://hooks.zapier.com/hooks/catch/123/abc/?a=b&c=d",
		} {
			f := errs.Fields{}
			require.NotNil(t, ValidateURL(f, in, false), "%q: %v", in, f)
			require.Empty(t, f)
		}
		f := errs.Fields{}
		require.NotNil(t, ValidateURL(f, "http://127.0.0.1:9000/hook", true), "plain http when private targets are allowed")
	})

	t.Run("Refuses", func(t *testing.T) {
		t.Parallel()
		for in, problem := range map[string]string{
			"": "required",
			"https://x.example/" + strings.Repeat("a", 2048): "at most 2048",
			"https://x.example:0/h":                          "port",
			"https://x.example:99999/h":                      "port",
			"https://x.example:65536/h":                      "port",
			`https://x.example/a"b`:                          "percent-encode",
			"https://x.example/<script>":                     "percent-encode",
			"https://x.example/a>b":                          "percent-encode",
			"https://x.example/a b":                          "percent-encode",
			" https://x.example/":                            "percent-encode",
			"https://x.example/\ttab":                        "percent-encode",
			"https://x.example/nul\x00":                      "percent-encode",
			"https://x.example/a\\b":                         "percent-encode",
			"https://x.example/{x}":                          "percent-encode",
			"https://x.example/a|b":                          "percent-encode",
			"https://x.example/a\u2028b":                     "percent-encode",
			"https://x.example/\u202egnp.exe":                "percent-encode",
			"https://x.example/\u3000":                       "percent-encode",
			"https://x.example/\xff":                         "percent-encode",
			"https://x.example/?q=%zz":                       "percent-encoded",
			"https://x.example/?q=%4":                        "percent-encoded",
			"https://x.example/%":                            "percent-encoded",
			"http://x.example/":                              "https",
			"ftp://x.example/":                               "https",
			"https://user:pw@x.example/":                     "user information",
			"/relative":                                      "absolute",
			"https://:443/":                                  "absolute",
		} {
			f := errs.Fields{}
			require.Nil(t, ValidateURL(f, in, false), "%q must be refused", in)
			require.Contains(t, f["url"], problem, "%q", in)
		}
	})
}

func TestValidID(t *testing.T) {
	t.Parallel()
	require.True(t, ValidID("wh_", "wh_0SZm8Lv6TG4yGfZvX2a1BqCd"))
	require.True(t, ValidID("att_", "att_x"))
	for _, s := range []string{"", "wh_", "att_0SZm8Lv6", "wh_abc-def", "wh_abc\x00", "wh_\xff", "wh_" + strings.Repeat("a", 65), "WH_abc"} {
		require.False(t, ValidID("wh_", s), "%q", s)
	}
}
