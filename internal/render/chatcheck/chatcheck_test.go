package chatcheck

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The checkers must accept what the services accept and refuse each documented rule broken; each
// bad body below breaks exactly one rule of a good one.

const goodSlack = `{"text":"Tom &amp; Jerry accepted","blocks":[` +
	`{"type":"section","text":{"type":"mrkdwn","text":"Tom &amp; Jerry &lt;3 <https://x.example/p|open>\n> quote","verbatim":true},` +
	`"fields":[{"type":"mrkdwn","text":"*Client*\nTom"}]},` +
	`{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"Open"},"url":"https://x.example/p","action_id":"a"}]},` +
	`{"type":"context","elements":[{"type":"mrkdwn","text":"proposal.accepted"}]}]}`

func TestSlack(t *testing.T) {
	t.Parallel()
	require.NoError(t, Slack([]byte(goodSlack)))

	bad := map[string]string{
		"NotJSON":           `{"text":`,
		"InvalidUTF8":       strings.Replace(goodSlack, "Jerry accepted", "Jerry \xff", 1),
		"UnknownKey":        strings.Replace(goodSlack, `{"text"`, `{"username":"x","text"`, 1),
		"NoText":            strings.Replace(goodSlack, `"text":"Tom &amp; Jerry accepted",`, ``, 1),
		"EmptyText":         strings.Replace(goodSlack, `"text":"Tom &amp; Jerry accepted"`, `"text":" "`, 1),
		"TextTooLong":       strings.Replace(goodSlack, `"text":"Tom &amp; Jerry accepted"`, `"text":"`+strings.Repeat("😀", 1501)+`"`, 1),
		"UnescapedAmp":      strings.Replace(goodSlack, `Tom &amp; Jerry accepted`, `Tom & Jerry accepted`, 1),
		"ChannelMention":    strings.Replace(goodSlack, `Tom &amp; Jerry accepted`, `<!channel> accepted`, 1),
		"UserMention":       strings.Replace(goodSlack, `&lt;3`, `<@U123>`, 1),
		"LinkLabelSpoof":    strings.Replace(goodSlack, `&lt;3`, `<javascript:x|y>`, 1),
		"StrayGreater":      strings.Replace(goodSlack, `&lt;3`, `a > b`, 1),
		"NoBlocks":          `{"text":"x","blocks":[]}`,
		"UnknownBlock":      strings.Replace(goodSlack, `"type":"context"`, `"type":"video"`, 1),
		"FieldTooLong":      strings.Replace(goodSlack, `*Client*\nTom`, strings.Repeat("a", 2001), 1),
		"FieldEmpty":        strings.Replace(goodSlack, `*Client*\nTom`, ``, 1),
		"ButtonNotPlain":    strings.Replace(goodSlack, `"plain_text","text":"Open"`, `"mrkdwn","text":"Open"`, 1),
		"ButtonTextTooLong": strings.Replace(goodSlack, `"text":"Open"`, `"text":"`+strings.Repeat("o", 76)+`"`, 1),
		"ButtonJSURL":       strings.Replace(goodSlack, `"url":"https://x.example/p"`, `"url":"javascript:alert(1)"`, 1),
		"VerbatimOnPlain":   strings.Replace(goodSlack, `"plain_text","text":"Open"`, `"plain_text","text":"Open","verbatim":true`, 1),
		"ElevenFields":      strings.Replace(goodSlack, `"fields":[{"type":"mrkdwn","text":"*Client*\nTom"}]`, `"fields":[`+strings.Repeat(`{"type":"mrkdwn","text":"x"},`, 10)+`{"type":"mrkdwn","text":"x"}]`, 1),
	}
	for name, body := range bad {
		require.NotEqual(t, goodSlack, body, name)
		require.Error(t, Slack([]byte(body)), name)
	}
}

const goodDiscord = `{"content":"Acme accepted \\@everyone","embeds":[{"title":"Accepted: Site","url":"https://x.example/p",` +
	`"description":"Acme accepted","fields":[{"name":"Client","value":"Acme","inline":true}],"timestamp":"2026-04-03T14:30:00Z"}],` +
	`"allowed_mentions":{"parse":[]}}`

func TestDiscord(t *testing.T) {
	t.Parallel()
	require.NoError(t, Discord([]byte(goodDiscord)))

	bigField := `{"name":"n","value":"` + strings.Repeat("v", 1000) + `","inline":false}`
	bad := map[string]string{
		"NotJSON":            `{"content":`,
		"UnknownKey":         strings.Replace(goodDiscord, `{"content"`, `{"tts":true,"content"`, 1),
		"NoAllowedMentions":  strings.Replace(goodDiscord, `,"allowed_mentions":{"parse":[]}`, ``, 1),
		"ParseEveryone":      strings.Replace(goodDiscord, `"parse":[]`, `"parse":["everyone"]`, 1),
		"ParseNull":          strings.Replace(goodDiscord, `"parse":[]`, `"parse":null`, 1),
		"MentionedUsers":     strings.Replace(goodDiscord, `"parse":[]`, `"parse":[],"users":["1"]`, 1),
		"NoContent":          strings.Replace(goodDiscord, `"content":"Acme accepted \\@everyone",`, ``, 1),
		"ContentTooLong":     strings.Replace(goodDiscord, `Acme accepted \\@everyone`, strings.Repeat("😀", 1001), 1),
		"TitleTooLong":       strings.Replace(goodDiscord, `Accepted: Site`, strings.Repeat("t", 257), 1),
		"DescriptionTooLong": strings.Replace(goodDiscord, `"description":"Acme accepted"`, `"description":"`+strings.Repeat("d", 4097)+`"`, 1),
		"FieldValueTooLong":  strings.Replace(goodDiscord, `"value":"Acme"`, `"value":"`+strings.Repeat("v", 1025)+`"`, 1),
		"FieldValueBlank":    strings.Replace(goodDiscord, `"value":"Acme"`, `"value":"  "`, 1),
		"FieldNameMissing":   strings.Replace(goodDiscord, `"name":"Client",`, ``, 1),
		"BadTimestamp":       strings.Replace(goodDiscord, `2026-04-03T14:30:00Z`, `yesterday`, 1),
		"BadURL":             strings.Replace(goodDiscord, `"url":"https://x.example/p"`, `"url":"ftp://x"`, 1),
		"EmbedTotalOver6000": strings.Replace(goodDiscord, `"fields":[`, `"fields":[`+strings.Repeat(bigField+",", 6), 1),
		"ElevenEmbeds":       strings.Replace(goodDiscord, `"embeds":[`, `"embeds":[`+strings.Repeat(`{"title":"x"},`, 10), 1),
		"NothingToShow":      `{"content":"","embeds":[],"allowed_mentions":{"parse":[]}}`,
	}
	for name, body := range bad {
		require.NotEqual(t, goodDiscord, body, name)
		require.Error(t, Discord([]byte(body)), name)
	}
}

func TestDiscordMarkdownFree(t *testing.T) {
	t.Parallel()
	require.NoError(t, DiscordMarkdownFree(`Tom \@everyone \<\@1\> \[x\](y) \*b\* \\\*`))
	for _, s := range []string{"@everyone", "<@1>", "[x](https://e)", "*b*", "||s||", "# h", "> q", "`c`", `\\@x`} {
		require.Error(t, DiscordMarkdownFree(s), s)
	}
}

func TestLength(t *testing.T) {
	t.Parallel()
	require.Equal(t, 0, Length(""))
	require.Equal(t, 3, Length("abc"))
	require.Equal(t, 1, Length("é"))
	require.Equal(t, 2, Length("😀"), "outside the BMP: two UTF-16 units")
}
