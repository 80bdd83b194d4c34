package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/secretbox"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlconv"
)

// dbtx is what queries run on: the read pool or the group's transaction.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queries implements store.Tx over db. Bound to the read pool, only its Reader methods work.
type queries struct {
	db    dbtx    // the read pool or the group's transaction
	tx    *sql.Tx // the group's transaction; nil on the read pool
	stmts *stmtCache
	// inTx holds the statements of stmts bound to tx, each bound once per group.
	inTx map[*sql.Stmt]*sql.Stmt
	box  *secretbox.Box
}

// stmt returns the prepared statement of query, bound to the transaction if there is one, or nil
// when query must run unprepared.
func (q *queries) stmt(ctx context.Context, query string) *sql.Stmt {
	s := q.stmts.get(ctx, query)
	if s == nil || q.tx == nil {
		return s
	}
	if t, ok := q.inTx[s]; ok {
		return t
	}
	// Not the caller's ctx: the bound statement serves every caller of the group. The transaction
	// holds the connection, so this never waits, and on the one connection the statement is already
	// prepared: database/sql reuses it.
	t := q.tx.StmtContext(context.Background(), s)
	if q.inTx == nil {
		q.inTx = map[*sql.Stmt]*sql.Stmt{}
	}
	q.inTx[s] = t
	return t
}

func (q *queries) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := q.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return q.db.ExecContext(ctx, query, args...)
}

func (q *queries) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := q.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return q.db.QueryContext(ctx, query, args...)
}

func (q *queries) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if s := q.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return q.db.QueryRowContext(ctx, query, args...)
}

var _ store.Tx = (*queries)(nil)

// interpretError maps driver errors to ours; it is the only place that knows them.
func interpretError(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return errs.ErrNotFound
	}
	return err
}

// afterSeq returns the seq below which the next page starts: the seq of the object named by p.After.
func (q *queries) afterSeq(ctx context.Context, table string, p *store.ListParams, extra string, args ...any) (int64, error) {
	if p.After == "" {
		return 1<<63 - 1, nil
	}
	var seq int64
	err := q.queryRow(ctx, `SELECT seq FROM `+table+` WHERE id = ? AND account_id = ?`+extra,
		append([]any{p.After, p.AccountID}, args...)...).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errs.Field("cursor", "is not a cursor of this list")
	}
	return seq, err
}

// collect scans rows and closes them.
func collect[T any](rows *sql.Rows, scan func(sqlconv.Scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	return sqlconv.Collect(rows, scan)
}

// collectErr is collect of a query that returned err.
func collectErr[T any](rows *sql.Rows, err error, scan func(sqlconv.Scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return collect(rows, scan)
}
