package delivery

import (
	"cmp"
	"slices"

	"github.com/quikly/webhooks/internal/store"
)

// fairShare decides which webhooks get the free slots of one claim, and how many each: one slot at a
// time, round-robin across accounts first (the account served longest ago first), then across each
// account's webhooks (likewise). No account goes past perAccount attempts in flight and no webhook past
// its cap: perWebhook, or 1 while its circuit breaker is open. So however many webhooks one account
// has, and however many of them hang, the others' due deliveries get slots in the very next claim.
//
// inflight counts this process's attempts in flight by webhook and by account; served orders
// accounts and webhooks by when they last got a slot (smaller is longer ago; missing is never).
func fairShare(due []*store.DueWebhook, free, perAccount, perWebhook int, inflight *inflightCounts, served map[string]uint64) []store.ClaimAllotment {
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
		if d.BreakerOpen {
			limit = 1
		}
		room := limit - inflight.hook[d.WebhookID]
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
				out = append(out, store.ClaimAllotment{WebhookID: h.WebhookID, Limit: h.got, Probe: h.BreakerOpen})
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
