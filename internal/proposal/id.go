package proposal

import (
	"crypto/rand"
	"encoding/hex"

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

// newUUID returns a random (version 4) UUID in its canonical lower-case form.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])         // never fails on supported platforms (crypto/rand docs)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

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
