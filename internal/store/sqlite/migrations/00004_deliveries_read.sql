-- +goose Up
-- Events keep their data (JSON text), so GET /events can list events no webhook took. Events made
-- before take it from one of their deliveries' bodies; those without a delivery keep '' (shown null).
ALTER TABLE events ADD COLUMN data TEXT NOT NULL DEFAULT '';
UPDATE events SET data = COALESCE((SELECT CAST(b.body AS TEXT) -> '$.data'
	FROM deliveries d JOIN delivery_bodies b ON b.delivery_seq = d.seq
	WHERE d.event_seq = events.seq AND json_valid(CAST(b.body AS TEXT)) LIMIT 1), '');

-- GET /events, newest first, ranged on the timestamp.
CREATE INDEX events_account_occurred ON events (account_id, occurred_at, seq);
-- A webhook's deliveries newest first, ranged on created_at (SPEC §10 list). Written once per
-- delivery: SQLite touches an index on update only when its columns change, and these never do.
CREATE INDEX deliveries_webhook_created ON deliveries (webhook_id, created_at, seq);
-- A webhook's failed deliveries: the failed list and recover walk only them, however much else the
-- webhook has. Written when a delivery fails and when it is recovered.
CREATE INDEX deliveries_webhook_failed ON deliveries (webhook_id, created_at, seq) WHERE state = 'failed';
-- Stats: deliveries that ended in the last 24 h and the last of each outcome, by webhook.
CREATE INDEX deliveries_webhook_ended ON deliveries (webhook_id, state, updated_at) WHERE state IN ('succeeded', 'failed');

-- +goose Down
DROP INDEX deliveries_webhook_ended;
DROP INDEX deliveries_webhook_failed;
DROP INDEX deliveries_webhook_created;
DROP INDEX events_account_occurred;
ALTER TABLE events DROP COLUMN data;
