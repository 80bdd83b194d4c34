// Package account holds accounts and their API keys. Keys are shown once and stored only as SHA-256
// hashes: a key has ≥190 bits of entropy, so a fast hash is enough and lookups stay one index probe.
package account

import (
	"crypto/sha256"
	"strings"
	"time"

	"github.com/quikly/webhooks/internal/randid"
)

// Account is a customer: every webhook, log, proposal and lead session belongs to one.
type Account struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// KeyPrefix starts every API key.
const KeyPrefix = "qk_"

// NewAPIKey returns a new key in clear ("qk_" and 32 base62 characters, ≈190 bits) and its hash.
func NewAPIKey() (key string, hash []byte) {
	key = KeyPrefix + randid.Base62(32)
	return key, HashAPIKey(key)
}

// HashAPIKey returns the stored form of key.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// LooksLikeAPIKey reports whether key has the shape of an API key, so obvious garbage is refused
// without a database round trip.
func LooksLikeAPIKey(key string) bool {
	return strings.HasPrefix(key, KeyPrefix) && len(key) >= len(KeyPrefix)+32 && len(key) <= 128
}
