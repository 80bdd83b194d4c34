package delivery

import (
	"cmp"
	"slices"
	"time"

	"github.com/quikly/webhooks/internal/store"
)

// fairShare decides which webhooks get the free slots of one claim, and how many each: one slot at a
// time, round-robin across accounts first (the account served longest ago first), then across each
// account's webhooks (likewise). No account goes past perAccount deliveries held and no webhook past
// its cap: perWebhook, 1 while its circuit breaker is open, twice perWebhook (half of them claimed
// ahead, see Dispatcher.next) while it answers (answering: its latest attempt here succeeded; and no
// other process saw it fail) and has no rate limit, and no more than its rate limit allows at now (the claim checks that again against the webhook's row, which decides). So however many webhooks one account
// has, and however many of them hang, the others' due deliveries get slots in the very next claim.
//
// inflight counts this process's attempts in flight by webhook and by account, queued its deliveries
// claimed ahead by webhook; answering says which webhooks answer; served orders
// accounts and webhooks by when they last got a slot (smaller is longer ago; missing is never).
func fairShare(due []*store.DueWebhook, free, perAccount, perWebhook int, inflight *inflightCounts, queued map[string][]*store.ClaimedDelivery, answering map[string]bool, served map[string]uint64, now time.Time) []store.ClaimAllotment {
	if free <= 0 || len(due) == 0 {
		return nil
	}
	type hook struct {
		*store.DueWebhook
		room int // slots it may still take
		got  int
	}
	type account struct {
		id    string
		room  int
		hooks []*hook
		next  int // the hook to serve next, round-robin
	}
	byAccount := map[string]*account{}
	var accounts []*account
	for _, d := range due {
		limit := perWebhook
		switch {
		case d.BreakerOpen:
			limit = 1
		case answering[d.WebhookID] && !d.Failing && d.Rate.Limit == 0:
			// A webhook that answers, without a rate limit, gets as many again claimed ahead of
			// free slots: they start as its attempts end, without waiting for a claim transaction.
			limit = 2 * perWebhook
		}
		room := limit - inflight.hook[d.WebhookID] - len(queued[d.WebhookID])
		if d.Rate.Limit > 0 {
			room = min(room, d.Rate.Allowed(now))
		}
		if room <= 0 {
			continue
		}
		a := byAccount[d.AccountID]
		if a == nil {
			a = &account{id: d.AccountID, room: perAccount - inflight.account[d.AccountID]}
			if a.room <= 0 {
				continue
			}
			byAccount[d.AccountID] = a
			accounts = append(accounts, a)
		}
		a.hooks = append(a.hooks, &hook{DueWebhook: d, room: room})
	}
	byServed := func(a, b string) int { return cmp.Or(cmp.Compare(served[a], served[b]), cmp.Compare(a, b)) }
	slices.SortFunc(accounts, func(a, b *account) int { return byServed(a.id, b.id) })
	for _, a := range accounts {
		slices.SortFunc(a.hooks, func(x, y *hook) int { return byServed(x.WebhookID, y.WebhookID) })
	}

	var out []store.ClaimAllotment
	for free > 0 {
		progress := false
		for _, a := range accounts {
			if free == 0 {
				break
			}
			if a.room == 0 {
				continue
			}
			// The account's next webhook with room, round-robin.
			for range a.hooks {
				h := a.hooks[a.next]
				a.next = (a.next + 1) % len(a.hooks)
				if h.room > 0 {
					h.room--
					h.got++
					a.room--
					free--
					progress = true
					break
				}
			}
		}
		if !progress {
			break
		}
	}
	for _, a := range accounts {
		for _, h := range a.hooks {
			if h.got > 0 {
				out = append(out, store.ClaimAllotment{WebhookID: h.WebhookID, Limit: h.got, Probe: h.BreakerOpen,
					RateLimited: h.Rate.Limit > 0})
			}
		}
	}
	return out
}

// inflightCounts counts one process's attempts in flight, by webhook and by account.
type inflightCounts struct {
	total   int
	hook    map[string]int
	account map[string]int
}

func newInflightCounts() *inflightCounts {
	return &inflightCounts{hook: map[string]int{}, account: map[string]int{}}
}

func (c *inflightCounts) add(webhookID, accountID string, n int) {
	c.total += n
	if c.hook[webhookID] += n; c.hook[webhookID] <= 0 {
		delete(c.hook, webhookID)
	}
	if c.account[accountID] += n; c.account[accountID] <= 0 {
		delete(c.account, accountID)
	}
}
