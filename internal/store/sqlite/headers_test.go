package sqlite

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHeadersJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, h := range []map[string]string{
		nil,
		{},
		{"webhook-id": "evt_1", "Content-Type": "application/json", "User-Agent": "Quikly-Webhooks/1.0"},
		{"a": `quote " and \ backslash`, "b": "<html> & more", "c": "tab\tnewline\n", "d": "ünïcode ✓", "e": "\x00\x7f",
			"f": "bad utf-8 \xff\xfe", "g": "line sep \u2028 para \u2029", "h": ""},
	} {
		want, err := json.Marshal(h)
		require.NoError(t, err)
		if h == nil {
			want = []byte("{}") // stored as an empty object, never null
		}
		require.Equal(t, string(want), headersJSON(h))
	}
}
