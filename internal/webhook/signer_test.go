package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
)

// refHMAC is the crypto/hmac answer that the pooled implementation must match.
func refHMAC(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func TestSignQuikly(t *testing.T) {
	t.Parallel()

	t.Run("RFC4231Vectors", func(t *testing.T) {
		t.Parallel()
		// RFC 4231 test cases 2 (short key) and 6 (key longer than the block, hashed first).
		require.Equal(t, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
			SignQuikly("Jefe", []byte("what do ya want for nothing?")))
		require.Equal(t, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
			SignQuikly(strings.Repeat("\xaa", 131), []byte("Test Using Larger Than Block-Size Key - Hash Key First")))
	})

	t.Run("KeyIsWholeSecretString", func(t *testing.T) {
		t.Parallel()
		secret := NewSecret()
		body := []byte(`{"event":"proposal.accepted","data":{}}`)
		want := hex.EncodeToString(refHMAC([]byte(secret), body))
		require.Equal(t, want, SignQuikly(secret, body))

		// The decoded key alone is not the key of this scheme.
		key, err := SecretKey(secret)
		require.NoError(t, err)
		require.NotEqual(t, hex.EncodeToString(refHMAC(key, body)), SignQuikly(secret, body))
	})

	t.Run("MatchesCryptoHMACForAllKeyLengths", func(t *testing.T) {
		t.Parallel()
		body := []byte("body")
		// Around the 64-byte block size, where the key handling changes.
		for _, n := range []int{0, 1, 50, 63, 64, 65, 128, 200} {
			key := strings.Repeat("k", n)
			require.Equal(t, hex.EncodeToString(refHMAC([]byte(key), body)), SignQuikly(key, body), "key length %d", n)
		}
	})

	t.Run("LowercaseHex", func(t *testing.T) {
		t.Parallel()
		sig := SignQuikly(NewSecret(), nil)
		require.Len(t, sig, 64)
		require.Equal(t, strings.ToLower(sig), sig)
	})
}

func TestSignStandard(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		secret string
		key    []byte
		body   []byte
		id     string
		ts     int64
	}

	setup := func(t *testing.T) *testBundle {
		t.Helper()
		secret := NewSecret()
		key, err := SecretKey(secret)
		require.NoError(t, err)
		return &testBundle{
			secret: secret,
			key:    key,
			body:   []byte(`{"event":"test","timestamp":"2026-04-03T14:30:00Z","webhook_id":"wh_1","data":{}}`),
			id:     "evt_2mZ9fQ",
			ts:     time.Now().Unix(),
		}
	}

	headers := func(id string, ts int64, sig string) http.Header {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		h.Set("webhook-signature", sig)
		return h
	}

	t.Run("VerifiesWithReferenceLibrary", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sig := SignStandard([][]byte{b.key}, b.id, b.ts, b.body)

		wh, err := standardwebhooks.NewWebhook(b.secret)
		require.NoError(t, err)
		require.NoError(t, wh.Verify(b.body, headers(b.id, b.ts, sig)))

		want, err := wh.Sign(b.id, time.Unix(b.ts, 0), b.body)
		require.NoError(t, err)
		require.Equal(t, want, sig)
	})

	t.Run("MatchesCryptoHMAC", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		msg := fmt.Sprintf("%s.%d.%s", b.id, b.ts, b.body)
		want := "v1," + base64.StdEncoding.EncodeToString(refHMAC(b.key, []byte(msg)))
		require.Equal(t, want, SignStandard([][]byte{b.key}, b.id, b.ts, b.body))
	})

	t.Run("RotationSignsWithBothSecrets", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		oldSecret := NewSecret()
		oldKey, err := SecretKey(oldSecret)
		require.NoError(t, err)

		sig := SignStandard([][]byte{b.key, oldKey}, b.id, b.ts, b.body)
		parts := strings.Split(sig, " ")
		require.Len(t, parts, 2)
		require.Equal(t, SignStandard([][]byte{b.key}, b.id, b.ts, b.body), parts[0], "new secret signs first")
		require.Equal(t, SignStandard([][]byte{oldKey}, b.id, b.ts, b.body), parts[1])

		for _, secret := range []string{b.secret, oldSecret} {
			wh, err := standardwebhooks.NewWebhook(secret)
			require.NoError(t, err)
			require.NoError(t, wh.Verify(b.body, headers(b.id, b.ts, sig)))
		}

		wh, err := standardwebhooks.NewWebhook(NewSecret())
		require.NoError(t, err)
		require.ErrorIs(t, wh.Verify(b.body, headers(b.id, b.ts, sig)), standardwebhooks.ErrNoMatchingSignature)
	})

	t.Run("CoversIDTimestampAndBody", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sig := SignStandard([][]byte{b.key}, b.id, b.ts, b.body)
		wh, err := standardwebhooks.NewWebhook(b.secret)
		require.NoError(t, err)

		require.Error(t, wh.VerifyIgnoringTimestamp(b.body, headers("evt_other", b.ts, sig)))
		require.Error(t, wh.VerifyIgnoringTimestamp(b.body, headers(b.id, b.ts+1, sig)))
		require.Error(t, wh.VerifyIgnoringTimestamp(append(bytes.Clone(b.body), ' '), headers(b.id, b.ts, sig)))
	})

	t.Run("OldTimestampStillSigned", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ts := int64(1_700_000_000)
		sig := SignStandard([][]byte{b.key}, b.id, ts, b.body)
		wh, err := standardwebhooks.NewWebhook(b.secret)
		require.NoError(t, err)
		require.NoError(t, wh.VerifyIgnoringTimestamp(b.body, headers(b.id, ts, sig)))
		require.ErrorIs(t, wh.Verify(b.body, headers(b.id, ts, sig)), standardwebhooks.ErrMessageTooOld)
	})

	t.Run("NoKeys", func(t *testing.T) {
		t.Parallel()
		require.Empty(t, SignStandard(nil, "evt_1", 1, nil))
	})

	t.Run("LongEventIDAndKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id := strings.Repeat("e", 10_000) // larger than the pooled scratch buffer keeps
		key := bytes.Repeat([]byte{7}, 100)
		msg := fmt.Sprintf("%s.%d.%s", id, b.ts, b.body)
		want := "v1," + base64.StdEncoding.EncodeToString(refHMAC(key, []byte(msg)))
		require.Equal(t, want, SignStandard([][]byte{key}, id, b.ts, b.body))
	})
}

// TestSignConcurrent shares the MAC pool between goroutines; run with -race.
func TestSignConcurrent(t *testing.T) {
	t.Parallel()

	secret := NewSecret()
	key, err := SecretKey(secret)
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				body := fmt.Appendf(nil, `{"g":%d,"i":%d}`, g, i)
				if got, want := SignQuikly(secret, body), hex.EncodeToString(refHMAC([]byte(secret), body)); got != want {
					errs <- fmt.Errorf("SignQuikly: got %s, want %s", got, want)
					return
				}
				msg := fmt.Appendf(nil, "evt_%d.%d.%s", g, i, body)
				want := "v1," + base64.StdEncoding.EncodeToString(refHMAC(key, msg))
				if got := SignStandard([][]byte{key}, fmt.Sprint("evt_", g), int64(i), body); got != want {
					errs <- fmt.Errorf("SignStandard: got %s, want %s", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// raceEnabled reports whether the test binary was built with -race, which makes sync.Pool drop
// items on purpose and so changes allocation counts.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// TestSignAllocs is not parallel: testing.AllocsPerRun panics while parallel tests run.
func TestSignAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("allocation counts differ under the race detector")
	}
	secret := NewSecret()
	key, err := SecretKey(secret)
	require.NoError(t, err)
	oldKey, err := SecretKey(NewSecret())
	require.NoError(t, err)
	keys := [][]byte{key, oldKey}
	body := bytes.Repeat([]byte("x"), 1024)

	// Only the returned string is allocated.
	require.LessOrEqual(t, testing.AllocsPerRun(100, func() { SignQuikly(secret, body) }), 1.0)
	require.LessOrEqual(t, testing.AllocsPerRun(100, func() { SignStandard(keys, "evt_2mZ9fQ", 1775226600, body) }), 1.0)
}

func BenchmarkSignQuikly(b *testing.B) {
	secret := NewSecret()
	body := bytes.Repeat([]byte("x"), 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		SignQuikly(secret, body)
	}
}

func BenchmarkSignStandard(b *testing.B) {
	key, _ := SecretKey(NewSecret())
	oldKey, _ := SecretKey(NewSecret())
	body := bytes.Repeat([]byte("x"), 1024)

	b.Run("OneKey", func(b *testing.B) {
		keys := [][]byte{key}
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			SignStandard(keys, "evt_2mZ9fQ", 1775226600, body)
		}
	})
	b.Run("Rotation", func(b *testing.B) {
		keys := [][]byte{key, oldKey}
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			SignStandard(keys, "evt_2mZ9fQ", 1775226600, body)
		}
	})
	// The allocation-heavy way, for comparison.
	b.Run("CryptoHMACReference", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			m := hmac.New(sha256.New, key)
			fmt.Fprintf(m, "%s.%d.", "evt_2mZ9fQ", 1775226600)
			m.Write(body)
			_ = "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		}
	})
}
