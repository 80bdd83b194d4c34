-- +goose Up
-- Test events and their deliveries are marked: a test is attempted once, by the request that sends it,
-- and never claimed by a dispatcher, not even after a crash; events lists leave tests out.
ALTER TABLE events ADD COLUMN test BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE deliveries ADD COLUMN test BOOLEAN NOT NULL DEFAULT false;
UPDATE events SET test = true WHERE type = 'test';
UPDATE deliveries SET test = true WHERE event_type = 'test';
-- The claim's indexes leave test deliveries out, as the claim does.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, seq) WHERE state = 'pending' AND NOT test;
DROP INDEX deliveries_webhook_due;
CREATE INDEX deliveries_webhook_due ON deliveries (webhook_id, next_attempt_at, seq) WHERE state = 'pending' AND NOT test;
-- A test whose sender died: found by the end of its lease, to be failed.
CREATE INDEX deliveries_test_pending ON deliveries (locked_until) WHERE state = 'pending' AND test;

-- API keys get an id (to list and revoke them) and the time they were last used.
ALTER TABLE api_keys ADD COLUMN id TEXT;
UPDATE api_keys SET id = 'key_' || md5(random()::text || seq::text);
ALTER TABLE api_keys ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX api_keys_id ON api_keys (id);
CREATE INDEX api_keys_account ON api_keys (account_id, seq);
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;

-- A console session names the key it signed in with, so revoking the key ends it. Sessions made
-- before cannot say which key made them: they end here, and their visitors sign in again.
DELETE FROM ui_sessions;
ALTER TABLE ui_sessions ADD COLUMN api_key_id TEXT NOT NULL DEFAULT '';
CREATE INDEX ui_sessions_key ON ui_sessions (api_key_id);

-- +goose Down
DROP INDEX ui_sessions_key;
ALTER TABLE ui_sessions DROP COLUMN api_key_id;
ALTER TABLE api_keys DROP COLUMN last_used_at;
DROP INDEX api_keys_account;
DROP INDEX api_keys_id;
ALTER TABLE api_keys DROP COLUMN id;
DROP INDEX deliveries_test_pending;
DROP INDEX deliveries_webhook_due;
CREATE INDEX deliveries_webhook_due ON deliveries (webhook_id, next_attempt_at, seq) WHERE state = 'pending';
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, seq) WHERE state = 'pending';
ALTER TABLE deliveries DROP COLUMN test;
ALTER TABLE events DROP COLUMN test;
