// Package sqlite is the embedded default store: modernc.org/sqlite (pure Go) in WAL mode with
// synchronous=FULL. Every write goes through one connection owned by one goroutine that gathers the
// transactions of concurrent callers into one database transaction and one fsync (group commit),
// each caller's work inside its own savepoint so one failure rolls back only that caller. Another
// connection copies the write-ahead log into the database file beside it (checkpoint.go).
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/quikly/webhooks/internal/secretbox"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/testsignal"
)

//go:embed migrations/*.sql
var migrations embed.FS

var _ store.Store = (*DB)(nil)

// maxGroup bounds how many callers' transactions one commit carries.
const maxGroup = 256

// DB is a SQLite database. Safe for concurrent use.
type DB struct {
	*queries // reads, on the read pool

	write  *sql.DB // exactly one connection, used only by the writer goroutine
	read   *sql.DB
	wstmts *stmtCache // the writer's prepared statements
	box    *secretbox.Box
	// relaxed: the write connection's synchronous level is NORMAL, not FULL (syncFor). Only the
	// writer goroutine uses it.
	relaxed bool
	log     *slog.Logger

	checkpointer     *sql.DB       // one connection, used only by checkpointLoop
	committed        chan struct{} // the writer has committed since the last checkpoint
	checkpointerDone chan struct{}
	checkpointed     testsignal.Signal[checkpoint]

	reqs      chan *writeReq
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

type writeReq struct {
	ctx  context.Context
	fn   func(store.Tx) error
	done chan error
	// checkpoint empties the write-ahead log into the database file after the commit, so the WAL
	// keeps no image of the pages the transaction overwrote.
	checkpoint bool
}

// Options configure Open. The zero value is usable.
type Options struct {
	// Box seals signing secrets at rest; nil stores them in clear.
	Box *secretbox.Box
	// ReadConns is the size of the read pool. Defaults to 4.
	ReadConns int
	// Logger hears about failed checkpoints. nil means slog.Default().
	Logger *slog.Logger
}

// PathFromURL returns the file path of a "sqlite:PATH" database URL ("sqlite:quikly.db",
// "sqlite:///var/lib/quikly.db"), and whether url names SQLite at all.
func PathFromURL(url string) (string, bool) {
	rest, ok := strings.CutPrefix(url, "sqlite:")
	if !ok {
		return "", false
	}
	return strings.TrimPrefix(rest, "//"), true
}

// Open opens (creating if needed) the database file at path and applies the migrations.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" || strings.Contains(path, "?") || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: %q is not a database file path", path)
	}
	if dir := filepath.Dir(path); dir != "." {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("sqlite: directory of %s: %w", path, err)
		}
	}
	pragmas := "_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)"
	write, err := openOneConn(fmt.Sprintf("file:%s?%s&_pragma=wal_autocheckpoint(%d)&_txlock=immediate", path, pragmas, writerCheckpointPages))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, err
	}
	read, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := opts.ReadConns
	if n <= 0 {
		n = 4
	}
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	checkpointer, err := openOneConn("file:" + path + "?" + pragmas)
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db := &DB{
		queries: &queries{db: read, stmts: newStmtCache(read, false), box: opts.Box},
		write:   write,
		read:    read,
		wstmts:  newStmtCache(write, true),
		box:     opts.Box,
		log:     cmp.Or(opts.Logger, slog.Default()),
		reqs:    make(chan *writeReq, maxGroup),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),

		checkpointer:     checkpointer,
		committed:        make(chan struct{}, 1),
		checkpointerDone: make(chan struct{}),
	}
	go db.writeLoop()
	go db.checkpointLoop()
	return db, nil
}

// openOneConn opens a pool of exactly one connection that never expires: the writer's, the
// checkpointer's.
func openOneConn(dsn string) (*sql.DB, error) {
	conn, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	conn.SetConnMaxLifetime(0)
	return conn, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// Tx runs fn in the next group commit and returns once that commit is durable.
func (db *DB) Tx(ctx context.Context, fn func(store.Tx) error) error {
	return db.tx(ctx, &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// WebhookSealSecrets seals the clear secrets with secure_delete on, so the clear bytes they replace
// are zeroed in the file, then checkpoints the write-ahead log, which held the pages that had them.
func (db *DB) WebhookSealSecrets(ctx context.Context) (int, error) {
	if db.box == nil {
		return 0, nil
	}
	var n int
	err := db.tx(ctx, &writeReq{ctx: ctx, done: make(chan error, 1), checkpoint: true, fn: func(tx store.Tx) error {
		q := tx.(*queries)
		if _, err := q.exec(ctx, `PRAGMA secure_delete = 1`); err != nil {
			return fmt.Errorf("seal secrets: %w", err)
		}
		var err error
		n, err = q.sealSecrets(ctx)
		if _, offErr := q.exec(ctx, `PRAGMA secure_delete = 0`); err == nil && offErr != nil {
			err = fmt.Errorf("seal secrets: %w", offErr)
		}
		return err
	}})
	return n, err
}

func (db *DB) tx(ctx context.Context, r *writeReq) error {
	select {
	case db.reqs <- r:
	case <-db.stop:
		return errors.New("sqlite: database closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, wait for the outcome even if ctx ends: the caller must learn whether it committed.
	return <-r.done
}

// writeQueues are the requests waiting for the writer, by kind: durable (an API's writes, flushed
// to the disk), leases only (claims, releases and outcomes: store.WithLeasesOnly, not flushed) and,
// among those, low priority (store.WithLowPriority).
type writeQueues struct{ durable, leases, low []*writeReq }

func (q *writeQueues) add(r *writeReq) {
	switch {
	case !store.LeasesOnly(r.ctx):
		q.durable = append(q.durable, r)
	case store.LowPriority(r.ctx):
		q.low = append(q.low, r)
	default:
		q.leases = append(q.leases, r)
	}
}

// writeLoop commits the queued requests in groups of one kind: durable or leases only. When both
// kinds wait, the kind that did not commit last goes next. A group of leases runs the
// low-priority requests after the others, at least one, and stops before the next when a request
// that is not low priority came in meanwhile. Beside hung endpoints, groups of leases
// (their timeouts' outcomes, their re-claims) took 10–20 ms, and an API create or a claim of its
// delivery that came in waited behind each; now it waits for one low-priority request at most.
func (db *DB) writeLoop() {
	defer close(db.stopped)
	var q writeQueues
	lastLeases := false // the last group committed was of leases
	for {
		if len(q.durable)+len(q.leases)+len(q.low) == 0 {
			select {
			case r := <-db.reqs:
				q.add(r)
			case <-db.stop:
				return
			}
		}
		db.gather(&q)
		lastLeases = len(q.durable) == 0 || len(q.leases)+len(q.low) > 0 && !lastLeases
		if !lastLeases {
			n := min(len(q.durable), maxGroup)
			db.commitGroup(q.durable[:n], nil)
			q.durable = slices.Delete(q.durable, 0, n)
		} else {
			first := min(len(q.leases), maxGroup)
			low := min(len(q.low), maxGroup-first)
			batch := slices.Concat(q.leases[:first], q.low[:low])
			q.leases = slices.Delete(q.leases, 0, first)
			q.low = slices.Delete(q.low, 0, low)
			// One low-priority request runs in every group of leases, so none waits for ever.
			n := db.commitGroup(batch, func(i int) bool {
				return i > first && db.gather(&q)
			})
			q.low = slices.Insert(q.low, 0, batch[n:]...) // stopped early: they go first next time
		}
		db.wstmts.prepareDeferred() // the connection is free until the next group
	}
}

// gather queues the requests that came in, without waiting, and reports whether any that is not
// low priority waits.
func (db *DB) gather(q *writeQueues) bool {
	for {
		select {
		case r := <-db.reqs:
			q.add(r)
		default:
			return len(q.durable)+len(q.leases) > 0
		}
	}
}

// commitGroup runs the requests of batch in one transaction, each in its own savepoint, and returns
// how many it ran: all of them unless stopBefore (nil: never) returned true for the request at
// index i > 0, in which case the group ends before it and the rest are not answered.
func (db *DB) commitGroup(batch []*writeReq, stopBefore func(i int) bool) int {
	errs := make([]error, len(batch))
	if err := db.syncFor(batch); err != nil {
		for _, r := range batch {
			r.done <- fmt.Errorf("sqlite: %w", err)
		}
		return len(batch)
	}
	tx, err := db.write.BeginTx(context.Background(), nil)
	if err != nil {
		for _, r := range batch {
			r.done <- fmt.Errorf("sqlite: begin: %w", err)
		}
		return len(batch)
	}
	q := &queries{db: tx, tx: tx, stmts: db.wstmts, box: db.box}
	single := len(batch) == 1
	anyOK := false
	for i, r := range batch {
		if i > 0 && stopBefore != nil && stopBefore(i) {
			batch, errs = batch[:i], errs[:i]
			break
		}
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if !single {
			if _, err := q.exec(context.Background(), "SAVEPOINT caller"); err != nil {
				errs[i] = err
				continue
			}
		}
		errs[i] = runFn(q, r.fn)
		switch {
		case errs[i] == nil && !single:
			_, errs[i] = q.exec(context.Background(), "RELEASE caller")
		case errs[i] != nil && !single:
			if err := q.rollbackTo(); err != nil {
				// The transaction is in an unknown state: fail the whole group.
				tx.Rollback()
				for _, r := range batch {
					r.done <- fmt.Errorf("sqlite: rollback to savepoint: %w", err)
				}
				return len(batch)
			}
		}
		anyOK = anyOK || errs[i] == nil
	}
	if !anyOK {
		tx.Rollback()
	} else if err := tx.Commit(); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("sqlite: commit: %w", err)
			}
		}
	} else {
		db.kickCheckpointer()
	}
	for i, r := range batch {
		if r.checkpoint && errs[i] == nil {
			if _, err := db.write.ExecContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				errs[i] = fmt.Errorf("sqlite: checkpoint: %w", err)
			}
		}
		r.done <- errs[i]
	}
	return len(batch)
}

// syncFor sets the write connection's synchronous level for a group: NORMAL when its requests
// write leases and outcomes only (store.WithLeasesOnly), FULL otherwise. In WAL mode a NORMAL
// commit is not flushed to the disk, and the next FULL commit flushes it with its own, so nothing
// written FULL can be lost while an earlier NORMAL write survives. Beside hung endpoints the claims
// and outcome writes were most of the commits, each waiting for a flush the API's creates queued
// behind.
func (db *DB) syncFor(batch []*writeReq) error {
	relaxed := store.LeasesOnly(batch[0].ctx) // a group is of one kind (writeLoop)
	if relaxed == db.relaxed {
		return nil
	}
	level := "FULL"
	if relaxed {
		level = "NORMAL"
	}
	if _, err := db.write.ExecContext(context.Background(), "PRAGMA synchronous = "+level); err != nil {
		return fmt.Errorf("synchronous = %s: %w", level, err)
	}
	db.relaxed = relaxed
	return nil
}

// rollbackTo undoes the current caller's writes and ends its savepoint.
func (q *queries) rollbackTo() error {
	if _, err := q.exec(context.Background(), "ROLLBACK TO caller"); err != nil {
		return err
	}
	_, err := q.exec(context.Background(), "RELEASE caller")
	return err
}

func runFn(q *queries, fn func(store.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sqlite: transaction panicked: %v", p)
		}
	}()
	return fn(q)
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.read.PingContext(ctx) }

// Close stops the writer after the requests already queued and closes the database.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.stop)
		<-db.stopped
		<-db.checkpointerDone
	})
	// Fail anything that raced with close.
	for {
		select {
		case r := <-db.reqs:
			r.done <- errors.New("sqlite: database closed")
			continue
		default:
		}
		break
	}
	db.wstmts.close()
	db.queries.stmts.close()
	// The writer closes last: SQLite's last connection copies the whole log into the database file.
	return errors.Join(db.checkpointer.Close(), db.read.Close(), db.write.Close())
}
