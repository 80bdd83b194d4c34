package webhook

import (
	"encoding/json"
	"time"
)

// TimeFormat is how every timestamp of a body or the API is written: RFC 3339, UTC, whole seconds.
// It lives with Body, which renders the bodies; the API writes its timestamps the same way.
const TimeFormat = "2006-01-02T15:04:05Z"

// Body renders the exact bytes sent to one webhook, once; every attempt re-sends them unchanged.
// The keys come in the SPEC's order.
func Body(eventType string, at time.Time, webhookID string, data json.RawMessage) []byte {
	b := make([]byte, 0, len(data)+len(eventType)+len(webhookID)+80)
	b = append(b, `{"event":`...)
	b = appendJSONString(b, eventType)
	b = append(b, `,"timestamp":"`...)
	b = at.UTC().AppendFormat(b, TimeFormat)
	b = append(b, `","webhook_id":`...)
	b = appendJSONString(b, webhookID)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	enc, _ := json.Marshal(s) // a string always encodes
	return append(b, enc...)
}
