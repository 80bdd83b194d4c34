package store

import (
	"math"
	"time"
)

// Rate is a webhook's rate limit (SPEC §12) as its row keeps it, for a generic cell rate algorithm
// (GCRA): Limit attempts started per second (0: none), and TAT, the theoretical arrival time of the
// next attempt in Unix microseconds. Every claim, in any process, reads and advances it in its own
// transaction, so the budget is shared by all of them.
//
// An attempt may start up to a tolerance before its theoretical time: RateBurst(Limit)-1 intervals
// (so that a busy webhook need not be claimed once per attempt) and a quarter of an interval more (so
// that a claim a little late, as timers are, does not lose its lateness). So over any second at most
// Limit + RateBurst(Limit) attempts start: one over the limit for limits under 200, 1% above for
// higher ones; and that bound still holds at the receiver while the attempts' start delays vary by
// less than three quarters of an interval.
type Rate struct {
	Limit int
	TAT   int64
}

// RateBurst is how many attempts a rate-limited webhook may start at once: 10 ms worth, at least 1.
func RateBurst(limit int) int { return max(1, limit/100) }

// interval is the time between two attempts at the limit, in microseconds.
func (r Rate) interval() float64 { return 1e6 / float64(r.Limit) }

// tolerance is how long before its theoretical time an attempt may start, in microseconds.
func (r Rate) tolerance() float64 { return (float64(RateBurst(r.Limit)-1) + 0.25) * r.interval() }

// Allowed returns how many attempts may start at now; with no limit, math.MaxInt.
func (r Rate) Allowed(now time.Time) int {
	if r.Limit <= 0 {
		return math.MaxInt
	}
	t := now.UnixMicro()
	// The difference first, in integers: microseconds since 1970 are too many for a float64 to keep
	// a fraction of an interval.
	room := float64(t-max(r.TAT, t)) + r.tolerance() + r.interval()
	return max(0, int(math.Floor(room/r.interval()+1e-9)))
}

// Take returns the TAT after n attempts start at now.
func (r Rate) Take(now time.Time, n int) int64 {
	if r.Limit <= 0 || n <= 0 {
		return r.TAT
	}
	return max(r.TAT, now.UnixMicro()) + int64(math.Ceil(float64(n)*r.interval()))
}

// TakeOne starts one attempt at now if the limit allows it: it returns the TAT after it and the zero
// time. Otherwise it returns the TAT unchanged and when one may start.
func (r Rate) TakeOne(now time.Time) (tat int64, next time.Time) {
	if r.Allowed(now) == 0 {
		return r.TAT, r.Next()
	}
	return r.Take(now, 1), time.Time{}
}

// Next returns the earliest time at which one attempt may start (zero with no limit).
func (r Rate) Next() time.Time {
	if r.Limit <= 0 {
		return time.Time{}
	}
	return time.UnixMicro(r.TAT - int64(r.tolerance()))
}
