package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Started as fast as Rate allows, attempts never exceed Limit + RateBurst in any one second, and
// reach the limit over time.
func TestRateHoldsPerSecond(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1, 3, 10, 99, 250, 1000, 10000} {
		r := Rate{Limit: limit}
		start := time.Unix(1_700_000_000, 0)
		var starts []time.Time
		// Claims every 1 ms for 3 s, taking whatever is allowed.
		for ms := 0; ms < 3000; ms++ {
			now := start.Add(time.Duration(ms) * time.Millisecond)
			n := r.Allowed(now)
			for range n {
				starts = append(starts, now)
			}
			r.TAT = r.Take(now, n)
		}
		most, j := 0, 0
		for i := range starts {
			for j < len(starts) && starts[j].Sub(starts[i]) < time.Second {
				j++
			}
			most = max(most, j-i)
		}
		require.LessOrEqual(t, most, limit+RateBurst(limit), "limit %d", limit)
		require.GreaterOrEqual(t, len(starts), 3*limit-1, "limit %d", limit)
	}
}

// Next is the first time Allowed gives one again; no limit allows everything.
func TestRateNext(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	r := Rate{Limit: 10}
	require.Equal(t, 1, r.Allowed(now))
	r.TAT = r.Take(now, 1)
	require.Equal(t, 0, r.Allowed(now))
	require.Equal(t, now.Add(75*time.Millisecond), r.Next(), "a quarter interval early")
	require.Equal(t, 0, r.Allowed(r.Next().Add(-time.Microsecond)))
	require.Equal(t, 1, r.Allowed(r.Next()))
	require.Greater(t, Rate{}.Allowed(now), 1<<30)
	require.True(t, Rate{}.Next().IsZero())
}

// TakeOne takes one attempt when Allowed gives one, and otherwise says when, taking nothing; no
// limit takes nothing to keep.
func TestRateTakeOne(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	r := Rate{Limit: 10}
	tat, next := r.TakeOne(now)
	require.Equal(t, r.Take(now, 1), tat)
	require.True(t, next.IsZero())
	r.TAT = tat
	tat, next = r.TakeOne(now)
	require.Equal(t, r.TAT, tat, "nothing taken")
	require.Equal(t, r.Next(), next)
	tat, next = Rate{}.TakeOne(now)
	require.Zero(t, tat)
	require.True(t, next.IsZero())
}
