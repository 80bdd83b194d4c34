package proposal

import (
	"github.com/google/uuid"

	"github.com/quikly/webhooks/internal/randid"
)

// ShareTokenLen is the length of a share token: 32 base62 characters, about 190 bits.
const ShareTokenLen = 32

// NewShareToken returns a new unguessable, URL-safe share token (ShareTokenLen base62 characters
// from crypto/rand). It is the only secret of a share link, so it is long enough that guessing one
// is hopeless however many requests an attacker makes.
func NewShareToken() string { return randid.Base62(ShareTokenLen) }

// ValidShareToken reports whether s has the shape of a share token, so that a share page can answer
// 404 for anything else without a database look-up.
func ValidShareToken(s string) bool {
	if len(s) != ShareTokenLen {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// newUUID returns a version 7 UUID (RFC 9562) in its canonical lower-case form: its first 48 bits
// are the time in milliseconds, so the ids of new rows land at one end of the database's index of
// ids instead of on a random page of it.
func newUUID() string { return uuid.Must(uuid.NewV7()).String() }

// ValidID reports whether s is a UUID in canonical lower-case form, as proposals and lead sessions
// are given. Callers answer 404 for anything else before asking a database (PostgreSQL would
// otherwise fail on a malformed uuid).
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}
