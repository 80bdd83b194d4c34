package sqlite

import (
	"testing"

	"github.com/quikly/webhooks/internal/store/storetest"
)

// A database made before events kept their data (migrations up to 00002) gets it from their
// deliveries' bodies on upgrade; an event without a delivery shows none.
func TestUpgradeGivesEventsTheirData(t *testing.T) {
	t.Parallel()
	db := upgraded(t, 2,
		`INSERT INTO accounts (id, name, created_at) VALUES ('acct_1', 'acme', 0)`,
		`INSERT INTO webhooks (id, account_id, name, url, events, is_active, secret, created_at, updated_at)
			VALUES ('wh_1', 'acct_1', 'CRM', 'https://example.com/hook', '["proposal.created"]', 1, 'whsec_x', 0, 0)`,
		`INSERT INTO events (id, account_id, type, occurred_at) VALUES ('evt_1', 'acct_1', 'proposal.created', 1000)`,
		`INSERT INTO events (id, account_id, type, occurred_at) VALUES ('evt_2', 'acct_1', 'lead_session.created', 2000)`,
		`INSERT INTO deliveries (id, account_id, webhook_id, event_id, event_seq, event_type, state,
			next_attempt_at, created_at, updated_at)
			VALUES ('dlv_1', 'acct_1', 'wh_1', 'evt_1', 1, 'proposal.created', 'failed', 0, 1000, 1000)`,
		`INSERT INTO delivery_bodies (delivery_seq, body) VALUES (1,
			CAST('{"event":"proposal.created","timestamp":"1970-01-01T00:00:01Z","webhook_id":"wh_1","data":{"b":1,"a":[2]}}' AS BLOB))`,
	)

	storetest.CheckUpgradeGivesEventsTheirData(t, db)
}
