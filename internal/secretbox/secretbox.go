// Package secretbox seals webhook signing secrets at rest with AES-256-GCM.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// sealedPrefix marks a sealed value, so clear values written before a key was set still read.
const sealedPrefix = "sealed:v1:"

// Box seals and opens values. A nil *Box leaves values in clear. Safe for concurrent use.
type Box struct{ aead cipher.AEAD }

// New returns a Box for a key given as standard base64 of 32 bytes (`openssl rand -base64 32`).
func New(keyBase64 string) (*Box, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keyBase64))
	if err != nil || len(key) != 32 {
		return nil, errors.New("QUIKLY_ENCRYPTION_KEY must be 32 random bytes in standard base64 (openssl rand -base64 32)")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal returns the stored form of plain: sealed with a random nonce, or plain itself for a nil Box.
func (b *Box) Seal(plain string) string {
	if b == nil || plain == "" {
		return plain
	}
	nonce := make([]byte, b.aead.NonceSize())
	rand.Read(nonce) // never fails on supported platforms (crypto/rand docs)
	sealed := b.aead.Seal(nonce, nonce, []byte(plain), nil)
	return sealedPrefix + base64.StdEncoding.EncodeToString(sealed)
}

// IsSealed reports whether stored is a sealed value (rather than a secret stored in clear).
func IsSealed(stored string) bool { return strings.HasPrefix(stored, sealedPrefix) }

// SealClear seals a stored value left in clear; sealed and empty values stay as they are.
func (b *Box) SealClear(stored string) string {
	if stored == "" || IsSealed(stored) {
		return stored
	}
	return b.Seal(stored)
}

// ErrWrongKey means a sealed value cannot be opened with this key, or there is no key.
var ErrWrongKey = errors.New("stored secrets were sealed with a different QUIKLY_ENCRYPTION_KEY, or the key is missing")

// Open returns the clear form of a stored value.
func (b *Box) Open(stored string) (string, error) {
	rest, sealed := strings.CutPrefix(stored, sealedPrefix)
	if !sealed {
		return stored, nil
	}
	if b == nil {
		return "", ErrWrongKey
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(raw) < b.aead.NonceSize() {
		return "", fmt.Errorf("open sealed value: %w", ErrWrongKey)
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, raw[:n], raw[n:], nil)
	if err != nil {
		return "", ErrWrongKey
	}
	return string(plain), nil
}
