// Package render writes the bytes a webhook is sent for an event, in the webhook's format (SPEC §12).
package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Format is how a webhook's bodies are written.
type Format string

// The formats of SPEC §12. The zero Format means JSON.
const (
	JSON    Format = "json"    // the body of SPEC §5
	Slack   Format = "slack"   // a Slack incoming-webhook message (Block Kit)
	Discord Format = "discord" // a Discord webhook message with one embed
)

// Formats returns every format, the default first.
func Formats() []Format { return []Format{JSON, Slack, Discord} }

// Valid reports whether f is one of Formats (the zero Format is not: a stored webhook names its
// format).
func (f Format) Valid() bool { return f == JSON || f == Slack || f == Discord }

// TimeFormat is how a body's timestamp is written: RFC 3339, UTC, whole seconds. It is the same as
// delivery.TimeFormat (this package cannot import delivery, which will import it).
const TimeFormat = "2006-01-02T15:04:05Z"

// Event is what happened, as publishing knows it when it writes a delivery's body.
type Event struct {
	Type      string          // e.g. "proposal.accepted" (webhook.ProposalAccepted)
	Timestamp time.Time       // when it happened; written in UTC, whole seconds
	WebhookID string          // the receiving webhook (json format only)
	Data      json.RawMessage // the event's data, a JSON object (proposal.ProposalData, …)
}

// ErrFormat is returned for a format Body does not know.
var ErrFormat = errors.New("unknown format")

// Body returns the exact bytes to send for e in format f (the zero Format is JSON). It is pure and
// safe for concurrent use.
//
// JSON is the SPEC §5 body, {"event","timestamp","webhook_id","data"} with Data as given, byte for
// byte what webhook.Body writes. Slack and Discord are chat messages built from the fields of Data
// that the catalogue defines; fields they do not find are left out, so an unknown event type still
// gets a message. An error means Data is not a JSON object or f is unknown.
func Body(f Format, e Event) ([]byte, error) {
	switch f {
	case JSON, "":
		if !json.Valid(e.Data) {
			return nil, fmt.Errorf("render %s: data is not valid JSON", e.Type)
		}
		return jsonBody(e), nil
	case Slack, Discord:
		d, err := decodeData(e.Data)
		if err != nil {
			return nil, fmt.Errorf("render %s as %s: %w", e.Type, f, err)
		}
		m := newMessage(e, d)
		var out any
		if f == Slack {
			out = slackMessage(m)
		} else {
			out = discordMessage(m)
		}
		b, err := marshal(out)
		if err != nil {
			return nil, fmt.Errorf("render %s as %s: %w", e.Type, f, err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("render %s as %q: %w", e.Type, string(f), ErrFormat)
	}
}

// jsonBody writes the SPEC §5 body with the keys in the SPEC's order.
func jsonBody(e Event) []byte {
	b := make([]byte, 0, len(e.Data)+len(e.Type)+len(e.WebhookID)+80)
	b = append(b, `{"event":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"timestamp":"`...)
	b = e.Timestamp.UTC().AppendFormat(b, TimeFormat)
	b = append(b, `","webhook_id":`...)
	b = appendJSONString(b, e.WebhookID)
	b = append(b, `,"data":`...)
	b = append(b, e.Data...)
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	enc, _ := json.Marshal(s) // a string always encodes
	return append(b, enc...)
}
