-- +goose Up
-- Formats, custom headers and the per-webhook rate limit (SPEC §12). headers is a JSON object of
-- name → value, sealed like the secrets when an encryption key is set ('' means none). rate_limit is
-- the most attempts started per second (0: no limit); rate_tat is its GCRA theoretical arrival time
-- in milliseconds, kept here so that every process's claims share one budget.
ALTER TABLE webhooks ADD COLUMN format TEXT NOT NULL DEFAULT 'json';
ALTER TABLE webhooks ADD COLUMN headers TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN rate_limit INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN rate_tat INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE webhooks DROP COLUMN rate_tat;
ALTER TABLE webhooks DROP COLUMN rate_limit;
ALTER TABLE webhooks DROP COLUMN headers;
ALTER TABLE webhooks DROP COLUMN format;
