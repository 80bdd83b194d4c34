package delivery

import (
	"fmt"
	"strings"
	"time"
)

// RetryScheduleDefault is the retry schedule of SPEC §5 (--retry-schedule).
const RetryScheduleDefault = "30s,2m,15m,1h,4h"

// RetryPolicy is the retry schedule: Schedule[i] is the delay after the (i+1)-th failed attempt,
// counted from the end of that attempt; len(Schedule) is the number of retries. The zero value never
// retries. A RetryPolicy is a value and safe for concurrent use.
type RetryPolicy struct {
	Schedule []time.Duration
}

// ParseSchedule parses a comma-separated list of Go durations such as RetryScheduleDefault. Spaces
// around entries are ignored. It fails on an empty list, an empty entry, an unparsable entry and a
// delay that is not positive.
func ParseSchedule(s string) ([]time.Duration, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("retry schedule is empty; want durations such as %q", RetryScheduleDefault)
	}
	parts := strings.Split(s, ",")
	out := make([]time.Duration, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("retry schedule entry %d is empty", i+1)
		}
		d, err := time.ParseDuration(p)
		if err != nil {
			return nil, fmt.Errorf("retry schedule entry %d: %q is not a duration such as 30s or 2m", i+1, p)
		}
		if d <= 0 {
			return nil, fmt.Errorf("retry schedule entry %d: %q must be positive", i+1, p)
		}
		out = append(out, d)
	}
	return out, nil
}

// Next returns the delay before the next attempt after a failed attempt, given retries, the failures
// before this one since the schedule started (0 for the first failure), and reports whether there
// is a next attempt; when it is false the delivery has failed for good.
//
// retryAfter is the Retry-After of a 429 or 503 response (0 otherwise). It can lengthen the
// scheduled delay but never beyond the schedule's last delay, so that a receiver cannot park a
// delivery for days; nor does it shorten the schedule, which protects a struggling receiver.
func (p RetryPolicy) Next(retries int, retryAfter time.Duration) (time.Duration, bool) {
	if retries < 0 {
		retries = 0
	}
	if retries >= len(p.Schedule) {
		return 0, false
	}
	d := p.Schedule[retries]
	if retryAfter > d {
		d = max(d, min(retryAfter, p.Schedule[len(p.Schedule)-1]))
	}
	return d, true
}
