package render

// Slack: an incoming-webhook message, {"text","blocks"}. Slack's documented rules
// (https://api.slack.com/reference/surfaces/formatting#escaping, /reference/block-kit/blocks):
// in mrkdwn text, &, < and > must be written &amp;, &lt; and &gt; — which also disarms user text
// such as <!channel> or <http://x|y>; a text object holds at most 3,000 characters, a section field
// 2,000, a button's text 75 and its url 3,000. verbatim keeps Slack from turning names that look
// like URLs, #channels or @mentions into links.

const (
	slackTextMax  = 3000
	slackFieldMax = 2000
)

type slackBody struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackText struct {
	Type     string `json:"type"` // mrkdwn or plain_text
	Text     string `json:"text"`
	Verbatim bool   `json:"verbatim,omitempty"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []any       `json:"elements,omitempty"`
}

type slackButton struct {
	Type     string    `json:"type"`
	Text     slackText `json:"text"`
	URL      string    `json:"url"`
	ActionID string    `json:"action_id"`
}

func slackEscape(r rune) string {
	switch r {
	case '&':
		return "&amp;"
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	}
	return ""
}

func mrkdwn(s string) *slackText { return &slackText{Type: "mrkdwn", Text: s, Verbatim: true} }

func slackMessage(m *message) slackBody {
	sentence := compose(slackTextMax, slackEscape, m.sentence...)
	main := slackBlock{Type: "section", Text: mrkdwn(sentence)}
	for _, f := range m.facts {
		main.Fields = append(main.Fields, *mrkdwn(compose(slackFieldMax, slackEscape,
			rawPart("*"), litPart(f.name), rawPart("*\n"), userPart(orDash(f.value)))))
	}
	blocks := []slackBlock{main}
	if m.long != nil {
		blocks = append(blocks, slackBlock{Type: "section", Text: mrkdwn(compose(slackTextMax, slackEscape,
			rawPart("*"), litPart(m.long.name), rawPart("*\n"), userPart(m.long.value)))})
	}
	if m.link != "" {
		blocks = append(blocks, slackBlock{Type: "actions", Elements: []any{slackButton{
			Type: "button", Text: slackText{Type: "plain_text", Text: m.label}, URL: m.link, ActionID: "open_link",
		}}})
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []any{mrkdwn(compose(slackTextMax, slackEscape,
		rawPart("`"), userPart(m.event), rawPart("` · "), litPart(m.at.Format("2006-01-02 15:04 UTC"))))}})
	return slackBody{Text: sentence, Blocks: blocks}
}

// orDash stands in for an empty value: Slack and Discord refuse empty texts.
func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
