-- +goose Up
-- Claims go webhook by webhook (deliveries_webhook_due) since the fair share of SPEC §10: the
-- queue-wide due index was written by every delivery's insert, claim and completion and read by none.
DROP INDEX deliveries_due;

-- +goose Down
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, seq) WHERE state = 'pending';
