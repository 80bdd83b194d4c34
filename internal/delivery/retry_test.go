package delivery

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseSchedule(t *testing.T) {
	t.Parallel()

	t.Run("Default", func(t *testing.T) {
		t.Parallel()
		got, err := ParseSchedule(RetryScheduleDefault)
		require.NoError(t, err)
		require.Equal(t, []time.Duration{30 * time.Second, 2 * time.Minute, 15 * time.Minute, time.Hour, 4 * time.Hour}, got)
	})

	t.Run("ScaledDownAndSpaces", func(t *testing.T) {
		t.Parallel()
		got, err := ParseSchedule(" 100ms, 200ms ,1s ")
		require.NoError(t, err)
		require.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, time.Second}, got)
	})

	t.Run("SingleEntry", func(t *testing.T) {
		t.Parallel()
		got, err := ParseSchedule("1m30s")
		require.NoError(t, err)
		require.Equal(t, []time.Duration{90 * time.Second}, got)
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		for in, want := range map[string]string{
			"":             "retry schedule is empty",
			"  ":           "retry schedule is empty",
			"30s,,2m":      "entry 2 is empty",
			"30s,":         "entry 2 is empty",
			",30s":         "entry 1 is empty",
			"30s,soon":     `entry 2: "soon" is not a duration`,
			"30":           `entry 1: "30" is not a duration`,
			"30s,0s":       `entry 2: "0s" must be positive`,
			"-1m":          `entry 1: "-1m" must be positive`,
			"30s;2m":       `entry 1: "30s;2m" is not a duration`,
			"1h,99999999h": `entry 2: "99999999h" is not a duration`,
		} {
			_, err := ParseSchedule(in)
			require.ErrorContains(t, err, want, "input %q", in)
		}
	})
}

func TestRetryPolicyNext(t *testing.T) {
	t.Parallel()

	setup := func(t *testing.T) RetryPolicy {
		t.Helper()
		s, err := ParseSchedule(RetryScheduleDefault)
		require.NoError(t, err)
		return RetryPolicy{Schedule: s}
	}

	t.Run("FollowsSchedule", func(t *testing.T) {
		t.Parallel()
		p := setup(t)
		for retries, want := range p.Schedule {
			d, ok := p.Next(retries, 0)
			require.True(t, ok)
			require.Equal(t, want, d)
		}
	})

	t.Run("StopsAfterLastRetry", func(t *testing.T) {
		t.Parallel()
		p := setup(t)
		d, ok := p.Next(len(p.Schedule), 0)
		require.False(t, ok)
		require.Zero(t, d)
		_, ok = p.Next(100, time.Hour)
		require.False(t, ok)
	})

	t.Run("NegativeRetriesCountAsFirstFailure", func(t *testing.T) {
		t.Parallel()
		d, ok := setup(t).Next(-1, 0)
		require.True(t, ok)
		require.Equal(t, 30*time.Second, d)
	})

	t.Run("RetryAfterLengthensDelay", func(t *testing.T) {
		t.Parallel()
		d, ok := setup(t).Next(0, 5*time.Minute)
		require.True(t, ok)
		require.Equal(t, 5*time.Minute, d)
	})

	t.Run("RetryAfterNeverShortensDelay", func(t *testing.T) {
		t.Parallel()
		d, ok := setup(t).Next(3, time.Second)
		require.True(t, ok)
		require.Equal(t, time.Hour, d)
	})

	t.Run("RetryAfterCappedAtLastDelay", func(t *testing.T) {
		t.Parallel()
		d, ok := setup(t).Next(0, 72*time.Hour)
		require.True(t, ok)
		require.Equal(t, 4*time.Hour, d)
	})

	t.Run("CapKeepsLongerScheduledDelay", func(t *testing.T) {
		t.Parallel()
		// A schedule that shrinks: the cap must not cut the scheduled delay itself.
		p := RetryPolicy{Schedule: []time.Duration{time.Hour, time.Minute}}
		d, ok := p.Next(0, 2*time.Hour)
		require.True(t, ok)
		require.Equal(t, time.Hour, d)
	})

	t.Run("ZeroValueNeverRetries", func(t *testing.T) {
		t.Parallel()
		_, ok := RetryPolicy{}.Next(0, time.Minute)
		require.False(t, ok)
	})
}
