package render_test

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/render"
	"github.com/quikly/webhooks/internal/render/chatcheck"
	"github.com/quikly/webhooks/internal/webhook"
)

// requireChatValid checks a chat body against the service's documented rules.
func requireChatValid(t testing.TB, f render.Format, body []byte) {
	t.Helper()
	require.True(t, json.Valid(body), "valid JSON")
	require.True(t, utf8.Valid(body), "valid UTF-8")
	switch f {
	case render.Slack:
		require.NoError(t, chatcheck.Slack(body))
	case render.Discord:
		require.NoError(t, chatcheck.Discord(body))
	}
}

// pieces are what random values are made of: markup of both services, escapes, long runs,
// multi-unit characters, controls and invalid bytes.
var pieces = []string{
	"a", "Acme", " ", "&", "<", ">", "&amp;", "&lt;", "<!channel>", "<!here>", "<@U1>", "<#C1|x>", "<http://x|y>",
	"*", "_", "~", "`", "```", "|", "||", "[", "]", "(", ")", "[x](https://evil.example)", "#", "-", "+", ":", "\\",
	"@everyone", "@here", "<@&1>", "\n", "\r\n", "\t", "\x00", "\x7f", "\u0085", "\u2028", "\u202E", "\u2066", "\u200F",
	"é", "Ω", "😀", "👩‍👩‍👧", "🇺🇸", "\xff", "\xc3", "\xe2\x82", "\"", "'", "…",
	strings.Repeat("x", 500), strings.Repeat("&", 700), strings.Repeat("😀", 300), strings.Repeat("<", 1100),
}

func randomText(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(40) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

// rawData writes a JSON object whose string values are kept byte for byte, invalid UTF-8 included
// (only quotes, backslashes and control characters are escaped), as a careless producer might.
func rawData(fields map[string]string) json.RawMessage {
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for k, v := range fields {
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(`"` + k + `":"`)
		for i := 0; i < len(v); i++ {
			switch c := v[i]; {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte("0123456789abcdef"[c>>4])
				b.WriteByte("0123456789abcdef"[c&15])
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return json.RawMessage(b.String())
}

// hostileData returns data for event with the given user values, as JSON; total and currency
// are set for proposal-shaped events.
func hostileData(name, client, long, url string) json.RawMessage {
	return rawData(map[string]string{
		"name": name, "client_name": client, "revision_comment": long, "brief": long, "last_error": long,
		"share_url": url, "url": url, "currency": "USD", "total": "1200.5", "status": "revision_requested",
		"channel": "widget", "failing_since": "2026-03-29T09:12:44Z",
	})
}

// TestProperties renders random hostile values for every event and format and checks what must
// always hold: valid JSON and UTF-8, the services' limits and rules (chatcheck), escaping (no
// markup of a value survives), and that a short value reaches the message whole.
func TestProperties(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(15, 12))
	urls := []string{"", "https://app.quikly.example/p/tok", "https://x.example/p?a=1&b=2", "javascript:alert(1)",
		"https://x.example/<script>", "http://a|b", "https://" + strings.Repeat("a", 2100),
		"https://x.example/" + strings.Repeat("b", 1980), "https://x.example/" + strings.Repeat("c", 480)}
	cases := 150
	if raceEnabled {
		cases = 25
	}
	for i := range cases {
		name, client, long := randomText(r), randomText(r), randomText(r)
		if i%10 == 0 { // 10,000 bytes of one piece (the cut may leave half a character)
			p := pieces[r.IntN(len(pieces))]
			name = strings.Repeat(p, 10000/len(p)+1)[:10000]
		}
		url := urls[r.IntN(len(urls))]
		data := hostileData(name, client, long, url)
		for _, event := range events() {
			e := render.Event{Type: event, Timestamp: at, WebhookID: "wh_1", Data: data}
			for _, f := range render.Formats() {
				body, err := render.Body(f, e)
				require.NoError(t, err)
				require.True(t, json.Valid(body), "%s %s: valid JSON", event, f)
				if f == render.JSON {
					continue
				}
				requireChatValid(t, f, body)
				texts := chatTexts(t, f, body, url)
				for _, s := range texts {
					requireEscaped(t, f, s)
				}
				// A value that fits arrives whole (cleaned, escaped) in the sentence.
				if event == webhook.ProposalAccepted && len(name) < 100 && len(client) < 100 {
					cleanName := cleaned(name)
					require.Contains(t, unescape(f, texts[0]), cleanName, "%s %q", f, name)
				}
			}
		}
	}
}

// cleaned is what a single-line value becomes, written independently of the renderers: each
// invalid byte → U+FFFD (as encoding/json decodes it), bidi controls dropped, other controls →
// space, trimmed.
func cleaned(s string) string {
	var valid strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		valid.WriteRune(r) // RuneError for an invalid byte
		s = s[n:]
	}
	s = strings.ReplaceAll(valid.String(), "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069':
			return -1
		case r < 0x20, r >= 0x7f && r <= 0x9f, r == '\u2028', r == '\u2029':
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// chatTexts returns the texts of a chat body that carry values, the main sentence first, with the
// renderer's own markup (labels, the link) removed.
func chatTexts(t testing.TB, f render.Format, body []byte, url string) []string {
	t.Helper()
	var out []string
	if f == render.Slack {
		var b struct {
			Text   string `json:"text"`
			Blocks []struct {
				Text   *struct{ Text string }  `json:"text"`
				Fields []struct{ Text string } `json:"fields"`
			} `json:"blocks"`
		}
		require.NoError(t, json.Unmarshal(body, &b))
		out = append(out, b.Text)
		for _, bl := range b.Blocks {
			if bl.Text != nil {
				out = append(out, bl.Text.Text)
			}
			for _, fl := range bl.Fields {
				out = append(out, fl.Text)
			}
		}
		return out
	}
	var b struct {
		Content string `json:"content"`
		Embeds  []struct {
			Description string                   `json:"description"`
			URL         string                   `json:"url"`
			Fields      []struct{ Value string } `json:"fields"`
		} `json:"embeds"`
	}
	require.NoError(t, json.Unmarshal(body, &b))
	link := b.Embeds[0].URL
	if link != "" {
		require.Equal(t, url, link, "only the event's own share_url is linked")
		// A link in content is whole, at its end.
		if i := strings.Index(b.Content, "\n<"); i >= 0 {
			require.Equal(t, "\n<"+link+">", b.Content[i:])
			b.Content = b.Content[:i]
		}
	}
	out = append(out, b.Content)
	desc := b.Embeds[0].Description
	for _, label := range []string{"Comment", "Brief", "Last error"} {
		desc = strings.Replace(desc, "\n\n**"+label+"**\n", "\n\n", 1)
	}
	out = append(out, desc)
	for _, fl := range b.Embeds[0].Fields {
		out = append(out, fl.Value)
	}
	return out
}

// requireEscaped checks that no markup of a value survives in s.
func requireEscaped(t testing.TB, f render.Format, s string) {
	t.Helper()
	if f == render.Slack {
		// chatcheck.Slack ran SlackEscaped on every mrkdwn text; on top of it, no link at all may
		// appear: the renderers never put one in a text, so any < is a value's.
		require.NotContains(t, s, "<", "slack text %q", s)
		return
	}
	require.NoError(t, chatcheck.DiscordMarkdownFree(strings.ReplaceAll(s, "“", "")), "discord text")
}

func unescape(f render.Format, s string) string {
	if f == render.Slack {
		return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
