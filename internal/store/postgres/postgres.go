// Package postgres is the scale-out store: PostgreSQL through pgx (github.com/jackc/pgx/v5) and its
// pgxpool. Every Tx is a real database transaction, so transactions of many goroutines, processes and
// machines run side by side; workers share the delivery queue with SELECT … FOR UPDATE SKIP LOCKED,
// and LISTEN/NOTIFY wakes idle dispatchers in every process when deliveries become due.
//
// It passes the storetest suite that the SQLite driver passes. Where transactions running at once
// could see what SQLite's single writer never shows, the queries lock: writes that decide from a
// webhook's is_active whether a delivery is pending or held share-lock the webhook row, so a
// concurrent pause, resume or delete applies to their deliveries too. One behaviour differs on
// purpose: an attempt's error is stored with NUL and invalid UTF-8 replaced by U+FFFD, which
// PostgreSQL text cannot hold (response bodies are kept byte for byte).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/secretbox"
	"github.com/quikly/webhooks/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

var (
	_ store.Store = (*DB)(nil)
	_ store.Waker = (*DB)(nil)
)

// Defaults of Options.
const (
	// MaxConnsDefault leaves room for API requests, the dispatcher's claim and outcome transactions
	// and the maintenance sweeps of one process at once.
	MaxConnsDefault int32 = 10
	// ApplicationNameDefault is what pg_stat_activity shows for our connections.
	ApplicationNameDefault = "quikly"
	// ConnectTimeoutDefault bounds one connection attempt when the URL sets no connect_timeout, so
	// a database that is unreachable (rather than refusing) fails a request instead of hanging it.
	ConnectTimeoutDefault = 10 * time.Second
)

// Timeouts of the statements that end a transaction. They run without the caller's context: once
// fn has returned nil the caller must learn whether the commit happened, so a request cancelled at
// that moment still commits rather than leaving the outcome unknown.
const (
	commitTimeout   = 30 * time.Second
	rollbackTimeout = 5 * time.Second
)

// Options configure Open. The zero value is usable.
type Options struct {
	// Box seals signing secrets at rest; nil stores them in clear.
	Box *secretbox.Box
	// MaxConns caps the connection pool. Defaults to MaxConnsDefault; a pool_max_conns in the URL
	// is used when MaxConns is zero.
	MaxConns int32
	// ApplicationName is reported to PostgreSQL (pg_stat_activity). Defaults to
	// ApplicationNameDefault, or to the URL's application_name when it has one.
	ApplicationName string
	// Logger hears about the listening connection's outages. nil means slog.Default().
	Logger *slog.Logger
}

// DB is a PostgreSQL database. Safe for concurrent use; Close it once when done.
type DB struct {
	*queries // reads outside a transaction, on the pool

	pool     *pgxpool.Pool
	box      *secretbox.Box
	maxConns int

	listener  *listener
	notifier  *notifier
	closed    atomic.Bool
	closeOnce sync.Once
}

// errClosed is what a closed DB answers.
var errClosed = errors.New("database closed")

// Open connects to the PostgreSQL database at url (postgres://…), checks that it answers and
// applies the migrations. Processes that start together may all call Open: an advisory lock lets
// one of them migrate while the others wait.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts the password in its parse errors.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !hasParam(url, "pool_max_conns"):
		cfg.MaxConns = MaxConnsDefault
	}
	params := cfg.ConnConfig.RuntimeParams
	if opts.ApplicationName != "" {
		params["application_name"] = opts.ApplicationName
	} else if params["application_name"] == "" {
		params["application_name"] = ApplicationNameDefault
	}
	// An accepted event must survive power loss (SPEC §5). on is PostgreSQL's default, but a
	// database, role or URL may have lowered it; the startup parameter overrides all of those.
	params["synchronous_commit"] = "on"
	plainOnLoopback(&cfg.ConnConfig.Config)
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeoutDefault
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	self := randid.New("") // names this handle's wake-ups, which its own listener ignores
	db := &DB{
		pool:     pool,
		box:      opts.Box,
		maxConns: int(cfg.MaxConns),
		listener: newListener(cfg.ConnConfig.Copy(), self, log),
	}
	if err := db.ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	db.notifier = newNotifier(pool, self, log)
	db.queries = &queries{q: pool, box: opts.Box, notifier: db.notifier}
	return db, nil
}

// plainOnLoopback turns sslmode=prefer (libpq's and pgx's default: TLS when the server offers it,
// plain otherwise) into plain for a server on this machine. Encryption over loopback protects nothing,
// and it cost about a tenth of the CPU of each event, on both sides (BENCHMARKS.md). An explicit
// sslmode=require or verify-* still encrypts.
func plainOnLoopback(c *pgconn.Config) {
	if c.TLSConfig == nil || !isLoopback(c.Host) {
		return
	}
	var plain *pgconn.FallbackConfig
	for _, fb := range c.Fallbacks {
		if fb.Host != c.Host || fb.Port != c.Port {
			return // several servers: leave them as configured
		}
		if fb.TLSConfig == nil {
			plain = fb
		}
	}
	if plain != nil { // prefer: plain is only the fallback
		c.TLSConfig, c.Fallbacks = nil, nil
	}
}

// isLoopback reports whether host names this machine's loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// hasParam reports whether the connection string sets name, in URL (?name=) or key=value form.
func hasParam(connString, name string) bool {
	c, err := pgconn.ParseConfig(connString)
	if err != nil {
		return false
	}
	_, ok := c.RuntimeParams[name]
	return ok
}

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	// Several processes may start at once against a new database: the session lock (an advisory
	// lock, which PostgreSQL scopes to the database) lets one migrate while the others wait, probing
	// every second for up to five minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool) // closing it leaves the pool open
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// Tx runs fn in a read-committed transaction and commits when fn returns nil; the commit is durable
// (synchronous_commit=on) before Tx returns, unless ctx is marked store.WithLeasesOnly. Transactions of concurrent callers run concurrently. A
// panic in fn rolls the transaction back and goes on up to the caller.
func (db *DB) Tx(ctx context.Context, fn func(store.Tx) error) error {
	tx, err := db.begin(ctx)
	if err != nil {
		if connectionLost(err) {
			return fmt.Errorf("%w (begin: %v)", errs.ErrUnavailable, err)
		}
		return fmt.Errorf("postgres: begin: %w", err)
	}
	done := false
	defer func() {
		if !done {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
			// A rollback that fails closes the connection, which ends the transaction just the same.
			_ = tx.Rollback(rctx)
			cancel()
		}
	}()
	q := &queries{q: tx, box: db.box, notifier: db.notifier, inTx: true}
	if err := fn(q); err != nil {
		if connectionLost(err) {
			// Nothing was committed: the caller may retry, and a client should hear so (503).
			return fmt.Errorf("%w (%v)", errs.ErrUnavailable, err)
		}
		return err
	}
	done = true
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := tx.Commit(cctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", interpretError(err))
	}
	if q.dueOnCommit {
		db.notifier.ask()
	}
	return nil
}

// begin starts a transaction. BEGIN changes nothing, so it is retried on another connection when
// it fails on one that the server has dropped (a restart, pg_terminate_backend): the pool notices a
// dead idle connection only when it was idle for over a second. It gives up at once when no new
// connection can be made, so an outage fails fast.
func (db *DB) begin(ctx context.Context) (pgx.Tx, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	var opts pgx.TxOptions
	if store.LeasesOnly(ctx) {
		opts.BeginQuery = beginLeasesOnly
	}
	var err error
	for range db.maxConns + 1 {
		var tx pgx.Tx
		if tx, err = db.pool.BeginTx(ctx, opts); err == nil {
			return tx, nil
		}
		if !retryOnAnotherConn(ctx, err) {
			break
		}
	}
	return nil, interpretError(err)
}

// beginLeasesOnly begins a transaction marked store.WithLeasesOnly: its commit does not wait for the
// disk (in the same round trip as BEGIN). Without it the dispatcher's claims and outcome writes
// queued on WAL flushes in front of the API's (issue on isolation: the first creates beside a ramp
// of hung endpoints waited 150–300 ms on WALSync).
const beginLeasesOnly = "BEGIN; SET LOCAL synchronous_commit = off"

// connectionLost reports whether err says the connection to the database broke: the server ended
// it (pg_terminate_backend, a shutdown or restart: SQLSTATE class 08, 57P01–57P03) or the network
// did.
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.As(err, &netErr) || errors.As(err, &connectErr) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err)
}

// retryOnAnotherConn reports whether a statement that changes nothing (BEGIN, a ping) should be tried
// again after err: yes when an established connection failed, no when the context ended or a new
// connection could not be made (the database is down: say so now).
func retryOnAnotherConn(ctx context.Context, err error) bool {
	var connectErr *pgconn.ConnectError
	switch {
	case ctx.Err() != nil, errors.As(err, &connectErr):
		return false
	}
	return true
}

// Ping reports whether the database answers. It fails while the database is down; a connection that
// the server dropped before it came back does not make it fail.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

func (db *DB) ping(ctx context.Context) error {
	err := errClosed
	for i := 0; i <= db.maxConns && !db.closed.Load(); i++ {
		if err = db.pool.Ping(ctx); err == nil || !retryOnAnotherConn(ctx, err) {
			break
		}
	}
	return err
}

// WebhookSealSecrets seals the clear secrets in one transaction, which locks every webhook row.
func (db *DB) WebhookSealSecrets(ctx context.Context) (int, error) {
	var n int
	err := db.Tx(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.(*queries).sealSecrets(ctx)
		return err
	})
	return n, err
}

// DeliveriesDue receives a value soon after a transaction that may have made deliveries due commits,
// in this or any other process on the same database, and once each time the listening connection
// (re)connects, since notifications sent while it was away are lost. The first call opens that
// connection, outside the pool; it reconnects with backoff on its own.
func (db *DB) DeliveriesDue() <-chan struct{} {
	return db.listener.start()
}

// Close stops the listener and closes the pool, waiting for connections in use to be released.
// Calling it again does nothing.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.closed.Store(true)
		db.listener.stop()
		db.notifier.stop()
		db.pool.Close()
	})
	return nil
}
