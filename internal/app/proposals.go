package app

import (
	"context"
	"time"

	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/proposal"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// The use cases of the event sources. Each state change reads its object, changes it through the
// domain, writes it and publishes its event inside one a.Store.Tx: the row and the event (and its
// deliveries) commit together or not at all, and the event's data is rendered from the very object
// that was written, so it always matches the stored row.

// published is what the publishes of one transaction leave for after it commits: the deliveries
// handed off to this process's dispatcher, and the webhooks given due ones, to wake it for.
type published struct {
	handoff *delivery.Handoff
	due     []string
}

// publishTx runs fn in one transaction, for it to publish events in (publish), then hands the
// dispatcher what they left for it.
func (a *App) publishTx(ctx context.Context, fn func(tx store.Tx, pub *published) error) error {
	pub := &published{}
	if a.Handoff != nil {
		pub.handoff = a.Handoff()
	}
	err := a.Store.Tx(ctx, func(tx store.Tx) error { return fn(tx, pub) })
	pub.handoff.Done(err)
	if err == nil && len(pub.due) > 0 {
		a.notify(pub.due...)
	}
	return err
}

// publish writes the event of eventType with data in tx, for publishTx.
func (a *App) publish(ctx context.Context, tx store.Tx, pub *published, accountID, eventType string, data any, now time.Time) error {
	_, ds, err := delivery.Publish(ctx, tx, pub.handoff, accountID, eventType, data, now)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.State == webhook.DeliveryPending && d.LockedUntil.IsZero() {
			pub.due = append(pub.due, d.WebhookID)
		}
	}
	return nil
}

// stamp returns the time of a change: a.Now() cut to the milliseconds the store keeps, so the object
// a use case returns is the object a later read returns.
func (a *App) stamp() time.Time { return a.Now().Truncate(time.Millisecond) }

// CreateProposal creates a draft proposal of the account and fires proposal.created. Invalid input
// is errs.Invalid naming every bad field, and stores nothing.
func (a *App) CreateProposal(ctx context.Context, accountID string, in proposal.ProposalCreate) (*proposal.Proposal, error) {
	now := a.stamp()
	p, err := proposal.NewProposal(accountID, in, now)
	if err != nil {
		return nil, err
	}
	err = a.insertAndPublish(ctx, accountID, webhook.ProposalCreated, p.EventData(a.BaseURL), now,
		func(tx store.Tx) error { return tx.ProposalInsert(ctx, p) })
	if err != nil {
		return nil, err
	}
	return p, nil
}

// insertAndPublish runs insert and publishes its event in one transaction.
func (a *App) insertAndPublish(ctx context.Context, accountID, eventType string, data any, now time.Time, insert func(tx store.Tx) error) error {
	return a.publishTx(ctx, func(tx store.Tx, pub *published) error {
		if err := insert(tx); err != nil {
			return err
		}
		return a.publish(ctx, tx, pub, accountID, eventType, data, now)
	})
}

// listByUUID returns one page of an account's objects with UUID ids, newest first; a cursor that
// cannot name such an object is refused before the store is asked.
func listByUUID[T any](ctx context.Context, accountID string, limit int, cursor string,
	list func(context.Context, *store.ListParams) ([]T, error), id func(T) string) (*Page[T], error) {
	p, err := listParams(accountID, limit, cursor)
	if err != nil {
		return nil, err
	}
	if p.After != "" && !proposal.ValidID(p.After) {
		return nil, errs.Field("cursor", "is not a cursor of this list")
	}
	items, err := list(ctx, p)
	if err != nil {
		return nil, err
	}
	return page(items, p.Limit-1, id), nil
}

// ListProposals returns one page of the account's proposals, newest first.
func (a *App) ListProposals(ctx context.Context, accountID string, limit int, cursor string) (*Page[*proposal.Proposal], error) {
	return listByUUID(ctx, accountID, limit, cursor, a.Store.ProposalList, func(p *proposal.Proposal) string { return p.ID })
}

// GetProposal returns one of the account's proposals; a malformed id, an unknown one and another
// account's are all errs.ErrNotFound.
func (a *App) GetProposal(ctx context.Context, accountID, id string) (*proposal.Proposal, error) {
	if !proposal.ValidID(id) {
		return nil, errs.ErrNotFound
	}
	return a.Store.ProposalGet(ctx, accountID, id)
}

// UpdateProposal changes the given fields of one of the account's proposals and fires
// proposal.updated when something actually changed (a request that changes nothing fires nothing).
// Status and share link stay as they are; an accepted or rejected proposal is errs.Conflict.
func (a *App) UpdateProposal(ctx context.Context, accountID, id string, in proposal.ProposalUpdate) (*proposal.Proposal, error) {
	return a.changeProposal(ctx, func(tx store.Tx) (*proposal.Proposal, error) {
		return getProposalForUpdate(ctx, tx, accountID, id)
	}, func(p *proposal.Proposal, now time.Time) (string, error) {
		changed, err := p.Apply(in, now)
		if err != nil || !changed {
			return "", err
		}
		return webhook.ProposalUpdated, nil
	})
}

// ShareProposal shares one of the account's proposals with its client and fires proposal.shared;
// the proposal's ShareURL is then the client's link. Sharing a shared proposal changes nothing and
// fires nothing; sharing after a revision request shares it again with the same link; an accepted
// or rejected proposal is errs.Conflict.
func (a *App) ShareProposal(ctx context.Context, accountID, id string) (*proposal.Proposal, error) {
	return a.changeProposal(ctx, func(tx store.Tx) (*proposal.Proposal, error) {
		return getProposalForUpdate(ctx, tx, accountID, id)
	}, func(p *proposal.Proposal, now time.Time) (string, error) {
		return p.Share("", now)
	})
}

// GetSharedProposal returns the proposal shared under token, for the client's share page. A
// malformed or unknown token is errs.ErrNotFound.
func (a *App) GetSharedProposal(ctx context.Context, token string) (*proposal.Proposal, error) {
	if !proposal.ValidShareToken(token) {
		return nil, errs.ErrNotFound
	}
	return a.Store.ProposalGetByShareToken(ctx, token)
}

// AnswerProposal records the client's answer to the proposal shared under token and fires
// proposal.accepted, proposal.rejected or proposal.revision_requested. comment is kept with
// proposal.RequestChanges only. A proposal that is not awaiting an answer (already answered, or
// changes requested and not yet shared again) is errs.Conflict with a message fit for the client; a
// malformed or unknown token is errs.ErrNotFound.
func (a *App) AnswerProposal(ctx context.Context, token string, answer proposal.Answer, comment string) (*proposal.Proposal, error) {
	if !proposal.ValidShareToken(token) {
		return nil, errs.ErrNotFound
	}
	return a.changeProposal(ctx, func(tx store.Tx) (*proposal.Proposal, error) {
		return tx.ProposalGetByShareTokenForUpdate(ctx, token)
	}, func(p *proposal.Proposal, now time.Time) (string, error) {
		return p.Answer(answer, comment, now)
	})
}

// getProposalForUpdate loads and locks a proposal, answering errs.ErrNotFound for a malformed id
// without a query.
func getProposalForUpdate(ctx context.Context, tx store.Tx, accountID, id string) (*proposal.Proposal, error) {
	if !proposal.ValidID(id) {
		return nil, errs.ErrNotFound
	}
	return tx.ProposalGetForUpdate(ctx, accountID, id)
}

// changeProposal is the read-modify-write of every proposal state change, in one transaction: load
// (and lock) the proposal, let change apply the domain rule and name the event to fire ("" for
// none: then nothing is written), write it and publish the event built from the written proposal.
func (a *App) changeProposal(ctx context.Context, load func(store.Tx) (*proposal.Proposal, error),
	change func(p *proposal.Proposal, now time.Time) (string, error)) (*proposal.Proposal, error) {
	var p *proposal.Proposal
	now := a.stamp()
	err := a.publishTx(ctx, func(tx store.Tx, pub *published) error {
		var err error
		if p, err = load(tx); err != nil {
			return err
		}
		event, err := change(p, now)
		if err != nil || event == "" {
			return err
		}
		if err := tx.ProposalUpdate(ctx, p); err != nil {
			return err
		}
		return a.publish(ctx, tx, pub, p.AccountID, event, p.EventData(a.BaseURL), now)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// CreateLeadSession creates a lead session of the account in status gathering_info and fires
// lead_session.created. Invalid input is errs.Invalid naming every bad field, and stores nothing.
func (a *App) CreateLeadSession(ctx context.Context, accountID string, in proposal.LeadSessionCreate) (*proposal.LeadSession, error) {
	now := a.stamp()
	l, err := proposal.NewLeadSession(accountID, in, now)
	if err != nil {
		return nil, err
	}
	err = a.insertAndPublish(ctx, accountID, webhook.LeadSessionCreated, l.EventData(), now,
		func(tx store.Tx) error { return tx.LeadSessionInsert(ctx, l) })
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ListLeadSessions returns one page of the account's lead sessions, newest first.
func (a *App) ListLeadSessions(ctx context.Context, accountID string, limit int, cursor string) (*Page[*proposal.LeadSession], error) {
	return listByUUID(ctx, accountID, limit, cursor, a.Store.LeadSessionList, func(l *proposal.LeadSession) string { return l.ID })
}

// GetLeadSession returns one of the account's lead sessions; a malformed id, an unknown one and
// another account's are all errs.ErrNotFound.
func (a *App) GetLeadSession(ctx context.Context, accountID, id string) (*proposal.LeadSession, error) {
	if !proposal.ValidID(id) {
		return nil, errs.ErrNotFound
	}
	return a.Store.LeadSessionGet(ctx, accountID, id)
}

// UpdateLeadSession changes the given fields of one of the account's lead sessions. It fires
// lead_session.updated only when the status changes; a change of client_name or brief alone is
// stored silently. A move the state machine forbids is errs.Conflict and changes nothing.
func (a *App) UpdateLeadSession(ctx context.Context, accountID, id string, in proposal.LeadSessionUpdate) (*proposal.LeadSession, error) {
	if !proposal.ValidID(id) {
		return nil, errs.ErrNotFound
	}
	var l *proposal.LeadSession
	now := a.stamp()
	err := a.publishTx(ctx, func(tx store.Tx, pub *published) error {
		var err error
		if l, err = tx.LeadSessionGetForUpdate(ctx, accountID, id); err != nil {
			return err
		}
		before := *l
		event, err := l.Apply(in, now)
		if err != nil || *l == before {
			return err
		}
		if err := tx.LeadSessionUpdate(ctx, l); err != nil {
			return err
		}
		if event == "" {
			return nil
		}
		return a.publish(ctx, tx, pub, accountID, event, l.EventData(), now)
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}
