package delivery

import (
	"cmp"
	"slices"
	"time"

	"github.com/quikly/webhooks/internal/store"
)

// share is what one claim's fair share is decided from.
type share struct {
	due                    []*store.DueWebhook
	free                   int // slots of this claim
	perAccount, perWebhook int
	// inflight counts this process's attempts in flight by webhook and by account, queued its
	// deliveries claimed ahead by webhook.
	inflight *inflightCounts
	queued   map[string][]*store.ClaimedDelivery
	// answering holds the webhooks whose latest attempt here succeeded (see answers).
	answering map[string]bool
	// unanswered is how many attempts may start to webhooks that do not answer (see answers); less
	// than 0 is no bound.
	unanswered int
	// served orders accounts and webhooks by when they last got a slot (smaller is longer ago;
	// missing is never).
	served map[string]uint64
	now    time.Time
}

// answers reports whether d answers: its latest attempt in this process succeeded and no other
// process saw it fail since.
func answers(d *store.DueWebhook, answering map[string]bool) bool {
	return answering[d.WebhookID] && !d.Failing
}

// fairShare decides which webhooks get the free slots of one claim, and how many each: one slot at a
// time, round-robin across accounts first (the account served longest ago first), then across each
// account's webhooks (likewise). No account goes past perAccount deliveries held and no webhook past
// its cap: perWebhook, 1 while its circuit breaker is open, twice perWebhook (half of them claimed
// ahead, see Dispatcher.next) while it answers and has no rate limit, and no more than its rate limit
// allows at now (the claim checks that again against the webhook's row, which decides). Webhooks that
// do not answer share s.unanswered slots between them, in the same order. So however many webhooks
// one account has, and however many of them hang, the others' due deliveries get slots in the very
// next claim. It also reports whether a webhook that does not answer went without a slot it had room
// for because s.unanswered ran out.
func fairShare(s *share) (out []store.ClaimAllotment, starved bool) {
	due, free := s.due, s.free
	if free <= 0 || len(due) == 0 {
		return nil, false
	}
	type hook struct {
		*store.DueWebhook
		room    int // slots it may still take
		got     int
		answers bool
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
		limit := s.perWebhook
		ok := answers(d, s.answering)
		switch {
		case d.BreakerOpen:
			limit = 1
		case ok && d.Rate.Limit == 0:
			// A webhook that answers, without a rate limit, gets as many again claimed ahead of
			// free slots: they start as its attempts end, without waiting for a claim transaction.
			limit = 2 * s.perWebhook
		}
		room := limit - s.inflight.hook[d.WebhookID] - len(s.queued[d.WebhookID])
		if d.Rate.Limit > 0 {
			room = min(room, d.Rate.Allowed(s.now))
		}
		if room <= 0 {
			continue
		}
		a := byAccount[d.AccountID]
		if a == nil {
			a = &account{id: d.AccountID, room: s.perAccount - s.inflight.account[d.AccountID]}
			if a.room <= 0 {
				continue
			}
			byAccount[d.AccountID] = a
			accounts = append(accounts, a)
		}
		a.hooks = append(a.hooks, &hook{DueWebhook: d, room: room, answers: ok})
	}
	byServed := func(a, b string) int { return cmp.Or(cmp.Compare(s.served[a], s.served[b]), cmp.Compare(a, b)) }
	slices.SortFunc(accounts, func(a, b *account) int { return byServed(a.id, b.id) })
	for _, a := range accounts {
		slices.SortFunc(a.hooks, func(x, y *hook) int { return byServed(x.WebhookID, y.WebhookID) })
	}

	unanswered := s.unanswered
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
				if h.room > 0 && !h.answers && unanswered == 0 {
					starved = true
					continue
				}
				if h.room > 0 {
					if !h.answers && unanswered > 0 {
						unanswered--
					}
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
	return out, starved
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

// held is n slots of a webhook of an account.
type held struct {
	webhookID, accountID string
	n                    int
}

// hold counts the slots of hs in flight (sign 1) or no longer (sign -1).
func (c *inflightCounts) hold(hs []held, sign int) {
	for _, h := range hs {
		c.add(h.webhookID, h.accountID, sign*h.n)
	}
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
