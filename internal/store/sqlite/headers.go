package sqlite

import (
	"encoding/json"
	"slices"
)

// headersJSON returns the request headers of an attempt as a JSON object, with the same bytes as
// encoding/json would write ("{}" for none), without its reflection: every attempt logs about ten
// headers, and encoding them was a tenth of writing an outcome.
func headersJSON(h map[string]string) string {
	if len(h) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(h))
	size := 2
	for k, v := range h {
		keys = append(keys, k)
		size += len(k) + len(v) + 6
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, h[k])
	}
	return string(append(b, '}'))
}

// appendJSONString appends s as a JSON string. Printable ASCII that encoding/json writes unchanged
// is copied; anything else goes through encoding/json, so the bytes are always the same as its.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s) // a string always encodes
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
