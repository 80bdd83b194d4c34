package listen

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/quikly/webhooks/internal/clock"
	"github.com/quikly/webhooks/internal/webhook"
)

// FuzzListenVerify: the receiver never panics on any body and any header values; a delivery signed
// with the secret verifies, whether by X-Quikly-Signature alone or by webhook-signature alone; and
// changing any single byte of the body, or of the signature sent, makes it fail. The secret is
// either a real one (32 bytes from the fuzzer) or any text, for which only X-Quikly-Signature can
// verify. Seeds: testdata/fuzz/FuzzListenVerify. Run:
// go test ./internal/listen -run '^$' -fuzz '^FuzzListenVerify$'.
func FuzzListenVerify(f *testing.F) {
	f.Add([]byte(`{"event":"proposal.created","data":{}}`), "msg_1", []byte("0123456789abcdef0123456789abcdef"), "", uint16(3), byte('X'))
	f.Add([]byte{}, "", []byte{}, "not a secret", uint16(0), byte(0))
	f.Add([]byte("\x00\xff\n"), "id with spaces\n", []byte("k"), "whsec_!!", uint16(70), byte(' '))
	f.Add(bytes.Repeat([]byte("a"), 300), "evt_2", bytes.Repeat([]byte{0xff}, 32), "", uint16(65535), byte('v'))
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, body []byte, id string, key []byte, textSecret string, pos uint16, b byte) {
		secret := textSecret
		if secret == "" {
			secret = webhook.SecretPrefix + base64.StdEncoding.EncodeToString(key)
		}
		h := Handler(secret, io.Discard, clock.Func(func() time.Time { return now }))
		ts := strconv.FormatInt(now.Unix(), 10)
		send := func(body []byte, header map[string]string) int {
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			for k, v := range header {
				r.Header[http.CanonicalHeaderKey(k)] = []string{v} // raw: any bytes, as a hostile client sends
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w.Code
		}

		quikly := webhook.SignQuikly(secret, body)
		if code := send(body, map[string]string{"X-Quikly-Signature": quikly, "webhook-id": id}); code != http.StatusOK {
			t.Fatalf("a delivery signed with X-Quikly-Signature answered %d", code)
		}
		var standard string
		if k, err := webhook.SecretKey(secret); err == nil && id != "" {
			standard = webhook.SignStandard([][]byte{k}, id, now.Unix(), body)
			if code := send(body, map[string]string{"webhook-signature": standard, "webhook-id": id, "webhook-timestamp": ts}); code != http.StatusOK {
				t.Fatalf("a delivery signed with webhook-signature answered %d", code)
			}
		}

		// One byte of the body changed: neither signature verifies.
		if len(body) > 0 {
			changed := bytes.Clone(body)
			i := int(pos) % len(changed)
			changed[i] = differentByte(changed[i], b)
			header := map[string]string{"X-Quikly-Signature": quikly, "webhook-id": id, "webhook-timestamp": ts}
			if standard != "" {
				header["webhook-signature"] = standard
			}
			if code := send(changed, header); code != http.StatusBadRequest {
				t.Fatalf("body byte %d changed, yet the delivery answered %d", i, code)
			}
		}
		// One byte of a signature changed: that signature alone does not verify.
		sigs := map[string]string{"X-Quikly-Signature": quikly}
		if standard != "" {
			sigs["webhook-signature"] = standard
		}
		for name, sig := range sigs {
			changed := []byte(sig)
			i := int(pos) % len(changed)
			changed[i] = differentByte(changed[i], b)
			if code := send(body, map[string]string{name: string(changed), "webhook-id": id, "webhook-timestamp": ts}); code != http.StatusBadRequest {
				t.Fatalf("%s byte %d changed (%q), yet the delivery answered %d", name, i, changed, code)
			}
		}
		// Arbitrary header values, hostile bytes included, never panic.
		send(body, map[string]string{"X-Quikly-Signature": id, "webhook-signature": id + " " + textSecret, "webhook-id": id, "webhook-timestamp": id})
	})
}

// differentByte returns b when it differs from old, and another byte otherwise.
func differentByte(old, b byte) byte {
	if b == old {
		return old ^ 0x01
	}
	return b
}
