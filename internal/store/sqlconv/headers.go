package sqlconv

import (
	"encoding/json"
	"fmt"

	"github.com/quikly/webhooks/internal/webhook"
)

// FormatText returns a webhook's format as stored: json when unset.
func FormatText(format string) string {
	if format == "" {
		return webhook.FormatJSON
	}
	return format
}

// HeadersText returns the stored text of a webhook's custom headers before sealing: a JSON object,
// or "" for none.
func HeadersText(h map[string]string) string {
	if len(h) == 0 {
		return ""
	}
	b, _ := json.Marshal(h) // a map of strings always encodes
	return string(b)
}

// ParseHeaders reads what HeadersText wrote (after opening); "" gives nil.
func ParseHeaders(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var h map[string]string
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, fmt.Errorf("stored headers: %w", err)
	}
	return h, nil
}
