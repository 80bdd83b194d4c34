package webhook

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"sync"
)

// The signatures of SPEC §5. Both functions are safe for concurrent use.
//
// They compute HMAC-SHA256 (RFC 2104) over pooled SHA-256 states rather than with crypto/hmac:
// hmac.New allocates two digests and two pad buffers per call, and since every webhook has its own
// key there is no per-key MAC to reuse. Signing is on the delivery hot path, so each call here
// allocates only the returned string. The tests check the output against crypto/hmac and the
// Standard Webhooks reference library.

// SignQuikly returns the X-Quikly-Signature of body: the lowercase hex HMAC-SHA256 of body keyed
// with the bytes of the whole secret string, "whsec_" prefix included.
func SignQuikly(secret string, body []byte) string {
	m := getMAC()
	defer putMAC(m)
	setKey(m, secret)
	m.inner.Write(body)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], m.sum())
	return string(out[:])
}

// standardSigLen is the length of one "v1,<base64>" signature.
var standardSigLen = len("v1,") + base64.StdEncoding.EncodedLen(sha256.Size)

// SignStandard returns the webhook-signature header of Standard Webhooks: for each key in order, "v1,"
// and the standard base64 HMAC-SHA256 of "{eventID}.{ts}.{body}", separated by spaces. The keys are
// decoded secrets (see SecretKey); during a rotation pass the new key first, then the old one. No
// keys gives "".
func SignStandard(keys [][]byte, eventID string, ts int64, body []byte) string {
	if len(keys) == 0 {
		return ""
	}
	m := getMAC()
	defer putMAC(m)
	var b strings.Builder
	b.Grow(len(keys)*(standardSigLen+1) - 1)
	for i, key := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		setKey(m, key)
		// The parts go into the MAC one after another: building "{id}.{ts}.{body}" would copy the
		// whole body once per key.
		m.scratch = append(m.scratch[:0], eventID...)
		m.scratch = append(m.scratch, '.')
		m.scratch = strconv.AppendInt(m.scratch, ts, 10)
		m.scratch = append(m.scratch, '.')
		m.inner.Write(m.scratch)
		m.inner.Write(body)
		var enc [44]byte // base64 of 32 bytes
		base64.StdEncoding.Encode(enc[:], m.sum())
		b.WriteString("v1,")
		b.Write(enc[:])
	}
	return b.String()
}

// mac is a reusable HMAC-SHA256. Its buffers live in the pooled struct so that nothing passed to the
// hash.Hash interface escapes to a fresh heap allocation.
type mac struct {
	inner, outer hash.Hash
	pad          [sha256.BlockSize]byte
	digest       [sha256.Size]byte
	scratch      []byte
}

var macPool = sync.Pool{New: func() any {
	return &mac{inner: sha256.New(), outer: sha256.New(), scratch: make([]byte, 0, 128)}
}}

func getMAC() *mac { return macPool.Get().(*mac) }

func putMAC(m *mac) {
	// A huge event id would otherwise pin a large buffer in the pool.
	if cap(m.scratch) > 4096 {
		m.scratch = make([]byte, 0, 128)
	}
	macPool.Put(m)
}

// setKey starts a new message keyed with key: the inner hash has absorbed key⊕ipad and the outer
// key⊕opad (RFC 2104).
func setKey[K ~string | ~[]byte](m *mac, key K) {
	var block [sha256.BlockSize]byte
	if len(key) > sha256.BlockSize {
		// RFC 2104: a key longer than the block is replaced by its hash.
		m.scratch = append(m.scratch[:0], key...)
		m.inner.Reset()
		m.inner.Write(m.scratch)
		copy(block[:], m.inner.Sum(m.digest[:0]))
	} else {
		copy(block[:], key)
	}
	m.inner.Reset()
	m.outer.Reset()
	for i, k := range block {
		m.pad[i] = k ^ 0x36
	}
	m.inner.Write(m.pad[:])
	for i, k := range block {
		m.pad[i] = k ^ 0x5c
	}
	m.outer.Write(m.pad[:])
}

// sum finishes the message and returns the MAC, valid until the next use of m.
func (m *mac) sum() []byte {
	inner := m.inner.Sum(m.digest[:0])
	m.outer.Write(inner)
	return m.outer.Sum(m.digest[:0])
}
