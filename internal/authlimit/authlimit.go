// Package authlimit limits failed authentications per client address, so that nobody can try API
// keys (or console sign-ins) faster than a person could type them.
package authlimit

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Defaults of Config.
const (
	// BurstDefault failures are allowed at once from one address...
	BurstDefault = 20
	// ...and one more every EveryDefault after that: about 20 a minute. A person who mistypes a key
	// never meets the limit; guessing 95-bit keys at that pace is hopeless anyway, and the database
	// is spared the look-ups.
	EveryDefault = 3 * time.Second
	// MaxAddressesDefault bounds the memory: an entry is a few dozen bytes.
	MaxAddressesDefault = 100_000
)

// Config configures New. The zero value is usable.
type Config struct {
	// Burst is how many failures an address may have before it is limited. Defaults to BurstDefault.
	Burst int
	// Every is how often an address earns back one failure. Defaults to EveryDefault.
	Every time.Duration
	// MaxAddresses is the most addresses tracked at once. Defaults to MaxAddressesDefault.
	MaxAddresses int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.Burst <= 0 {
		c.Burst = BurstDefault
	}
	if c.Every <= 0 {
		c.Every = EveryDefault
	}
	if c.MaxAddresses <= 0 {
		c.MaxAddresses = MaxAddressesDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Limiter is a token bucket per client address, spent by failed authentications. An address whose
// bucket is empty is refused before its credentials are even looked at, good ones included, until
// it earns a token back: like GitHub's or Stripe's brief lock-out, this keeps the look-ups bounded
// and tells a guesser nothing about which keys exist. Only addresses with failures are tracked, and
// an entry whose bucket is full again is dropped, so memory stays bounded. Safe for concurrent use.
//
// A failure spends its token when it is known, and the bucket may go into debt: guesses sent
// concurrently, which all passed Begin while the bucket still held a token, buy a lock-out as long
// as their number, so the rate of guesses over time stays bounded. Good credentials spend nothing, so
// any number of concurrent requests with a good key from one address (a customer's server behind
// one NAT address) pass.
type Limiter struct {
	cfg       Config
	mu        sync.Mutex
	addrs     map[netip.Prefix]*bucket
	lastSweep time.Time
}

// bucket holds tokens as of at; below zero, the debt of concurrent failures.
type bucket struct {
	tokens float64
	at     time.Time
}

// New returns a Limiter.
func New(cfg Config) *Limiter {
	return &Limiter{cfg: cfg.WithDefaults(), addrs: map[netip.Prefix]*bucket{}}
}

// Attempt is one authentication in progress, from Begin.
type Attempt struct {
	l    *Limiter
	addr netip.Prefix
}

// Begin is called before a credential from r is checked. When the client's address has used up its
// failures it returns ok false and how long until it may try again; otherwise the caller checks the
// credential and calls Fail if it was wrong (only failures count: not good credentials, nor a check
// that failed on our side).
func (l *Limiter) Begin(r *http.Request) (a Attempt, retryAfter time.Duration, ok bool) {
	addr := ClientAddress(r)
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.addrs[addr]
	if b == nil { // no failures: nothing to check
		return Attempt{l: l, addr: addr}, 0, true
	}
	b.refill(now, l.cfg)
	if b.tokens < 1 {
		wait := time.Duration((1 - b.tokens) * float64(l.cfg.Every))
		return Attempt{}, wait, false
	}
	return Attempt{l: l, addr: addr}, 0, true
}

// Fail spends a token of the attempt's address: its credential was wrong.
func (a Attempt) Fail() {
	if a.l == nil {
		return
	}
	now := a.l.cfg.Now()
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	a.l.sweep(now)
	b := a.l.addrs[a.addr]
	if b == nil {
		b = &bucket{tokens: float64(a.l.cfg.Burst), at: now}
		a.l.addrs[a.addr] = b
	}
	b.refill(now, a.l.cfg)
	b.tokens--
}

func (b *bucket) refill(now time.Time, cfg Config) {
	if now.After(b.at) {
		b.tokens = min(b.tokens+float64(now.Sub(b.at))/float64(cfg.Every), float64(cfg.Burst))
		b.at = now
	}
}

// sweep drops the entries whose buckets are full again (they mean nothing any more), at most once a
// refill period, or at once when the map is at its bound; if it is still at its bound, it drops
// arbitrary entries, which gives those addresses their failures back: better than growing without
// limit or refusing newcomers.
func (l *Limiter) sweep(now time.Time) {
	full := len(l.addrs) >= l.cfg.MaxAddresses
	if !full && now.Sub(l.lastSweep) < l.cfg.Every {
		return
	}
	l.lastSweep = now
	for addr, b := range l.addrs {
		b.refill(now, l.cfg)
		if b.tokens >= float64(l.cfg.Burst) {
			delete(l.addrs, addr)
		}
	}
	for addr := range l.addrs {
		if len(l.addrs) < l.cfg.MaxAddresses {
			break
		}
		delete(l.addrs, addr)
	}
}

// Tracked returns how many addresses the limiter holds (for tests of its memory bound).
func (l *Limiter) Tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}

// ClientAddress returns the address that r's failures are counted against: the connection's remote
// IP, because X-Forwarded-For and the like are written by the client unless a trusted proxy
// overwrites them. An IPv6 client is counted by its /64, the block one subscriber gets, so that it
// cannot get a fresh allowance per address.
func ClientAddress(r *http.Request) netip.Prefix {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{} // not an IP (e.g. a unix socket): one shared bucket
	}
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// RetryAfterSeconds formats d for a Retry-After header: whole seconds, rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
