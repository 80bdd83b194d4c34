package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlconv"
	"github.com/quikly/webhooks/internal/webhook"
)

// The delivery objects of SPEC §10 show the outcome of the last attempt. It is read from attempts
// (one probe of attempts_delivery per delivery shown, at most a page of them) rather than kept in
// columns of deliveries: the outcome write, the hot path, stays as it is, and a list costs at most
// 200 index lookups more.
const deliveryInfoSelect = `SELECT d.id, d.account_id, d.webhook_id, d.event_id, d.event_type, d.state,
	d.attempts, d.retries, d.next_attempt_at, d.created_at,
	COALESCE(a.created_at, 0), COALESCE(a.status_code, 0), COALESCE(a.error, '')
	FROM deliveries d %s
	LEFT JOIN attempts a ON a.seq = (SELECT max(seq) FROM attempts WHERE delivery_seq = d.seq)`

func scanDeliveryInfo(row sqlconv.Scanner) (*store.DeliveryInfo, error) {
	var d store.DeliveryInfo
	var state string
	var next, created, last int64
	if err := row.Scan(&d.ID, &d.AccountID, &d.WebhookID, &d.EventID, &d.EventType, &state, &d.Attempts,
		&d.Retries, &next, &created, &last, &d.LastStatusCode, &d.LastError); err != nil {
		return nil, interpretError(err)
	}
	d.State, d.NextAttemptAt, d.CreatedAt, d.LastAttemptAt = webhook.DeliveryState(state), sqlconv.FromMS(next), sqlconv.FromMS(created), sqlconv.FromMS(last)
	return &d, nil
}

// stateLiteral returns s as an SQL literal, so a partial index on it can serve the query (a bound
// parameter cannot prove the index's predicate); s is one of the five states, checked here.
func stateLiteral(s webhook.DeliveryState) (string, error) {
	switch s {
	case webhook.DeliveryPending, webhook.DeliveryHeld, webhook.DeliverySucceeded, webhook.DeliveryFailed, webhook.DeliveryCancelled:
		return "'" + string(s) + "'", nil
	}
	return "", errs.Field("status", "is not a delivery status")
}

// upperBound is the one upper bound of a page, as (time, seq): the cursor's row and the range's
// until (created_at < until is (created_at, seq) < (until, 0), seqs being positive), whichever is
// lower. One bound, so the planner seeks straight to it; given both, SQLite seeks to one and filters
// by the other, walking every row between them.
func upperBound(afterAt, afterSeq int64, until time.Time) (int64, int64) {
	if u := untilMS(until); u < afterAt || (u == afterAt && afterSeq > 0) {
		return u, 0
	}
	return afterAt, afterSeq
}

// untilMS is the end of a [since, until) range in milliseconds; zero is no end.
func untilMS(t time.Time) int64 {
	if t.IsZero() {
		return math.MaxInt64
	}
	return t.UnixMilli()
}

func (q *queries) DeliveryList(ctx context.Context, p *store.DeliveryListParams) ([]*store.DeliveryInfo, error) {
	afterAt, afterSeq := int64(math.MaxInt64), int64(math.MaxInt64)
	if p.After != "" {
		err := q.queryRow(ctx, `SELECT created_at, seq FROM deliveries WHERE id = ? AND account_id = ? AND webhook_id = ?`,
			p.After, p.AccountID, p.WebhookID).Scan(&afterAt, &afterSeq)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errs.Field("cursor", "is not a cursor of this list")
		}
		if err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
	}
	// Without ANALYZE statistics SQLite would take deliveries_webhook_ended for a succeeded list
	// (two equal columns) and sort every succeeded delivery of the webhook; named indexes walk the
	// wanted order instead and stop at the page's end. Pending and held lists are left to the planner:
	// their partial indexes hold only the backlog, sorted after.
	from := `INDEXED BY deliveries_webhook_created`
	afterAt, afterSeq = upperBound(afterAt, afterSeq, p.Until)
	where := `d.webhook_id = ? AND d.account_id = ? AND (d.created_at, d.seq) < (?, ?) AND d.created_at >= ?`
	args := []any{p.WebhookID, p.AccountID, afterAt, afterSeq, sqlconv.MS(p.Since)}
	if p.State != "" {
		lit, err := stateLiteral(p.State)
		if err != nil {
			return nil, err
		}
		where += ` AND d.state = ` + lit
		switch p.State {
		case webhook.DeliveryFailed:
			from = `INDEXED BY deliveries_webhook_failed`
		case webhook.DeliveryPending:
			// deliveries_webhook_due holds no test deliveries; a pending test is being sent by its
			// request right now and is listed once that attempt ends.
			from, where = "", where+` AND d.test = 0`
		case webhook.DeliveryHeld:
			from = ""
		}
	}
	if p.EventType != "" {
		where += ` AND d.event_type = ?`
		args = append(args, p.EventType)
	}
	rows, err := q.query(ctx, fmt.Sprintf(deliveryInfoSelect, from)+` WHERE `+where+`
		ORDER BY d.created_at DESC, d.seq DESC LIMIT ?`, append(args, p.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return collect(rows, scanDeliveryInfo)
}

func (q *queries) DeliveryInfoGet(ctx context.Context, p *store.DeliveryRef) (*store.DeliveryInfo, error) {
	return scanDeliveryInfo(q.queryRow(ctx, fmt.Sprintf(deliveryInfoSelect, "")+`
		WHERE d.id = ? AND d.account_id = ? AND d.webhook_id = ?`, p.ID, p.AccountID, p.WebhookID))
}

func (q *queries) AttemptListByDelivery(ctx context.Context, p *store.DeliveryRef, limit int) ([]*webhook.Attempt, error) {
	rows, err := q.query(ctx, `SELECT `+attemptCols+` FROM attempts a
		JOIN delivery_bodies b ON b.delivery_seq = a.delivery_seq
		WHERE a.delivery_seq = (SELECT seq FROM deliveries WHERE id = ? AND account_id = ? AND webhook_id = ?)
		ORDER BY a.seq DESC LIMIT ?`, p.ID, p.AccountID, p.WebhookID, limit)
	if err != nil {
		return nil, fmt.Errorf("list attempts of delivery: %w", err)
	}
	return collect(rows, scanAttempt)
}

// recoverableWhere picks the failed deliveries of a recover: a walk of deliveries_webhook_failed.
// Publish writes an event and its deliveries with one time, so created_at is the event's timestamp.
const recoverableWhere = `FROM deliveries INDEXED BY deliveries_webhook_failed
	WHERE webhook_id = ?1 AND account_id = ?2 AND state = 'failed' AND created_at >= ?3 AND created_at < ?4`

func (q *queries) DeliveryCountRecoverable(ctx context.Context, p *store.DeliveryRecoverParams) (int, error) {
	var n int
	err := q.queryRow(ctx, `SELECT count(*) `+recoverableWhere, p.WebhookID, p.AccountID, sqlconv.MS(p.Since),
		untilMS(p.Until)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count recoverable deliveries: %w", err)
	}
	return n, nil
}

// recoverBatch is the most deliveries one statement of a recover moves. One statement for 100,000
// rows needs a statement journal that SQLite spills to a temporary file, which fails with
// SQLITE_FULL; set-based batches of this size each stay within journalSpill.
const recoverBatch = 5000

func (q *queries) DeliveryRecover(ctx context.Context, p *store.DeliveryRecoverParams) (int, error) {
	// Set-based statements of at most recoverBatch rows each, until p.Limit or none is left. SQLite
	// has one writer, so is_active cannot change under them. updated_at < Now: a delivery this
	// recover made pending that has failed again since (a later call of the same recover) is not
	// taken twice.
	total := 0
	for {
		batch := recoverBatch
		if p.Limit > 0 {
			batch = min(batch, p.Limit-total)
		}
		res, err := q.exec(ctx, `UPDATE deliveries SET
			state = CASE WHEN (SELECT is_active FROM webhooks WHERE id = ?1) = 0 THEN 'held' ELSE 'pending' END,
			retries = 0, next_attempt_at = ?5, locked_until = NULL, updated_at = ?5
			WHERE seq IN (SELECT seq `+recoverableWhere+` AND updated_at < ?5 LIMIT ?6)`,
			p.WebhookID, p.AccountID, sqlconv.MS(p.Since), untilMS(p.Until), sqlconv.MS(p.Now), batch)
		if err != nil {
			return 0, fmt.Errorf("recover deliveries: %w", err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
		if int(n) < batch || total == p.Limit {
			return total, nil
		}
	}
}

func (q *queries) WebhookStatsGet(ctx context.Context, webhookID string, since time.Time) (*store.WebhookStats, error) {
	var s store.WebhookStats
	var lastOK, lastFail int64
	// Each count walks one partial index: deliveries_webhook_due, deliveries_webhook_held,
	// deliveries_webhook_ended (named, and its predicate repeated so SQLite sees it holds: without statistics SQLite prefers
	// deliveries_webhook_created,
	// and counts every delivery of the webhook).
	err := q.queryRow(ctx, `SELECT
		(SELECT count(*) FROM deliveries INDEXED BY deliveries_webhook_due WHERE webhook_id = ?1 AND state = 'pending' AND test = 0),
		(SELECT count(*) FROM deliveries WHERE webhook_id = ?1 AND state = 'held'),
		(SELECT count(*) FROM deliveries INDEXED BY deliveries_webhook_ended WHERE webhook_id = ?1 AND state IN ('succeeded', 'failed') AND state = 'succeeded' AND updated_at >= ?2),
		(SELECT count(*) FROM deliveries INDEXED BY deliveries_webhook_ended WHERE webhook_id = ?1 AND state IN ('succeeded', 'failed') AND state = 'failed' AND updated_at >= ?2),
		(SELECT COALESCE(max(updated_at), 0) FROM deliveries INDEXED BY deliveries_webhook_ended WHERE webhook_id = ?1 AND state IN ('succeeded', 'failed') AND state = 'succeeded'),
		(SELECT COALESCE(max(updated_at), 0) FROM deliveries INDEXED BY deliveries_webhook_ended WHERE webhook_id = ?1 AND state IN ('succeeded', 'failed') AND state = 'failed')`,
		webhookID, sqlconv.MS(since)).Scan(&s.Pending, &s.Held, &s.Succeeded, &s.Failed, &lastOK, &lastFail)
	if err != nil {
		return nil, fmt.Errorf("webhook stats: %w", err)
	}
	s.LastSuccessAt, s.LastFailureAt = sqlconv.FromMS(lastOK), sqlconv.FromMS(lastFail)
	return &s, nil
}

const eventCols = `id, account_id, type, occurred_at, data, test`

func scanEvent(row sqlconv.Scanner) (*webhook.Event, error) {
	var e webhook.Event
	var at int64
	var data string
	if err := row.Scan(&e.ID, &e.AccountID, &e.Type, &at, &data, &e.Test); err != nil {
		return nil, interpretError(err)
	}
	e.OccurredAt = sqlconv.FromMS(at)
	if data != "" {
		e.Data = []byte(data)
	}
	return &e, nil
}

// eventData is what events.data stores for e.
func eventData(e *webhook.Event) string { return string(e.Data) }

// notTestEvent leaves test events out of GET /events: the test marker of migration 00003.
const notTestEvent = `test = 0`

func (q *queries) EventList(ctx context.Context, p *store.EventListParams) ([]*webhook.Event, error) {
	afterAt, afterSeq := int64(math.MaxInt64), int64(math.MaxInt64)
	if p.After != "" {
		err := q.queryRow(ctx, `SELECT occurred_at, seq FROM events WHERE id = ? AND account_id = ?`,
			p.After, p.AccountID).Scan(&afterAt, &afterSeq)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errs.Field("cursor", "is not a cursor of this list")
		}
		if err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
	}
	afterAt, afterSeq = upperBound(afterAt, afterSeq, p.Until)
	where := `account_id = ? AND ` + notTestEvent + ` AND (occurred_at, seq) < (?, ?) AND occurred_at >= ?`
	args := []any{p.AccountID, afterAt, afterSeq, sqlconv.MS(p.Since)}
	if p.Type != "" {
		where += ` AND type = ?`
		args = append(args, p.Type)
	}
	rows, err := q.query(ctx, `SELECT `+eventCols+` FROM events INDEXED BY events_account_occurred
		WHERE `+where+` ORDER BY occurred_at DESC, seq DESC LIMIT ?`, append(args, p.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return collect(rows, scanEvent)
}

func (q *queries) EventGet(ctx context.Context, accountID, id string) (*webhook.Event, error) {
	return scanEvent(q.queryRow(ctx, `SELECT `+eventCols+` FROM events WHERE id = ? AND account_id = ?`, id, accountID))
}

func (q *queries) DeliveryListByEvent(ctx context.Context, accountID, eventID string) ([]*webhook.Delivery, error) {
	rows, err := q.query(ctx, `SELECT id, webhook_id, state, attempts FROM deliveries
		WHERE event_seq = (SELECT seq FROM events WHERE id = ? AND account_id = ?) AND account_id = ?
		ORDER BY seq`, eventID, accountID, accountID)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of event: %w", err)
	}
	return collect(rows, func(row sqlconv.Scanner) (*webhook.Delivery, error) {
		d := &webhook.Delivery{AccountID: accountID, EventID: eventID}
		var state string
		if err := row.Scan(&d.ID, &d.WebhookID, &state, &d.Attempts); err != nil {
			return nil, err
		}
		d.State = webhook.DeliveryState(state)
		return d, nil
	})
}
