package store

import (
	"context"

	"github.com/quikly/webhooks/internal/proposal"
)

// ProposalReader reads proposals and lead sessions. Every method is scoped to one account except
// ProposalGetByShareToken, whose token is itself the proof of access (the client's share link).
// An object of another account is errs.ErrNotFound, exactly like one that does not exist.
type ProposalReader interface {
	// ProposalGet returns the account's proposal id, or errs.ErrNotFound.
	ProposalGet(ctx context.Context, accountID, id string) (*proposal.Proposal, error)
	// ProposalGetByShareToken returns the proposal shared under token, whatever its account, or
	// errs.ErrNotFound.
	ProposalGetByShareToken(ctx context.Context, token string) (*proposal.Proposal, error)
	// ProposalList returns one page of the account's proposals, newest first. An After that is not
	// one of the account's proposals is a validation error on "cursor".
	ProposalList(ctx context.Context, p *ListParams) ([]*proposal.Proposal, error)

	// LeadSessionGet returns the account's lead session id, or errs.ErrNotFound.
	LeadSessionGet(ctx context.Context, accountID, id string) (*proposal.LeadSession, error)
	// LeadSessionList returns one page of the account's lead sessions, newest first, with the same
	// cursor rules as ProposalList.
	LeadSessionList(ctx context.Context, p *ListParams) ([]*proposal.LeadSession, error)
}

// ProposalWriter writes proposals and lead sessions. Use cases read, change and write an object in
// one transaction and publish its event in the same one, so the event always matches the row.
type ProposalWriter interface {
	// ProposalGetForUpdate is ProposalGet for a read-modify-write: it keeps concurrent transactions
	// from changing the proposal until this one ends (SELECT … FOR UPDATE where the database has
	// row locks; SQLite's single writer already serialises writing transactions). Without it two
	// clients answering at once could both see "shared" and both fire an event.
	ProposalGetForUpdate(ctx context.Context, accountID, id string) (*proposal.Proposal, error)
	// ProposalGetByShareTokenForUpdate is ProposalGetByShareToken with the lock of
	// ProposalGetForUpdate.
	ProposalGetByShareTokenForUpdate(ctx context.Context, token string) (*proposal.Proposal, error)
	// ProposalInsert stores a new proposal with every field of p.
	ProposalInsert(ctx context.Context, p *proposal.Proposal) error
	// ProposalUpdate stores every mutable field of p (all but ID, AccountID and CreatedAt); a
	// proposal that is not p.AccountID's is errs.ErrNotFound.
	ProposalUpdate(ctx context.Context, p *proposal.Proposal) error

	// LeadSessionGetForUpdate is LeadSessionGet with the lock of ProposalGetForUpdate.
	LeadSessionGetForUpdate(ctx context.Context, accountID, id string) (*proposal.LeadSession, error)
	// LeadSessionInsert stores a new lead session with every field of l.
	LeadSessionInsert(ctx context.Context, l *proposal.LeadSession) error
	// LeadSessionUpdate stores every mutable field of l (all but ID, AccountID, Channel, ChannelID
	// and CreatedAt); a lead session that is not l.AccountID's is errs.ErrNotFound.
	LeadSessionUpdate(ctx context.Context, l *proposal.LeadSession) error
}
