package render_test

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/quikly/webhooks/internal/webhook"
)

// at is the time of every test event.
var at = time.Date(2026, 4, 3, 14, 30, 0, 0, time.UTC)

// unknownEvent stands for an event type the renderers were not written for.
const unknownEvent = "proposal.archived"

// events are the types the tests render: the catalogue, test, and one unknown type.
func events() []string { return append(webhook.Documented(), unknownEvent) }

// Hostile values. Each has Slack markup, Discord mentions and Markdown, or text that stretches the
// limits or the encoding.
var (
	markupName    = "<!channel> *bold* _it_ ~strike~ `code` <http://x|y> Tom & Jerry @everyone <@123> [click](https://evil.example) ||spoiler|| # h1"
	markupClient  = "<@U024BE7LH> @here <#C123|general> &amp; **Acme** > quoted <!subteam^S1|team> :smile:"
	markupComment = "line one & <b>two</b>\n> quoted\n- item\n# Heading\n```go\npanic()\n```\n@everyone <@&456> https://evil.example"
	longName      = strings.Repeat("Long & <name> 😀 ", 625)[:10000] // cuts a 😀 in half: invalid UTF-8 at the end
	longClient    = strings.Repeat("Ü<>&", 2500)
	longComment   = strings.Repeat("Wörds & *stars* on\nmany lines ", 400)
	rtlName       = "Invoice \u202Egnp.exe\u202C for \u2066Acme\u2069 \u200F"
	badUTF8       = "Caf\xe9 \xff\xfe Zo\xc3" // Latin-1 é, bytes that are never UTF-8, a truncated sequence
	controlClient = "Tab\there\nnew line\r\nNUL\x00 bell\a \u2028sep"
)

// variants names the data sets every event is rendered with.
var variants = []string{"example", "markup", "long", "unicode"}

// variantData returns the example data of event (proposal.created's for unknownEvent) with the
// user-typed fields replaced by the values of variant. The unicode variant carries raw invalid
// UTF-8 inside its JSON strings, as a careless producer might send.
func variantData(event, variant string) json.RawMessage {
	base := event
	if event == unknownEvent {
		base = webhook.ProposalCreated
	}
	var m map[string]any
	if err := json.Unmarshal(webhook.ExampleData(base), &m); err != nil {
		panic(err)
	}
	set := func(k string, v any) {
		if _, ok := m[k]; ok {
			m[k] = v
		}
	}
	const invalid = "\uE000INVALID\uE000" // replaced by raw invalid bytes after encoding
	switch variant {
	case "markup":
		set("name", markupName)
		set("client_name", markupClient)
		set("revision_comment", markupComment)
		set("brief", markupComment)
		set("last_error", markupComment)
		set("url", "https://hooks.slack.com/services/T000/B000/SECRETSECRET?token=<x>|y")
		if m["share_url"] != nil {
			set("share_url", "https://app.quikly.example/p/tok?a=1&b=<script>|x")
		}
	case "long":
		set("name", longName)
		set("client_name", longClient)
		set("revision_comment", longComment)
		set("brief", longComment)
		set("last_error", longComment)
		set("url", "https://"+strings.Repeat("a", 3000)+".example/")
		if m["share_url"] != nil {
			set("share_url", "https://app.quikly.example/p/"+strings.Repeat("t", 2100))
		}
		set("total", json.Number("9999999999999.99"))
	case "unicode":
		set("name", rtlName+" "+invalid)
		set("client_name", controlClient+" "+invalid)
		set("revision_comment", "RTL \u202Eevil\n"+invalid)
		set("brief", "\u202Ebrief\u202C "+invalid)
		set("last_error", invalid)
		set("currency", "JPY")
		set("total", json.Number("1200000"))
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return json.RawMessage(strings.ReplaceAll(string(b), invalid, badUTF8))
}
