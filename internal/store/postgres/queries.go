package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/secretbox"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlconv"
)

// dbtx is what queries run on: the pool (reads outside a transaction) or a transaction.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// queries implements store.Tx over q. Bound to the pool, only its Reader methods are used.
type queries struct {
	q        dbtx
	box      *secretbox.Box
	notifier *notifier
	// inTx: q is a transaction, whose wake-up waits for its commit (dueOnCommit).
	inTx, dueOnCommit bool
}

// deliveriesDue asks for a wake-up of every process's dispatchers: now outside a transaction, after
// the commit inside one.
func (q *queries) deliveriesDue() {
	if q.inTx {
		q.dueOnCommit = true
		return
	}
	q.notifier.ask()
}

var _ store.Tx = (*queries)(nil)

// scanner is a row to scan: a pgx.Row or the current row of pgx.Rows.
type scanner = sqlconv.Scanner

// collect scans the rows of a query that returned err, and closes them.
func collect[T any](rows pgx.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlconv.Collect(rows, scan)
}

// interpretError maps pgx errors to ours; it is the only place that knows them. A missing row is
// errs.ErrNotFound. Everything else, unique violations included, stays an internal error as on
// SQLite: each unique key that callers may hit (account names, settings) is handled by its query
// with ON CONFLICT, and the others (random ids, share tokens, session hashes) collide only by
// astronomically bad luck.
func interpretError(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return errs.ErrNotFound
	}
	return err
}

// sendBatch runs b in one round trip and returns the first error.
func (q *queries) sendBatch(ctx context.Context, b *pgx.Batch) error {
	return q.q.SendBatch(ctx, b).Close()
}

// afterSeq returns the seq below which the next page starts: the seq of the object named by p.After
// among the account's objects of table (and, for attempts, the webhook's).
func (q *queries) afterSeq(ctx context.Context, table string, p *store.ListParams, webhookID string) (int64, error) {
	if p.After == "" {
		return 1<<63 - 1, nil
	}
	sql := `SELECT seq FROM ` + table + ` WHERE id = $1 AND account_id = $2`
	args := []any{p.After, p.AccountID}
	if webhookID != "" {
		sql += ` AND webhook_id = $3`
		args = append(args, webhookID)
	}
	var seq int64
	err := q.q.QueryRow(ctx, sql, args...).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, errs.Field("cursor", "is not a cursor of this list")
	}
	return seq, err
}
