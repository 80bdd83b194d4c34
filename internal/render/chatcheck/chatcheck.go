// Package chatcheck checks Slack and Discord webhook bodies against the rules those services
// document (required fields, lengths, escaping, mentions), for tests and test receivers. It reads
// bodies the way the services do and knows nothing of how package render writes them.
package chatcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Length reports the length of s as Slack's and Discord's clients count it, in UTF-16 code units
// (never less than the number of code points).
func Length(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// decode parses body strictly: valid UTF-8, one JSON object, no unknown fields in v.
func decode(body []byte, v any) error {
	if !utf8.Valid(body) {
		return errors.New("body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if dec.More() {
		return errors.New("body: data after the JSON object")
	}
	return nil
}

// Slack limits (https://api.slack.com/reference/block-kit/blocks and …/composition-objects), and
// SPEC §12's 3,000 for the top-level text.
const (
	SlackTextMax        = 3000
	SlackFieldMax       = 2000
	SlackFieldsMax      = 10
	SlackBlocksMax      = 50
	SlackContextMax     = 10
	SlackButtonTextMax  = 75
	SlackButtonURLMax   = 3000
	SlackIDMax          = 255
	slackActionsMaxElem = 25
)

type slackText struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Verbatim *bool  `json:"verbatim"`
	Emoji    *bool  `json:"emoji"`
}

type slackElement struct {
	Type     string     `json:"type"`
	Text     *slackText `json:"text"` // button
	URL      string     `json:"url"`
	ActionID string     `json:"action_id"`
	Verbatim *bool      `json:"verbatim"`
	Emoji    *bool      `json:"emoji"`
	Value    string     `json:"value"`
	Style    string     `json:"style"`
}

type slackBlock struct {
	Type     string            `json:"type"`
	BlockID  string            `json:"block_id"`
	Text     *slackText        `json:"text"`
	Fields   []slackText       `json:"fields"`
	Elements []json.RawMessage `json:"elements"`
}

type slackBody struct {
	Text   *string      `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// slackLink matches a link Slack's mrkdwn reads: <https://…> or <https://…|label>.
var slackLink = regexp.MustCompile(`^<https?://[^\s<>|]+(\|[^<>]*)?>`)

// SlackEscaped returns nil when s is mrkdwn in which &, < and > appear only as Slack's escapes
// (&amp; &lt; &gt;), in links to http(s) URLs (never <!channel>, <@U…>, <#C…>), or, for >, as a
// block quote at the start of a line.
func SlackEscaped(s string) error {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&':
			if !strings.HasPrefix(s[i:], "&amp;") && !strings.HasPrefix(s[i:], "&lt;") && !strings.HasPrefix(s[i:], "&gt;") {
				return fmt.Errorf("unescaped & at %d in %q", i, clip(s))
			}
		case '<':
			m := slackLink.FindString(s[i:])
			if m == "" {
				return fmt.Errorf("unescaped < at %d in %q", i, clip(s))
			}
			i += len(m) - 1
		case '>':
			if i > 0 && s[i-1] != '\n' {
				return fmt.Errorf("unescaped > at %d in %q", i, clip(s))
			}
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func checkSlackText(where string, t *slackText, max int, mrkdwnOnly bool) error {
	if t == nil {
		return fmt.Errorf("%s: missing text object", where)
	}
	switch {
	case t.Type != "mrkdwn" && t.Type != "plain_text":
		return fmt.Errorf("%s: text type %q", where, t.Type)
	case mrkdwnOnly && t.Type != "mrkdwn":
		return fmt.Errorf("%s: must be mrkdwn", where)
	case strings.TrimSpace(t.Text) == "":
		return fmt.Errorf("%s: empty text", where)
	case Length(t.Text) > max:
		return fmt.Errorf("%s: text of %d characters, over %d", where, Length(t.Text), max)
	case t.Type == "plain_text" && t.Verbatim != nil:
		return fmt.Errorf("%s: verbatim is only for mrkdwn", where)
	case t.Type == "mrkdwn" && t.Emoji != nil:
		return fmt.Errorf("%s: emoji is only for plain_text", where)
	}
	if t.Type == "mrkdwn" {
		if err := SlackEscaped(t.Text); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

// Slack returns nil when body is a message Slack's incoming webhooks take, as SPEC §12 writes it:
// {"text","blocks"}, text non-empty and escaped, at most SlackBlocksMax blocks of the kinds Slack
// documents (section, context, actions, divider, header) within their limits, buttons linking to
// http(s) URLs.
func Slack(body []byte) error {
	var b slackBody
	if err := decode(body, &b); err != nil {
		return err
	}
	if b.Text == nil {
		return errors.New("slack: missing text")
	}
	if err := checkSlackText("slack text", &slackText{Type: "mrkdwn", Text: *b.Text}, SlackTextMax, true); err != nil {
		return err
	}
	if len(b.Blocks) == 0 || len(b.Blocks) > SlackBlocksMax {
		return fmt.Errorf("slack: %d blocks", len(b.Blocks))
	}
	for i, bl := range b.Blocks {
		where := fmt.Sprintf("slack blocks[%d] (%s)", i, bl.Type)
		if Length(bl.BlockID) > SlackIDMax {
			return fmt.Errorf("%s: block_id too long", where)
		}
		switch bl.Type {
		case "section":
			if bl.Text == nil && len(bl.Fields) == 0 {
				return fmt.Errorf("%s: neither text nor fields", where)
			}
			if bl.Text != nil {
				if err := checkSlackText(where+" text", bl.Text, SlackTextMax, false); err != nil {
					return err
				}
			}
			if len(bl.Fields) > SlackFieldsMax {
				return fmt.Errorf("%s: %d fields", where, len(bl.Fields))
			}
			for j := range bl.Fields {
				if err := checkSlackText(fmt.Sprintf("%s fields[%d]", where, j), &bl.Fields[j], SlackFieldMax, false); err != nil {
					return err
				}
			}
		case "context":
			if len(bl.Elements) == 0 || len(bl.Elements) > SlackContextMax {
				return fmt.Errorf("%s: %d elements", where, len(bl.Elements))
			}
			for j, raw := range bl.Elements {
				var t slackText
				if err := json.Unmarshal(raw, &t); err != nil {
					return fmt.Errorf("%s elements[%d]: %w", where, j, err)
				}
				if err := checkSlackText(fmt.Sprintf("%s elements[%d]", where, j), &t, SlackTextMax, false); err != nil {
					return err
				}
			}
		case "actions":
			if len(bl.Elements) == 0 || len(bl.Elements) > slackActionsMaxElem {
				return fmt.Errorf("%s: %d elements", where, len(bl.Elements))
			}
			for j, raw := range bl.Elements {
				var el slackElement
				if err := json.Unmarshal(raw, &el); err != nil {
					return fmt.Errorf("%s elements[%d]: %w", where, j, err)
				}
				ew := fmt.Sprintf("%s elements[%d]", where, j)
				if el.Type != "button" {
					return fmt.Errorf("%s: type %q", ew, el.Type)
				}
				if el.Text == nil || el.Text.Type != "plain_text" {
					return fmt.Errorf("%s: a button's text must be plain_text", ew)
				}
				if err := checkSlackText(ew, el.Text, SlackButtonTextMax, false); err != nil {
					return err
				}
				if err := httpURL(el.URL, SlackButtonURLMax); err != nil {
					return fmt.Errorf("%s: %w", ew, err)
				}
				if Length(el.ActionID) > SlackIDMax {
					return fmt.Errorf("%s: action_id too long", ew)
				}
			}
		case "divider":
		case "header":
			if err := checkSlackText(where, bl.Text, 150, false); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unknown block type", where)
		}
	}
	return nil
}

func httpURL(s string, max int) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return errors.New("missing url")
	case Length(s) > max:
		return fmt.Errorf("url of %d characters, over %d", Length(s), max)
	case err != nil:
		return fmt.Errorf("url: %w", err)
	case (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("url %q is not an absolute http(s) URL", s)
	}
	return nil
}

// Discord limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
const (
	DiscordContentMax     = 2000
	DiscordEmbedsMax      = 10
	DiscordTitleMax       = 256
	DiscordDescriptionMax = 4096
	DiscordFieldsMax      = 25
	DiscordFieldNameMax   = 256
	DiscordFieldValueMax  = 1024
	DiscordFooterMax      = 2048
	DiscordAuthorMax      = 256
	DiscordEmbedTotalMax  = 6000
)

type discordField struct {
	Name   *string `json:"name"`
	Value  *string `json:"value"`
	Inline *bool   `json:"inline"`
}

type discordEmbed struct {
	Title       string         `json:"title"`
	URL         *string        `json:"url"`
	Description string         `json:"description"`
	Fields      []discordField `json:"fields"`
	Timestamp   string         `json:"timestamp"`
	Color       *int           `json:"color"`
	Footer      *struct {
		Text string `json:"text"`
	} `json:"footer"`
	Author *struct {
		Name string `json:"name"`
	} `json:"author"`
}

type discordBody struct {
	Content         *string        `json:"content"`
	Embeds          []discordEmbed `json:"embeds"`
	AllowedMentions *struct {
		Parse *[]string `json:"parse"`
		Users []string  `json:"users"`
		Roles []string  `json:"roles"`
	} `json:"allowed_mentions"`
}

// Discord returns nil when body is a message Discord's execute-webhook endpoint takes, as SPEC §12
// writes it: content within DiscordContentMax, at most DiscordEmbedsMax embeds within every embed
// limit (the DiscordEmbedTotalMax counted over the whole message, as Discord does), fields with
// non-blank names and values, RFC 3339 timestamps, http(s) urls, and allowed_mentions
// {"parse":[]} with no users or roles, so nothing in the message pings anyone.
func Discord(body []byte) error {
	var b discordBody
	if err := decode(body, &b); err != nil {
		return err
	}
	if b.AllowedMentions == nil || b.AllowedMentions.Parse == nil || len(*b.AllowedMentions.Parse) != 0 ||
		len(b.AllowedMentions.Users) != 0 || len(b.AllowedMentions.Roles) != 0 {
		return errors.New(`discord: allowed_mentions must be {"parse":[]}`)
	}
	if b.Content == nil {
		return errors.New("discord: missing content")
	}
	if Length(*b.Content) > DiscordContentMax {
		return fmt.Errorf("discord: content of %d characters, over %d", Length(*b.Content), DiscordContentMax)
	}
	if strings.TrimSpace(*b.Content) == "" && len(b.Embeds) == 0 {
		return errors.New("discord: neither content nor embeds")
	}
	if len(b.Embeds) > DiscordEmbedsMax {
		return fmt.Errorf("discord: %d embeds", len(b.Embeds))
	}
	total := 0
	for i, e := range b.Embeds {
		where := fmt.Sprintf("discord embeds[%d]", i)
		limits := []struct {
			name string
			s    string
			max  int
		}{{"title", e.Title, DiscordTitleMax}, {"description", e.Description, DiscordDescriptionMax}}
		if e.Footer != nil {
			limits = append(limits, struct {
				name string
				s    string
				max  int
			}{"footer", e.Footer.Text, DiscordFooterMax})
		}
		if e.Author != nil {
			limits = append(limits, struct {
				name string
				s    string
				max  int
			}{"author", e.Author.Name, DiscordAuthorMax})
		}
		for _, l := range limits {
			if Length(l.s) > l.max {
				return fmt.Errorf("%s: %s of %d characters, over %d", where, l.name, Length(l.s), l.max)
			}
			total += Length(l.s)
		}
		if e.URL != nil {
			if err := httpURL(*e.URL, 2048); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
		}
		if e.Timestamp != "" {
			if _, err := time.Parse(time.RFC3339, e.Timestamp); err != nil {
				return fmt.Errorf("%s: timestamp: %w", where, err)
			}
		}
		if len(e.Fields) > DiscordFieldsMax {
			return fmt.Errorf("%s: %d fields", where, len(e.Fields))
		}
		for j, f := range e.Fields {
			fw := fmt.Sprintf("%s fields[%d]", where, j)
			switch {
			case f.Name == nil || f.Value == nil:
				return fmt.Errorf("%s: name and value are required", fw)
			case strings.TrimSpace(*f.Name) == "" || strings.TrimSpace(*f.Value) == "":
				return fmt.Errorf("%s: blank name or value", fw)
			case Length(*f.Name) > DiscordFieldNameMax:
				return fmt.Errorf("%s: name of %d characters", fw, Length(*f.Name))
			case Length(*f.Value) > DiscordFieldValueMax:
				return fmt.Errorf("%s: value of %d characters", fw, Length(*f.Value))
			}
			total += Length(*f.Name) + Length(*f.Value)
		}
	}
	if total > DiscordEmbedTotalMax {
		return fmt.Errorf("discord: embeds hold %d characters, over %d", total, DiscordEmbedTotalMax)
	}
	return nil
}

// DiscordMarkdownFree reports whether s, Discord Markdown, has no unescaped use of the characters
// that make mentions, links, spoilers or formatting ( @ < [ ] | * _ ~ ` # > ), that is, whether
// every one of them follows a backslash that is not itself escaped. Text a test knows to be our own
// markup must be removed before calling it.
func DiscordMarkdownFree(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			i++ // the escaped character
			continue
		}
		if strings.IndexByte("@<[]|*_~`#>", c) >= 0 {
			return fmt.Errorf("unescaped %q at %d in %q", c, i, clip(s))
		}
	}
	return nil
}
