-- +goose Up
-- The PostgreSQL twin of the SQLite schema. Times are BIGINT Unix milliseconds, as there, so both
-- drivers compare, order and round times identically. Every table has a seq: lists page newest first
-- by it.

CREATE TABLE accounts (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    key_hash   BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE webhooks (
    seq                         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                          TEXT NOT NULL UNIQUE,
    account_id                  TEXT NOT NULL REFERENCES accounts (id),
    name                        TEXT NOT NULL,
    url                         TEXT NOT NULL,
    -- An account has few webhooks and the subscription query finds them through webhooks_account,
    -- so a plain array (tested with = ANY) needs no index of its own.
    events                      TEXT[] NOT NULL,
    is_active                   BOOLEAN NOT NULL,
    secret                      TEXT NOT NULL, -- sealed when an encryption key is set
    previous_secret             TEXT NOT NULL DEFAULT '',
    previous_secret_expires_at  BIGINT NOT NULL DEFAULT 0,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL,
    deleted_at                  BIGINT
);
CREATE INDEX webhooks_account ON webhooks (account_id, seq) WHERE deleted_at IS NULL;

CREATE TABLE events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    type        TEXT NOT NULL,
    occurred_at BIGINT NOT NULL
);
-- Retention pruning looks for old events without deliveries.
CREATE INDEX events_occurred ON events (occurred_at);

-- deliveries is the queue. A pending delivery is due at next_attempt_at; a claim leases it by moving
-- next_attempt_at (and locked_until) to the end of the lease, so a crashed worker's deliveries fall
-- due again by themselves.
CREATE TABLE deliveries (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id),
    event_id        TEXT NOT NULL REFERENCES events (id),
    event_type      TEXT NOT NULL,
    body            BYTEA NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    retries         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
-- The claim's index: due order among pending rows only, exactly the claim's ORDER BY, so a claim
-- reads the first due rows and never scans the backlog.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, seq) WHERE state = 'pending';
CREATE INDEX deliveries_webhook_state ON deliveries (webhook_id, state);
-- Each webhook's due order: claims that skip webhooks at their cap visit the others' backlogs here,
-- and the loose scan of webhooks with pending deliveries walks it.
CREATE INDEX deliveries_webhook_due ON deliveries (webhook_id, next_attempt_at, seq) WHERE state = 'pending';
CREATE INDEX deliveries_held ON deliveries (created_at) WHERE state = 'held';
CREATE INDEX deliveries_event ON deliveries (event_id);
-- Retention pruning looks for finished deliveries by age; without this it scans the whole table.
CREATE INDEX deliveries_finished ON deliveries (updated_at) WHERE state IN ('succeeded', 'failed', 'cancelled');

CREATE TABLE attempts (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    delivery_id      TEXT NOT NULL REFERENCES deliveries (id),
    webhook_id       TEXT NOT NULL,
    account_id       TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    number           INTEGER NOT NULL,
    succeeded        BOOLEAN NOT NULL,
    status_code      INTEGER NOT NULL,
    error            TEXT NOT NULL,
    -- BYTEA, not TEXT: an endpoint may answer with a NUL byte, which TEXT cannot hold, and a failed
    -- insert would fail the whole batch of outcomes.
    response_body    BYTEA NOT NULL,
    response_time_ms BIGINT NOT NULL,
    request_headers  JSONB NOT NULL,
    created_at       BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL -- 0 when none
);
CREATE INDEX attempts_webhook ON attempts (webhook_id, seq);
CREATE INDEX attempts_created ON attempts (created_at);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

CREATE TABLE proposals (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    name             TEXT NOT NULL,
    client_name      TEXT NOT NULL,
    client_email     TEXT,
    requirements     TEXT,
    currency         TEXT NOT NULL,
    line_items       JSONB NOT NULL, -- prices in minor units
    total_minor      BIGINT NOT NULL,
    status           TEXT NOT NULL,
    share_token      TEXT UNIQUE, -- NULL for none: a UNIQUE index admits many NULLs
    responded_at     BIGINT,
    revision_comment TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX proposals_account ON proposals (account_id, seq);

CREATE TABLE lead_sessions (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    channel     TEXT NOT NULL,
    channel_id  TEXT NOT NULL,
    client_name TEXT NOT NULL,
    brief       TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX lead_sessions_account ON lead_sessions (account_id, seq);

-- Web UI sessions: the cookie holds a random id; only its SHA-256 is stored.
CREATE TABLE ui_sessions (
    id_hash    BYTEA PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE settings;
DROP TABLE ui_sessions;
DROP TABLE lead_sessions;
DROP TABLE proposals;
DROP TABLE attempts;
DROP TABLE deliveries;
DROP TABLE events;
DROP TABLE webhooks;
DROP TABLE api_keys;
DROP TABLE accounts;
