package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// notifyTimeout bounds one wake-up; a dispatcher that misses it finds the deliveries at its next poll.
const notifyTimeout = 5 * time.Second

// notifyAsync sends one wake-up, with payload %s, in a transaction of its own. The notification
// carries no data, so its commit need not wait for the disk: synchronous_commit is off for it alone.
const notifyAsync = "BEGIN; SET LOCAL synchronous_commit = off; " + notifyDue + ", '%s'; COMMIT"

// notifier sends the wake-ups of committed changes after their commit, coalesced: however many
// transactions ask while one NOTIFY is on its way, one more follows it.
//
// Why not NOTIFY inside the transaction that made deliveries due, where PostgreSQL would deliver it at
// commit: a transaction that has sent NOTIFY takes a database-wide lock at commit and holds it until
// its commit record is flushed, so concurrent API transactions would commit one at a time, one disk
// flush each, instead of sharing flushes. Sent afterwards, a wake-up can only be later, never
// earlier than the change it announces, and it is a hint: dispatchers also poll.
type notifier struct {
	pool *pgxpool.Pool
	sql  string // notifyAsync with this handle's payload
	log  *slog.Logger
	poke chan struct{} // buffered(1): asks coalesce, an asker never blocks

	cancel context.CancelFunc
	done   chan struct{}
}

// newNotifier starts a notifier that sends on pool with payload self (letters and digits); stop it
// before closing the pool.
func newNotifier(pool *pgxpool.Pool, self string, log *slog.Logger) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{pool: pool, sql: fmt.Sprintf(notifyAsync, self), log: log, poke: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go n.run(ctx)
	return n
}

// ask asks for a wake-up of every process's dispatchers; call it after the change has committed.
func (n *notifier) ask() {
	select {
	case n.poke <- struct{}{}:
	default:
	}
}

// stop sends a wake-up still asked for, then ends the notifier.
func (n *notifier) stop() {
	n.cancel()
	<-n.done
}

func (n *notifier) run(ctx context.Context) {
	defer close(n.done)
	for {
		select {
		case <-n.poke:
			n.send(context.WithoutCancel(ctx))
		case <-ctx.Done():
			select {
			case <-n.poke:
				n.send(context.WithoutCancel(ctx))
			default:
			}
			return
		}
	}
}

func (n *notifier) send(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	if _, err := n.pool.Exec(ctx, n.sql); err != nil {
		n.log.Debug("postgres: wake-up not sent; dispatchers find the deliveries at their next poll", "err", err)
	}
}
