package postgres

import (
	"context"
	"fmt"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/proposal"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlconv"
)

const proposalCols = `id, account_id, name, client_name, client_email, requirements, currency, line_items,
	status, share_token, responded_at, revision_comment, created_at, updated_at`

func scanProposal(row scanner) (*proposal.Proposal, error) {
	var p proposal.Proposal
	var email, reqs, token, comment *string
	var items []byte
	var status string
	var responded *int64
	var created, updated int64
	if err := row.Scan(&p.ID, &p.AccountID, &p.Name, &p.ClientName, &email, &reqs, &p.Currency, &items,
		&status, &token, &responded, &comment, &created, &updated); err != nil {
		return nil, interpretError(err)
	}
	var err error
	if p.LineItems, err = sqlconv.DecodeLineItems(items); err != nil {
		return nil, fmt.Errorf("proposal %s: %w", p.ID, err)
	}
	p.ClientEmail, p.Requirements, p.ShareToken, p.RevisionComment = sqlconv.Deref(email), sqlconv.Deref(reqs), sqlconv.Deref(token), sqlconv.Deref(comment)
	p.Status = proposal.Status(status)
	if responded != nil {
		p.RespondedAt = sqlconv.FromMS(*responded)
	}
	p.CreatedAt, p.UpdatedAt = sqlconv.FromMS(created), sqlconv.FromMS(updated)
	return &p, nil
}

func (q *queries) ProposalGet(ctx context.Context, accountID, id string) (*proposal.Proposal, error) {
	return scanProposal(q.q.QueryRow(ctx, `SELECT `+proposalCols+` FROM proposals
		WHERE id = $1 AND account_id = $2`, id, accountID))
}

// ProposalGetForUpdate locks the row until the transaction ends: a concurrent read-modify-write of
// the same proposal waits here, then reads what this one wrote.
func (q *queries) ProposalGetForUpdate(ctx context.Context, accountID, id string) (*proposal.Proposal, error) {
	return scanProposal(q.q.QueryRow(ctx, `SELECT `+proposalCols+` FROM proposals
		WHERE id = $1 AND account_id = $2 FOR UPDATE`, id, accountID))
}

func (q *queries) ProposalGetByShareToken(ctx context.Context, token string) (*proposal.Proposal, error) {
	if token == "" {
		return nil, errs.ErrNotFound // "" is the absence of a token, never a token
	}
	return scanProposal(q.q.QueryRow(ctx, `SELECT `+proposalCols+` FROM proposals
		WHERE share_token = $1`, token))
}

// ProposalGetByShareTokenForUpdate locks the row, as ProposalGetForUpdate.
func (q *queries) ProposalGetByShareTokenForUpdate(ctx context.Context, token string) (*proposal.Proposal, error) {
	if token == "" {
		return nil, errs.ErrNotFound
	}
	return scanProposal(q.q.QueryRow(ctx, `SELECT `+proposalCols+` FROM proposals
		WHERE share_token = $1 FOR UPDATE`, token))
}

func (q *queries) ProposalList(ctx context.Context, p *store.ListParams) ([]*proposal.Proposal, error) {
	after, err := q.afterSeq(ctx, "proposals", p, "")
	if err != nil {
		return nil, err
	}
	rows, err := q.q.Query(ctx, `SELECT `+proposalCols+` FROM proposals
		WHERE account_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, p.AccountID, after, p.Limit)
	out, err := collect(rows, err, scanProposal)
	if err != nil {
		return nil, fmt.Errorf("list proposals: %w", err)
	}
	return out, nil
}

func (q *queries) ProposalInsert(ctx context.Context, p *proposal.Proposal) error {
	_, err := q.q.Exec(ctx, `INSERT INTO proposals (`+proposalCols+`, total_minor)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9, $10, $11, $12, $13, $14, $15)`,
		p.ID, p.AccountID, p.Name, p.ClientName, sqlconv.NullText(p.ClientEmail), sqlconv.NullText(p.Requirements), p.Currency,
		sqlconv.EncodeLineItems(p.LineItems), string(p.Status), sqlconv.NullText(p.ShareToken), sqlconv.NullMS(p.RespondedAt),
		sqlconv.NullText(p.RevisionComment), sqlconv.MS(p.CreatedAt), sqlconv.MS(p.UpdatedAt), int64(p.Total()))
	if err != nil {
		return fmt.Errorf("insert proposal: %w", interpretError(err))
	}
	return nil
}

func (q *queries) ProposalUpdate(ctx context.Context, p *proposal.Proposal) error {
	tag, err := q.q.Exec(ctx, `UPDATE proposals SET name = $1, client_name = $2, client_email = $3,
		requirements = $4, currency = $5, line_items = $6::text::jsonb, total_minor = $7, status = $8,
		share_token = $9, responded_at = $10, revision_comment = $11, updated_at = $12
		WHERE id = $13 AND account_id = $14`,
		p.Name, p.ClientName, sqlconv.NullText(p.ClientEmail), sqlconv.NullText(p.Requirements), p.Currency,
		sqlconv.EncodeLineItems(p.LineItems), int64(p.Total()), string(p.Status), sqlconv.NullText(p.ShareToken),
		sqlconv.NullMS(p.RespondedAt), sqlconv.NullText(p.RevisionComment), sqlconv.MS(p.UpdatedAt), p.ID, p.AccountID)
	if err != nil {
		return fmt.Errorf("update proposal: %w", interpretError(err))
	}
	if tag.RowsAffected() == 0 {
		return errs.ErrNotFound
	}
	return nil
}

// --- lead sessions ---

const leadSessionCols = `id, account_id, channel, channel_id, client_name, brief, status, created_at, updated_at`

func scanLeadSession(row scanner) (*proposal.LeadSession, error) {
	var l proposal.LeadSession
	var channel, status string
	var created, updated int64
	if err := row.Scan(&l.ID, &l.AccountID, &channel, &l.ChannelID, &l.ClientName, &l.Brief, &status,
		&created, &updated); err != nil {
		return nil, interpretError(err)
	}
	l.Channel, l.Status = proposal.Channel(channel), proposal.LeadStatus(status)
	l.CreatedAt, l.UpdatedAt = sqlconv.FromMS(created), sqlconv.FromMS(updated)
	return &l, nil
}

func (q *queries) LeadSessionGet(ctx context.Context, accountID, id string) (*proposal.LeadSession, error) {
	return scanLeadSession(q.q.QueryRow(ctx, `SELECT `+leadSessionCols+` FROM lead_sessions
		WHERE id = $1 AND account_id = $2`, id, accountID))
}

// LeadSessionGetForUpdate locks the row, as ProposalGetForUpdate.
func (q *queries) LeadSessionGetForUpdate(ctx context.Context, accountID, id string) (*proposal.LeadSession, error) {
	return scanLeadSession(q.q.QueryRow(ctx, `SELECT `+leadSessionCols+` FROM lead_sessions
		WHERE id = $1 AND account_id = $2 FOR UPDATE`, id, accountID))
}

func (q *queries) LeadSessionList(ctx context.Context, p *store.ListParams) ([]*proposal.LeadSession, error) {
	after, err := q.afterSeq(ctx, "lead_sessions", p, "")
	if err != nil {
		return nil, err
	}
	rows, err := q.q.Query(ctx, `SELECT `+leadSessionCols+` FROM lead_sessions
		WHERE account_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, p.AccountID, after, p.Limit)
	out, err := collect(rows, err, scanLeadSession)
	if err != nil {
		return nil, fmt.Errorf("list lead sessions: %w", err)
	}
	return out, nil
}

func (q *queries) LeadSessionInsert(ctx context.Context, l *proposal.LeadSession) error {
	_, err := q.q.Exec(ctx, `INSERT INTO lead_sessions (`+leadSessionCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		l.ID, l.AccountID, string(l.Channel), l.ChannelID, l.ClientName, l.Brief, string(l.Status),
		sqlconv.MS(l.CreatedAt), sqlconv.MS(l.UpdatedAt))
	if err != nil {
		return fmt.Errorf("insert lead session: %w", interpretError(err))
	}
	return nil
}

func (q *queries) LeadSessionUpdate(ctx context.Context, l *proposal.LeadSession) error {
	tag, err := q.q.Exec(ctx, `UPDATE lead_sessions SET client_name = $1, brief = $2, status = $3, updated_at = $4
		WHERE id = $5 AND account_id = $6`,
		l.ClientName, l.Brief, string(l.Status), sqlconv.MS(l.UpdatedAt), l.ID, l.AccountID)
	if err != nil {
		return fmt.Errorf("update lead session: %w", interpretError(err))
	}
	if tag.RowsAffected() == 0 {
		return errs.ErrNotFound
	}
	return nil
}
