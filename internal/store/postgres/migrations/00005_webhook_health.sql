-- +goose Up
-- Endpoint health (SPEC §11), kept by the outcome writes: the failed attempts since the last success,
-- when the first of them failed, and the last error; why and when the service disabled the webhook;
-- and the circuit breaker's probe: while the breaker is open, the lease end of the one attempt in
-- flight (0: none), so that every process together sends one at a time.
ALTER TABLE webhooks ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN failing_since BIGINT;
ALTER TABLE webhooks ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN disabled_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN disabled_at BIGINT;
ALTER TABLE webhooks ADD COLUMN probe_until BIGINT NOT NULL DEFAULT 0;
-- The maintainer's search for webhooks to disable reads only the failing ones.
CREATE INDEX webhooks_failing ON webhooks (failing_since) WHERE failing_since IS NOT NULL AND deleted_at IS NULL;

-- +goose Down
DROP INDEX webhooks_failing;
ALTER TABLE webhooks DROP COLUMN probe_until;
ALTER TABLE webhooks DROP COLUMN disabled_at;
ALTER TABLE webhooks DROP COLUMN disabled_reason;
ALTER TABLE webhooks DROP COLUMN last_error;
ALTER TABLE webhooks DROP COLUMN failing_since;
ALTER TABLE webhooks DROP COLUMN consecutive_failures;
