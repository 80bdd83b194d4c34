package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/proposal"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlconv"
)

const proposalCols = `id, account_id, name, client_name, client_email, requirements, currency, line_items,
	status, share_token, responded_at, revision_comment, created_at, updated_at`

func scanProposal(row sqlconv.Scanner) (*proposal.Proposal, error) {
	var p proposal.Proposal
	var email, reqs, token, comment sql.NullString
	var items, status string
	var responded sql.NullInt64
	var created, updated int64
	if err := row.Scan(&p.ID, &p.AccountID, &p.Name, &p.ClientName, &email, &reqs, &p.Currency, &items,
		&status, &token, &responded, &comment, &created, &updated); err != nil {
		return nil, interpretError(err)
	}
	var err error
	if p.LineItems, err = sqlconv.DecodeLineItems([]byte(items)); err != nil {
		return nil, fmt.Errorf("proposal %s: %w", p.ID, err)
	}
	p.ClientEmail, p.Requirements, p.ShareToken, p.RevisionComment = email.String, reqs.String, token.String, comment.String
	p.Status = proposal.Status(status)
	p.RespondedAt, p.CreatedAt, p.UpdatedAt = sqlconv.FromMS(responded.Int64), sqlconv.FromMS(created), sqlconv.FromMS(updated)
	return &p, nil
}

func (q *queries) ProposalGet(ctx context.Context, accountID, id string) (*proposal.Proposal, error) {
	return scanProposal(q.queryRow(ctx, `SELECT `+proposalCols+` FROM proposals
		WHERE id = ? AND account_id = ?`, id, accountID))
}

// ProposalGetForUpdate needs no lock: the transaction runs on the single writer connection, so no
// other writer can change the row before it commits.
func (q *queries) ProposalGetForUpdate(ctx context.Context, accountID, id string) (*proposal.Proposal, error) {
	return q.ProposalGet(ctx, accountID, id)
}

func (q *queries) ProposalGetByShareToken(ctx context.Context, token string) (*proposal.Proposal, error) {
	if token == "" {
		return nil, errs.ErrNotFound // "" is the absence of a token, never a token
	}
	return scanProposal(q.queryRow(ctx, `SELECT `+proposalCols+` FROM proposals
		WHERE share_token = ?`, token))
}

// ProposalGetByShareTokenForUpdate needs no lock, as ProposalGetForUpdate.
func (q *queries) ProposalGetByShareTokenForUpdate(ctx context.Context, token string) (*proposal.Proposal, error) {
	return q.ProposalGetByShareToken(ctx, token)
}

func (q *queries) ProposalList(ctx context.Context, p *store.ListParams) ([]*proposal.Proposal, error) {
	after, err := q.afterSeq(ctx, "proposals", p, "")
	if err != nil {
		return nil, err
	}
	rows, err := q.query(ctx, `SELECT `+proposalCols+` FROM proposals
		WHERE account_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, p.AccountID, after, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list proposals: %w", err)
	}
	return collect(rows, scanProposal)
}

func (q *queries) ProposalInsert(ctx context.Context, p *proposal.Proposal) error {
	_, err := q.exec(ctx, `INSERT INTO proposals (`+proposalCols+`, total_minor)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.AccountID, p.Name, p.ClientName, sqlconv.NullText(p.ClientEmail), sqlconv.NullText(p.Requirements), p.Currency,
		sqlconv.EncodeLineItems(p.LineItems), string(p.Status), sqlconv.NullText(p.ShareToken), sqlconv.NullMS(p.RespondedAt),
		sqlconv.NullText(p.RevisionComment), sqlconv.MS(p.CreatedAt), sqlconv.MS(p.UpdatedAt), int64(p.Total()))
	if err != nil {
		return fmt.Errorf("insert proposal: %w", interpretError(err))
	}
	return nil
}

func (q *queries) ProposalUpdate(ctx context.Context, p *proposal.Proposal) error {
	res, err := q.exec(ctx, `UPDATE proposals SET name = ?, client_name = ?, client_email = ?,
		requirements = ?, currency = ?, line_items = ?, total_minor = ?, status = ?, share_token = ?,
		responded_at = ?, revision_comment = ?, updated_at = ?
		WHERE id = ? AND account_id = ?`,
		p.Name, p.ClientName, sqlconv.NullText(p.ClientEmail), sqlconv.NullText(p.Requirements), p.Currency,
		sqlconv.EncodeLineItems(p.LineItems), int64(p.Total()), string(p.Status), sqlconv.NullText(p.ShareToken),
		sqlconv.NullMS(p.RespondedAt), sqlconv.NullText(p.RevisionComment), sqlconv.MS(p.UpdatedAt), p.ID, p.AccountID)
	if err != nil {
		return fmt.Errorf("update proposal: %w", interpretError(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.ErrNotFound
	}
	return nil
}

// --- lead sessions ---

const leadSessionCols = `id, account_id, channel, channel_id, client_name, brief, status, created_at, updated_at`

func scanLeadSession(row sqlconv.Scanner) (*proposal.LeadSession, error) {
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
	return scanLeadSession(q.queryRow(ctx, `SELECT `+leadSessionCols+` FROM lead_sessions
		WHERE id = ? AND account_id = ?`, id, accountID))
}

// LeadSessionGetForUpdate needs no lock, as ProposalGetForUpdate.
func (q *queries) LeadSessionGetForUpdate(ctx context.Context, accountID, id string) (*proposal.LeadSession, error) {
	return q.LeadSessionGet(ctx, accountID, id)
}

func (q *queries) LeadSessionList(ctx context.Context, p *store.ListParams) ([]*proposal.LeadSession, error) {
	after, err := q.afterSeq(ctx, "lead_sessions", p, "")
	if err != nil {
		return nil, err
	}
	rows, err := q.query(ctx, `SELECT `+leadSessionCols+` FROM lead_sessions
		WHERE account_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, p.AccountID, after, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list lead sessions: %w", err)
	}
	return collect(rows, scanLeadSession)
}

func (q *queries) LeadSessionInsert(ctx context.Context, l *proposal.LeadSession) error {
	_, err := q.exec(ctx, `INSERT INTO lead_sessions (`+leadSessionCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		l.ID, l.AccountID, string(l.Channel), l.ChannelID, l.ClientName, l.Brief, string(l.Status),
		sqlconv.MS(l.CreatedAt), sqlconv.MS(l.UpdatedAt))
	if err != nil {
		return fmt.Errorf("insert lead session: %w", interpretError(err))
	}
	return nil
}

func (q *queries) LeadSessionUpdate(ctx context.Context, l *proposal.LeadSession) error {
	res, err := q.exec(ctx, `UPDATE lead_sessions SET client_name = ?, brief = ?, status = ?, updated_at = ?
		WHERE id = ? AND account_id = ?`,
		l.ClientName, l.Brief, string(l.Status), sqlconv.MS(l.UpdatedAt), l.ID, l.AccountID)
	if err != nil {
		return fmt.Errorf("update lead session: %w", interpretError(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.ErrNotFound
	}
	return nil
}
