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

func TestLimiter(t *testing.T) {
	t.Parallel()

	t.Run("FailuresBeyondBurstAreRefusedUntilATokenReturns", func(t *testing.T) {
		t.Parallel()
		l, clock := setup(t, Config{Burst: 3, Every: 10 * time.Second})
		for range 3 {
			_, _, ok := l.Begin(from("203.0.113.7:5000"))
			require.True(t, ok)
		}
		_, wait, ok := l.Begin(from("203.0.113.7:5001"))
		require.False(t, ok, "the fourth failure from the address is refused, whatever the port")
		require.Equal(t, 10*time.Second, wait)
		require.Equal(t, 10, RetryAfterSeconds(wait))

		_, _, ok = l.Begin(from("198.51.100.1:80"))
		require.True(t, ok, "another address has its own allowance")

		clock.Advance(4 * time.Second)
		_, wait, ok = l.Begin(from("203.0.113.7:5000"))
		require.False(t, ok)
		require.Equal(t, 6*time.Second, wait)
		clock.Advance(6 * time.Second)
		_, _, ok = l.Begin(from("203.0.113.7:5000"))
		require.True(t, ok, "one failure earned back after Every")
		_, _, ok = l.Begin(from("203.0.113.7:5000"))
		require.False(t, ok, "and only one")
	})

	t.Run("GoodCredentialsCostNothing", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t, Config{Burst: 2, Every: time.Hour})
		for range 100 {
			a, _, ok := l.Begin(from("203.0.113.7:1"))
			require.True(t, ok)
			a.Refund()
		}
		require.Zero(t, l.Tracked(), "an address without failures is not remembered")
	})

	t.Run("ConcurrentGuessesAreBoundedByTheBurst", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t, Config{Burst: 5, Every: time.Hour})
		var mu sync.Mutex
		admitted := 0
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if _, _, ok := l.Begin(from("203.0.113.7:1")); ok {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Equal(t, 5, admitted, "tokens are taken before the look-up, so in-flight guesses count")
	})

	t.Run("IPv6CountsBySlash64AndMappedIPv4AsIPv4", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t, Config{Burst: 1, Every: time.Hour})
		_, _, ok := l.Begin(from("[2001:db8:1:2::1]:443"))
		require.True(t, ok)
		_, _, ok = l.Begin(from("[2001:db8:1:2:ffff::9]:443"))
		require.False(t, ok, "the same /64")
		_, _, ok = l.Begin(from("[2001:db8:1:3::1]:443"))
		require.True(t, ok, "another /64")
		_, _, ok = l.Begin(from("[::ffff:192.0.2.1]:1"))
		require.True(t, ok)
		_, _, ok = l.Begin(from("192.0.2.1:2"))
		require.False(t, ok, "a v4-mapped address is the IPv4 address")
	})

	t.Run("MemoryIsBounded", func(t *testing.T) {
		t.Parallel()
		l, clock := setup(t, Config{Burst: 2, Every: time.Second, MaxAddresses: 100})
		for i := range 1000 {
			_, _, ok := l.Begin(from(fmt.Sprintf("10.0.%d.%d:1", i/256, i%256)))
			require.True(t, ok)
			require.LessOrEqual(t, l.Tracked(), 100)
		}
		clock.Advance(2 * time.Second)
		l.Begin(from("192.0.2.1:1"))
		require.Equal(t, 1, l.Tracked(), "idle entries (full again) are dropped")
	})

	t.Run("ForwardedHeadersAreNotTrusted", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t, Config{Burst: 1, Every: time.Hour})
		for i := range 3 {
			r := from("203.0.113.7:1")
			r.Header = http.Header{"X-Forwarded-For": {fmt.Sprintf("198.51.100.%d", i)}}
			_, _, ok := l.Begin(r)
			require.Equal(t, i == 0, ok)
		}
	})
}
