package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

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
	FROM deliveries d
	LEFT JOIN LATERAL (SELECT created_at, status_code, error FROM attempts
		WHERE delivery_id = d.id ORDER BY seq DESC LIMIT 1) a ON true`

func scanDeliveryInfo(row scanner) (*store.DeliveryInfo, error) {
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

// stateLiteral returns s as an SQL literal, so the planner can match a partial index on it (a
// generic plan with a parameter cannot); s is one of the five states, checked here.
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
		err := q.q.QueryRow(ctx, `SELECT created_at, seq FROM deliveries WHERE id = $1 AND account_id = $2 AND webhook_id = $3`,
			p.After, p.AccountID, p.WebhookID).Scan(&afterAt, &afterSeq)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, errs.Field("cursor", "is not a cursor of this list")
		}
		if err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
	}
	afterAt, afterSeq = upperBound(afterAt, afterSeq, p.Until)
	where := `d.webhook_id = $1 AND d.account_id = $2 AND (d.created_at, d.seq) < ($3, $4)
		AND d.created_at >= $5 AND ($6 = '' OR d.event_type = $6)`
	if p.State != "" {
		lit, err := stateLiteral(p.State)
		if err != nil {
			return nil, err
		}
		where += ` AND d.state = ` + lit
		if p.State == webhook.DeliveryPending {
			// deliveries_webhook_due holds no test deliveries; a pending test is being sent by its
			// request right now and is listed once that attempt ends.
			where += ` AND NOT d.test`
		}
	}
	rows, err := q.q.Query(ctx, deliveryInfoSelect+` WHERE `+where+`
		ORDER BY d.created_at DESC, d.seq DESC LIMIT $7`,
		p.WebhookID, p.AccountID, afterAt, afterSeq, sqlconv.MS(p.Since), p.EventType, p.Limit)
	return collect(rows, err, scanDeliveryInfo)
}

func (q *queries) DeliveryInfoGet(ctx context.Context, p *store.DeliveryRef) (*store.DeliveryInfo, error) {
	return scanDeliveryInfo(q.q.QueryRow(ctx, deliveryInfoSelect+`
		WHERE d.id = $1 AND d.account_id = $2 AND d.webhook_id = $3`, p.ID, p.AccountID, p.WebhookID))
}

func (q *queries) AttemptListByDelivery(ctx context.Context, p *store.DeliveryRef, limit int) ([]*webhook.Attempt, error) {
	rows, err := q.q.Query(ctx, `SELECT `+attemptCols+` FROM attempts a
		JOIN deliveries d ON d.id = a.delivery_id JOIN delivery_bodies b ON b.delivery_seq = d.seq
		WHERE a.delivery_id = $1 AND d.account_id = $2 AND d.webhook_id = $3
		ORDER BY a.seq DESC LIMIT $4`, p.ID, p.AccountID, p.WebhookID, limit)
	return collect(rows, err, scanAttempt)
}

// recoverableWhere picks the failed deliveries of a recover: a range of deliveries_webhook_failed.
// Publish writes an event and its deliveries with one time, so created_at is the event's timestamp.
const recoverableWhere = `FROM deliveries
	WHERE webhook_id = $1 AND account_id = $2 AND state = 'failed' AND created_at >= $3 AND created_at < $4`

func (q *queries) DeliveryCountRecoverable(ctx context.Context, p *store.DeliveryRecoverParams) (int, error) {
	var n int
	err := q.q.QueryRow(ctx, `SELECT count(*) `+recoverableWhere, p.WebhookID, p.AccountID, sqlconv.MS(p.Since),
		untilMS(p.Until)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count recoverable deliveries: %w", err)
	}
	return n, nil
}

func (q *queries) DeliveryRecover(ctx context.Context, p *store.DeliveryRecoverParams) (int, error) {
	// The webhook is share-locked first, for the reason of lockWebhooks: a resume committing
	// meanwhile would otherwise leave what this makes held, held for good.
	var active bool
	err := q.q.QueryRow(ctx, `SELECT is_active FROM webhooks WHERE id = $1 AND account_id = $2 FOR SHARE`,
		p.WebhookID, p.AccountID).Scan(&active)
	if err != nil {
		return 0, interpretError(err)
	}
	state := webhook.DeliveryPending
	if !active {
		state = webhook.DeliveryHeld
	}
	// One statement for the whole set (or p.Limit of it); a failed delivery is never leased, so no
	// claim races it. FOR UPDATE SKIP LOCKED: two recovers at once take disjoint rows instead of
	// one waiting to find the other's rows no longer failed. updated_at < Now: a delivery this
	// recover made pending that has failed again since (a later call of the same recover) is not
	// taken twice.
	limit := any(nil) // LIMIT NULL is no limit
	if p.Limit > 0 {
		limit = p.Limit
	}
	tag, err := q.q.Exec(ctx, `UPDATE deliveries SET state = $5, retries = 0, next_attempt_at = $6,
		locked_until = NULL, updated_at = $6
		WHERE seq IN (SELECT seq `+recoverableWhere+` AND updated_at < $6 LIMIT $7 FOR UPDATE SKIP LOCKED)
			AND state = 'failed'`,
		p.WebhookID, p.AccountID, sqlconv.MS(p.Since), untilMS(p.Until), string(state), sqlconv.MS(p.Now), limit)
	if err != nil {
		return 0, fmt.Errorf("recover deliveries: %w", err)
	}
	if tag.RowsAffected() > 0 && state == webhook.DeliveryPending {
		q.deliveriesDue()
	}
	return int(tag.RowsAffected()), nil
}

func (q *queries) WebhookStatsGet(ctx context.Context, webhookID string, since time.Time) (*store.WebhookStats, error) {
	var s store.WebhookStats
	var lastOK, lastFail int64
	// Each count walks one partial index: deliveries_webhook_due (pending but tests, which their
	// request is sending right now), deliveries_webhook_held, deliveries_webhook_ended.
	err := q.q.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM deliveries WHERE webhook_id = $1 AND state = 'pending' AND NOT test),
		(SELECT count(*) FROM deliveries WHERE webhook_id = $1 AND state = 'held'),
		(SELECT count(*) FROM deliveries WHERE webhook_id = $1 AND state = 'succeeded' AND updated_at >= $2),
		(SELECT count(*) FROM deliveries WHERE webhook_id = $1 AND state = 'failed' AND updated_at >= $2),
		(SELECT COALESCE(max(updated_at), 0) FROM deliveries WHERE webhook_id = $1 AND state = 'succeeded'),
		(SELECT COALESCE(max(updated_at), 0) FROM deliveries WHERE webhook_id = $1 AND state = 'failed')`,
		webhookID, sqlconv.MS(since)).Scan(&s.Pending, &s.Held, &s.Succeeded, &s.Failed, &lastOK, &lastFail)
	if err != nil {
		return nil, fmt.Errorf("webhook stats: %w", err)
	}
	s.LastSuccessAt, s.LastFailureAt = sqlconv.FromMS(lastOK), sqlconv.FromMS(lastFail)
	return &s, nil
}

const eventCols = `id, account_id, type, occurred_at, data, test`

func scanEvent(row scanner) (*webhook.Event, error) {
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
const notTestEvent = `NOT test`

func (q *queries) EventList(ctx context.Context, p *store.EventListParams) ([]*webhook.Event, error) {
	afterAt, afterSeq := int64(math.MaxInt64), int64(math.MaxInt64)
	if p.After != "" {
		err := q.q.QueryRow(ctx, `SELECT occurred_at, seq FROM events WHERE id = $1 AND account_id = $2`,
			p.After, p.AccountID).Scan(&afterAt, &afterSeq)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, errs.Field("cursor", "is not a cursor of this list")
		}
		if err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
	}
	afterAt, afterSeq = upperBound(afterAt, afterSeq, p.Until)
	rows, err := q.q.Query(ctx, `SELECT `+eventCols+` FROM events
		WHERE account_id = $1 AND `+notTestEvent+` AND (occurred_at, seq) < ($2, $3)
			AND occurred_at >= $4 AND ($5 = '' OR type = $5)
		ORDER BY occurred_at DESC, seq DESC LIMIT $6`,
		p.AccountID, afterAt, afterSeq, sqlconv.MS(p.Since), p.Type, p.Limit)
	return collect(rows, err, scanEvent)
}

func (q *queries) EventGet(ctx context.Context, accountID, id string) (*webhook.Event, error) {
	return scanEvent(q.q.QueryRow(ctx, `SELECT `+eventCols+` FROM events WHERE id = $1 AND account_id = $2`, id, accountID))
}

func (q *queries) DeliveryListByEvent(ctx context.Context, accountID, eventID string) ([]*webhook.Delivery, error) {
	rows, err := q.q.Query(ctx, `SELECT id, webhook_id, state, attempts FROM deliveries
		WHERE event_id = $1 AND account_id = $2 ORDER BY seq`, eventID, accountID)
	return collect(rows, err, func(row scanner) (*webhook.Delivery, error) {
		d := &webhook.Delivery{AccountID: accountID, EventID: eventID}
		var state string
		if err := row.Scan(&d.ID, &d.WebhookID, &state, &d.Attempts); err != nil {
			return nil, err
		}
		d.State = webhook.DeliveryState(state)
		return d, nil
	})
}
