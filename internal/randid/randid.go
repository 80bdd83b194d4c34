// Package randid makes unguessable identifiers from the operating system's random source.
package randid

import (
	"crypto/rand"
	"time"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Base62 returns n random base62 characters (about 5.95 bits each). Rejection sampling keeps every
// character equally likely.
func Base62(n int) string {
	return string(appendRandom(make([]byte, 0, n), n))
}

func appendRandom(out []byte, n int) []byte {
	buf := make([]byte, n+n/4+8)
	for want := len(out) + n; len(out) < want; {
		rand.Read(buf) // never fails on supported platforms (crypto/rand docs)
		for _, b := range buf {
			if b < 248 { // 248 = 4×62: larger values would favour the first characters
				out = append(out, base62[b%62])
				if len(out) == want {
					break
				}
			}
		}
	}
	return out
}

// timeLen is the width of an id's time part: 62⁸ milliseconds is about 6,900 years from 1970.
const timeLen = 8

// New returns prefix followed by 24 base62 characters: the current Unix time in milliseconds (8)
// and 16 random characters (≈95 bits). The time part makes ids of the same prefix sort in about the
// order they were made (base62's digits are in ASCII order), as KSUIDs and Svix's ids do, so a
// database index of ids grows at one end: a random id would land on a random page of the index and
// cost a page write per row. The ids are not secrets, but 95 random bits still make them unguessable.
func New(prefix string) string {
	out := make([]byte, len(prefix)+timeLen, len(prefix)+timeLen+16)
	copy(out, prefix)
	ms := time.Now().UnixMilli()
	for i := len(out) - 1; i >= len(prefix); i-- {
		out[i] = base62[ms%62]
		ms /= 62
	}
	return string(appendRandom(out, 16))
}
