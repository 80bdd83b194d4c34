package authlimit

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func setup(t *testing.T, cfg Config) (*Limiter, *testClock) {
	t.Helper()
	clock := &testClock{now: time.Date(2026, 4, 3, 14, 30, 0, 0, time.UTC)}
	cfg.Now = clock.Now
	return New(cfg), clock
}

func from(addr string) *http.Request {
	return &http.Request{RemoteAddr: addr}
}

// fail is one wrong credential from addr; it reports whether the limiter let it be checked.
func fail(l *Limiter, addr string) bool {
	a, _, ok := l.Begin(from(addr))
	a.Fail()
	return ok
}

func TestLimiter(t *testing.T) {
	t.Parallel()

	t.Run("FailuresBeyondBurstAreRefusedUntilATokenReturns", func(t *testing.T) {
		t.Parallel()
		l, clock := setup(t, Config{Burst: 3, Every: 10 * time.Second})
		for range 3 {
			require.True(t, fail(l, "203.0.113.7:5000"))
		}
		_, wait, ok := l.Begin(from("203.0.113.7:5001"))
		require.False(t, ok, "the fourth failure from the address is refused, whatever the port")
		require.Equal(t, 10*time.Second, wait)
		require.Equal(t, 10, RetryAfterSeconds(wait))

		require.True(t, fail(l, "198.51.100.1:80"), "another address has its own allowance")

		clock.Advance(4 * time.Second)
		_, wait, ok = l.Begin(from("203.0.113.7:5000"))
		require.False(t, ok)
		require.Equal(t, 6*time.Second, wait)
		clock.Advance(6 * time.Second)
		require.True(t, fail(l, "203.0.113.7:5000"), "one failure earned back after Every")
		_, _, ok = l.Begin(from("203.0.113.7:5000"))
		require.False(t, ok, "and only one")
	})

	t.Run("GoodCredentialsCostNothing", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t, Config{Burst: 2, Every: time.Hour})
		for range 100 {
			_, _, ok := l.Begin(from("203.0.113.7:1"))
			require.True(t, ok)
		}
		require.Zero(t, l.Tracked(), "an address without failures is not remembered")
	})

	t.Run("ConcurrentGoodCredentialsPass", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t, Config{Burst: 2, Every: time.Hour})
		require.True(t, fail(l, "203.0.113.7:1"), "one mistake, one token left")
		// 50 requests in flight at once from one address (a customer's server behind NAT), none
		// of them a failure: all are checked, however small the burst.
		for range 50 {
			_, _, ok := l.Begin(from("203.0.113.7:1"))
			require.True(t, ok)
		}
	})

	t.Run("ConcurrentGuessesBuyAProportionalLockOut", func(t *testing.T) {
		t.Parallel()
		l, clock := setup(t, Config{Burst: 5, Every: time.Minute})
		// 50 guesses begun together all pass Begin (no failure is known yet)...
		attempts := make([]Attempt, 50)
		for i := range attempts {
			a, _, ok := l.Begin(from("203.0.113.7:1"))
			require.True(t, ok)
			attempts[i] = a
		}
		for _, a := range attempts {
			a.Fail()
		}
		// ...and leave a debt of 45 tokens: 46 minutes until the next try, so over time the
		// address still guesses no faster than one per Every.
		_, wait, ok := l.Begin(from("203.0.113.7:1"))
		require.False(t, ok)
		require.Equal(t, 46*time.Minute, wait)
		clock.Advance(45 * time.Minute)
		_, _, ok = l.Begin(from("203.0.113.7:1"))
		require.False(t, ok)
		clock.Advance(time.Minute)
		_, _, ok = l.Begin(from("203.0.113.7:1"))
		require.True(t, ok)
	})

	t.Run("IPv6CountsBySlash64AndMappedIPv4AsIPv4", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t, Config{Burst: 1, Every: time.Hour})
		require.True(t, fail(l, "[2001:db8:1:2::1]:443"))
		require.False(t, fail(l, "[2001:db8:1:2:ffff::9]:443"), "the same /64")
		require.True(t, fail(l, "[2001:db8:1:3::1]:443"), "another /64")
		require.True(t, fail(l, "[::ffff:192.0.2.1]:1"))
		require.False(t, fail(l, "192.0.2.1:2"), "a v4-mapped address is the IPv4 address")
	})

	t.Run("MemoryIsBounded", func(t *testing.T) {
		t.Parallel()
		l, clock := setup(t, Config{Burst: 2, Every: time.Second, MaxAddresses: 100})
		for i := range 1000 {
			require.True(t, fail(l, fmt.Sprintf("10.0.%d.%d:1", i/256, i%256)))
			require.LessOrEqual(t, l.Tracked(), 100)
		}
		clock.Advance(2 * time.Second)
		fail(l, "192.0.2.1:1")
		require.Equal(t, 1, l.Tracked(), "idle entries (full again) are dropped")
	})

	t.Run("ForwardedHeadersAreNotTrusted", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t, Config{Burst: 1, Every: time.Hour})
		for i := range 3 {
			r := from("203.0.113.7:1")
			r.Header = http.Header{"X-Forwarded-For": {fmt.Sprintf("198.51.100.%d", i)}}
			a, _, ok := l.Begin(r)
			a.Fail()
			require.Equal(t, i == 0, ok)
		}
	})
}
