// Package randid makes unguessable identifiers from the operating system's random source.
package randid

import "crypto/rand"

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Base62 returns n random base62 characters (about 5.95 bits each). Rejection sampling keeps every
// character equally likely.
func Base62(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		rand.Read(buf) // never fails on supported platforms (crypto/rand docs)
		for _, b := range buf {
			if b < 248 { // 248 = 4×62: larger values would favour the first characters
				out = append(out, base62[b%62])
				if len(out) == n {
					break
				}
			}
		}
	}
	return string(out)
}

// New returns prefix followed by 24 random base62 characters (≈143 bits).
func New(prefix string) string { return prefix + Base62(24) }
