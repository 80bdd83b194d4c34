package api

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/errs"
)

// TestDecodeNamesUnknownFieldAsSent: an unknown field is named as the client sent it, not in Go's
// quoted spelling (found by FuzzDecode: {"\x7f":0} was named `\x7f`).
func TestDecodeNamesUnknownFieldAsSent(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"extra", "a\"b", "\x7f", "tab\there", "ünï", "", `back\slash`} {
		body, _ := jsonObject(key)
		var in webhookInputJSON
		err := decodeBody(body, &in, nil)
		var e *errs.Error
		require.True(t, errors.As(err, &e), "%q: %v", key, err)
		require.Equal(t, map[string]string{key: "is not a known field"}, e.Fields, "%q", key)
	}
}

// jsonObject is {key: 1} with key encoded by encoding/json.
func jsonObject(key string) ([]byte, error) {
	return json.Marshal(map[string]int{key: 1})
}
