package delivery

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store"
)

func dueHooks(account string, n int) []*store.DueWebhook {
	var out []*store.DueWebhook
	for i := range n {
		out = append(out, &store.DueWebhook{WebhookID: fmt.Sprintf("%s-wh%02d", account, i), AccountID: account})
	}
	return out
}

func allotted(as []store.ClaimAllotment) (byHook, byAccount map[string]int) {
	byHook, byAccount = map[string]int{}, map[string]int{}
	for _, a := range as {
		byHook[a.WebhookID] += a.Limit
		byAccount[a.WebhookID[:len(a.WebhookID)-5]] += a.Limit
	}
	return byHook, byAccount
}

// unpaced shares s with no bound on the attempts to webhooks that do not answer.
func unpaced(t testing.TB, s share) []store.ClaimAllotment {
	t.Helper()
	s.unanswered = -1
	if s.inflight == nil {
		s.inflight = newInflightCounts()
	}
	out, starved := fairShare(&s)
	require.False(t, starved, "nothing is paced")
	return out
}

func TestFairShare(t *testing.T) {
	t.Parallel()

	t.Run("AccountsFirstThenWebhooks", func(t *testing.T) {
		t.Parallel()
		// One account with 50 webhooks, another with one: 10 slots split 5/5 across the accounts,
		// however many webhooks the first has.
		due := append(dueHooks("noisy", 50), dueHooks("quiet", 1)...)
		_, byAccount := allotted(unpaced(t, share{due: due, free: 10, perAccount: 1000, perWebhook: 16}))
		require.Equal(t, map[string]int{"noisy": 5, "quiet": 5}, byAccount)
	})

	t.Run("CapsHold", func(t *testing.T) {
		t.Parallel()
		in := newInflightCounts()
		in.add("quiet-wh00", "quiet", 5)
		in.add("noisy-wh00", "noisy", 3)
		due := append(dueHooks("noisy", 3), dueHooks("quiet", 1)...)
		due[0].BreakerOpen = true
		byHook, byAccount := allotted(unpaced(t, share{due: due, free: 100, perAccount: 6, perWebhook: 6, inflight: in}))
		require.Equal(t, 1, byHook["quiet-wh00"], "per-webhook cap: 6 with 5 in flight")
		require.Zero(t, byHook["noisy-wh00"], "breaker open with attempts in flight: no more")
		require.Equal(t, 3, byAccount["noisy"], "per-account cap: 6 with 3 in flight")
	})

	t.Run("BreakerOpenGetsOneProbe", func(t *testing.T) {
		t.Parallel()
		due := dueHooks("a", 1)
		due[0].BreakerOpen = true
		got := unpaced(t, share{due: due, free: 100, perAccount: 100, perWebhook: 16})
		require.Equal(t, []store.ClaimAllotment{{WebhookID: "a-wh00", Limit: 1, Probe: true}}, got)
	})

	t.Run("LongestUnservedFirst", func(t *testing.T) {
		t.Parallel()
		due := append(dueHooks("a", 2), dueHooks("b", 2)...)
		served := map[string]uint64{"a": 9, "a-wh00": 9, "a-wh01": 8, "b": 5, "b-wh00": 1, "b-wh01": 4}
		// One slot: account b was served longest ago, and its webhook wh00 within it.
		require.Equal(t, []store.ClaimAllotment{{WebhookID: "b-wh00", Limit: 1}},
			unpaced(t, share{due: due, free: 1, perAccount: 100, perWebhook: 16, served: served}))
		// Three: b, a, b — and a's longest unserved webhook is wh01.
		byHook, _ := allotted(unpaced(t, share{due: due, free: 3, perAccount: 100, perWebhook: 16, served: served}))
		require.Equal(t, map[string]int{"b-wh00": 1, "b-wh01": 1, "a-wh01": 1}, byHook)
	})

	t.Run("NothingFree", func(t *testing.T) {
		t.Parallel()
		require.Empty(t, unpaced(t, share{due: dueHooks("a", 3), free: 0, perAccount: 100, perWebhook: 16}))
	})
}

// A rate-limited webhook gets no more slots than its rate allows now, and the allotment says it is
// rate-limited so that the claim checks the webhook's row; others are unaffected.
func TestFairShareRate(t *testing.T) {
	now := time.Unix(1000, 0)
	due := dueHooks("a", 2)
	due[0].Rate = store.Rate{Limit: 500}                                       // a burst of 5 now
	due[1].Rate = store.Rate{Limit: 10, TAT: now.Add(time.Second).UnixMicro()} // nothing until then
	got := unpaced(t, share{due: due, free: 100, perAccount: 100, perWebhook: 16, now: now})
	require.Equal(t, []store.ClaimAllotment{{WebhookID: due[0].WebhookID, Limit: 5, RateLimited: true}}, got)
}

// A webhook that answers, without a rate limit, may hold twice its cap: its attempts in flight and as
// many claimed ahead. One that has not answered yet, a failing one, or one with its breaker open, gets
// no more than its cap (one while the breaker is open), and what it already holds counts.
func TestFairShareClaimsAheadForHealthyWebhooks(t *testing.T) {
	due := dueHooks("a", 5)
	due[1].Failing = true // another process saw it fail
	due[2].Failing, due[2].BreakerOpen = true, true
	in := newInflightCounts()
	in.add(due[3].WebhookID, "a", 16)
	queued := map[string][]*store.ClaimedDelivery{due[3].WebhookID: make([]*store.ClaimedDelivery, 10)}
	answering := map[string]bool{due[0].WebhookID: true, due[1].WebhookID: true, due[2].WebhookID: true, due[3].WebhookID: true}
	byHook, _ := allotted(unpaced(t, share{due: due, free: 1000, perAccount: 1000, perWebhook: 16, inflight: in, queued: queued, answering: answering}))
	require.Equal(t, map[string]int{
		due[0].WebhookID: 32, // answers: its slots and as many ahead
		due[1].WebhookID: 16,
		due[2].WebhookID: 1,
		due[3].WebhookID: 6,  // 32 less the 16 in flight and 10 ahead
		due[4].WebhookID: 16, // never answered here: no more than its slots
	}, byHook)
}

// Webhooks that do not answer share the paced slots, round-robin across accounts like the rest, and
// the share says when one went without; a webhook that answers is not held back by the pace.
func TestFairSharePacesWebhooksThatDoNotAnswer(t *testing.T) {
	due := append(dueHooks("noisy", 10), dueHooks("quiet", 2)...)
	answering := map[string]bool{"quiet-wh00": true}
	s := &share{due: due, free: 100, perAccount: 1000, perWebhook: 16, inflight: newInflightCounts(),
		answering: answering, unanswered: 3}
	got, starved := fairShare(s)
	byHook, byAccount := allotted(got)
	require.True(t, starved, "nine of noisy's webhooks went without")
	require.Equal(t, 2, byAccount["noisy"], "two of the three paced slots: noisy, quiet, noisy")
	require.Equal(t, 1, byHook["quiet-wh01"], "quiet's new webhook gets its turn")
	require.Equal(t, 32, byHook["quiet-wh00"], "the webhook that answers: its slots and as many ahead")

	s.unanswered = 100
	got, starved = fairShare(s)
	_, byAccount = allotted(got)
	require.False(t, starved)
	require.Equal(t, 100, byAccount["noisy"]+byAccount["quiet"], "every free slot, unpaced")
}
