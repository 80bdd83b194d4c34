package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/quikly/webhooks/internal/proposal"
	"github.com/quikly/webhooks/internal/webhook"
)

// message is what a chat message says about an event, before it is written for Slack or Discord.
// Every value in it has been cleaned (see clean); parts mark which text came from the event.
type message struct {
	event    string
	at       time.Time
	title    []part // a headline: "Proposal accepted: Website redesign"
	sentence []part // the one human sentence
	facts    []fact // short values shown side by side
	long     *fact  // a longer text (comment, brief, last error), or nil
	link     string // a safe http(s) URL to open, or ""
	label    string // the link's button text
}

// fact is a labelled value.
type fact struct {
	name, value string
}

// data is an event's data, decoded loosely: a chat message shows what it finds.
type data map[string]any

func decodeData(raw json.RawMessage) (data, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var d data
	if err := dec.Decode(&d); err != nil || d == nil {
		return nil, errors.New("data is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data is not a single JSON object")
	}
	return d, nil
}

// str returns the field k as text: a string as is, a number as written; "" for anything else.
func (d data) str(k string) string {
	switch v := d[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// line returns the field k cleaned as one line.
func (d data) line(k string) string { return clean(d.str(k), false) }

// proposal sentences and headlines, by event type. {name}, {client} and {amount} are values.
var proposalText = map[string][2]string{
	webhook.ProposalCreated:           {"Proposal “{name}” for {client} was created ({amount}).", "New proposal: {name}"},
	webhook.ProposalUpdated:           {"Proposal “{name}” for {client} was updated ({amount}).", "Proposal updated: {name}"},
	webhook.ProposalShared:            {"Proposal “{name}” was shared with {client} ({amount}).", "Proposal shared: {name}"},
	webhook.ProposalAccepted:          {"{client} accepted proposal “{name}” ({amount}).", "Proposal accepted: {name}"},
	webhook.ProposalRejected:          {"{client} rejected proposal “{name}” ({amount}).", "Proposal rejected: {name}"},
	webhook.ProposalRevisionRequested: {"{client} requested changes to proposal “{name}” ({amount}).", "Changes requested: {name}"},
	webhook.TestEvent:                 {"This is a Quikly test event about proposal “{name}” for {client} ({amount}).", "Test event: {name}"},
}

func newMessage(e Event, d data) *message {
	m := &message{event: e.Type, at: e.Timestamp.UTC()}
	switch {
	case proposalText[e.Type] != [2]string{}:
		t := proposalText[e.Type]
		vars := map[string]string{"name": d.line("name"), "client": d.line("client_name"), "amount": amount(d)}
		if vars["amount"] == "" {
			t[0] = strings.Replace(t[0], " ({amount})", "", 1)
		}
		m.sentence, m.title = fill(t[0], vars), fill(t[1], vars)
		m.facts = []fact{{"Client", vars["client"]}}
		if vars["amount"] != "" {
			m.facts = append(m.facts, fact{"Amount", vars["amount"]})
		}
		m.facts = append(m.facts, fact{"Status", human(d.line("status"))})
		if c := clean(d.str("revision_comment"), true); c != "" {
			m.long = &fact{"Comment", c}
		}
		if m.link = safeLink(d.str("share_url")); m.link != "" {
			m.label = "Open proposal"
		}
	case e.Type == webhook.LeadSessionCreated || e.Type == webhook.LeadSessionUpdated:
		ch := d.line("channel")
		vars := map[string]string{"client": d.line("client_name"), "channel": channelIn(ch), "status": human(d.line("status"))}
		if e.Type == webhook.LeadSessionCreated {
			m.sentence, m.title = fill("New lead from {client} via {channel}.", vars), fill("New lead: {client}", vars)
		} else {
			m.sentence, m.title = fill("Lead from {client} via {channel} is now {status}.", vars), fill("Lead updated: {client}", vars)
		}
		m.facts = []fact{{"Client", vars["client"]}, {"Channel", channelName(ch)}, {"Status", vars["status"]}}
		if b := clean(d.str("brief"), true); b != "" {
			m.long = &fact{"Brief", b}
		}
	case e.Type == webhook.WebhookDisabled:
		vars := map[string]string{"name": d.line("name"), "since": when(d.line("failing_since"))}
		m.sentence = fill("Webhook “{name}” was disabled because its endpoint has been failing since {since}.", vars)
		m.title = fill("Webhook disabled: {name}", vars)
		// Only the endpoint's host: the full URL may hold a secret (a Slack webhook URL is one), and
		// this message goes to another endpoint.
		m.facts = []fact{{"Webhook", vars["name"]}, {"Endpoint", host(d.str("url"))}, {"Failing since", vars["since"]}}
		if le := clean(d.str("last_error"), true); le != "" {
			m.long = &fact{"Last error", le}
		}
	default:
		vars := map[string]string{"event": clean(e.Type, false)}
		m.sentence, m.title = fill("Quikly event {event}.", vars), fill("{event}", vars)
	}
	return m
}

// fill turns a template into parts: {key} is the value vars[key], the rest our words.
func fill(tmpl string, vars map[string]string) []part {
	var out []part
	for tmpl != "" {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			return append(out, litPart(tmpl))
		}
		j := strings.IndexByte(tmpl[i:], '}') + i
		if i > 0 {
			out = append(out, litPart(tmpl[:i]))
		}
		out = append(out, userPart(vars[tmpl[i+1:j]]))
		tmpl = tmpl[j+1:]
	}
	return out
}

// amount returns the proposal's total with its currency, "USD 1,200.50", or "" without a total.
func amount(d data) string {
	total := d.line("total")
	if total == "" {
		return ""
	}
	cur := d.line("currency")
	if m, err := proposal.ParseMoney(total, cur); err == nil {
		total = group(m.Format(cur))
	}
	return strings.TrimSpace(cur + " " + total)
}

// group puts thousands separators into the whole part of a decimal: "1234567.50" → "1,234,567.50".
func group(s string) string {
	whole, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if hasFrac {
		b.WriteString("." + frac)
	}
	return b.String()
}

// human writes a status for people: "revision_requested" → "changes requested".
func human(status string) string {
	switch status {
	case "revision_requested":
		return "changes requested"
	case "proposal_ready":
		return "ready for a proposal"
	}
	return strings.ReplaceAll(status, "_", " ")
}

// channelIn and channelName write a lead's channel in a sentence and as a value.
func channelIn(ch string) string {
	switch ch {
	case "widget":
		return "the chat widget"
	case "api":
		return "the API"
	}
	return channelName(ch)
}

func channelName(ch string) string {
	switch ch {
	case "widget":
		return "Chat widget"
	case "telegram":
		return "Telegram"
	case "api":
		return "API"
	}
	return ch
}

// when writes an RFC 3339 time as "2026-03-29 09:12 UTC", or returns s when it is not one.
func when(s string) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// host returns the scheme and host of an endpoint URL, "https://crm.example.com", or "" when it
// has none.
func host(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return clean(u.Scheme+"://"+u.Host, false)
}

// linkMaxLen bounds the links put in messages (Slack allows 3,000 characters in a button's url;
// Discord's embed url is safe well below that).
const linkMaxLen = 2000

// safeLink returns s when it is an absolute http(s) URL of printable ASCII without the characters
// that delimit links in Slack's or Discord's markup, and "" otherwise (the message then has no
// link rather than a broken one).
func safeLink(s string) string {
	if s == "" || len(s) > linkMaxLen {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("<>|\"\\`{}^", c) >= 0 {
			return ""
		}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return ""
	}
	return s
}
