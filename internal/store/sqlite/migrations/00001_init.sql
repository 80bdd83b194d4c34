-- +goose Up
-- Times are INTEGER Unix milliseconds. Every table has an integer seq: lists page newest first by it.

CREATE TABLE accounts (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    seq        INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    key_hash   BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE webhooks (
    seq                         INTEGER PRIMARY KEY,
    id                          TEXT NOT NULL UNIQUE,
    account_id                  TEXT NOT NULL REFERENCES accounts (id),
    name                        TEXT NOT NULL,
    url                         TEXT NOT NULL,
    events                      TEXT NOT NULL, -- JSON array
    is_active                   INTEGER NOT NULL,
    secret                      TEXT NOT NULL, -- sealed when an encryption key is set
    previous_secret             TEXT NOT NULL DEFAULT '',
    previous_secret_expires_at  INTEGER NOT NULL DEFAULT 0,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    deleted_at                  INTEGER
);
CREATE INDEX webhooks_account ON webhooks (account_id, seq) WHERE deleted_at IS NULL;

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    type        TEXT NOT NULL,
    occurred_at INTEGER NOT NULL
);
-- Retention pruning finds old events here instead of scanning the table.
CREATE INDEX events_occurred ON events (occurred_at);

-- deliveries is the queue. A pending delivery is due at next_attempt_at; a claim leases it by moving
-- next_attempt_at (and locked_until) to the end of the lease, so a crashed worker's deliveries fall
-- due again by themselves.
CREATE TABLE deliveries (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id),
    event_id        TEXT NOT NULL,
    -- The event's seq, from event_id when the delivery is queued: the key of deliveries_event. Events
    -- are queued in order, so its index grows at one end; an index of the random event_id took a
    -- page write per delivery.
    event_seq       INTEGER NOT NULL REFERENCES events (seq),
    event_type      TEXT NOT NULL,
    body            BLOB NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    retries         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- The claim's indexes hold pending rows only, so finished history never slows a claim.
-- deliveries_due is the due order, exactly the claim's ORDER BY; it carries webhook_id so that
-- skipping the webhooks a claim excludes reads the index alone, never the rows.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, seq, webhook_id) WHERE state = 'pending';
-- deliveries_webhook_due is the due order of each webhook: a claim that excludes webhooks finds the
-- webhooks with pending deliveries and the first due of each here, however deep an excluded
-- webhook's backlog; pausing a webhook finds its pending deliveries here too.
CREATE INDEX deliveries_webhook_due ON deliveries (webhook_id, next_attempt_at, seq) WHERE state = 'pending';
-- Held deliveries: by webhook to resume or delete it, by age to expire them.
CREATE INDEX deliveries_webhook_held ON deliveries (webhook_id) WHERE state = 'held';
CREATE INDEX deliveries_held ON deliveries (created_at) WHERE state = 'held';
CREATE INDEX deliveries_event ON deliveries (event_seq);
-- Retention pruning finds finished deliveries by age here instead of scanning the table.
CREATE INDEX deliveries_finished ON deliveries (updated_at) WHERE state IN ('succeeded', 'failed', 'cancelled');

CREATE TABLE attempts (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    delivery_id      TEXT NOT NULL,
    -- The delivery's seq, from delivery_id when the attempt is logged: the key of attempts_delivery
    -- and of the join to the delivery. Attempts are logged in about the order their deliveries were
    -- queued, so its index grows at one end; an index of the random delivery_id took a page write
    -- per attempt.
    delivery_seq     INTEGER NOT NULL REFERENCES deliveries (seq),
    webhook_id       TEXT NOT NULL,
    account_id       TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    number           INTEGER NOT NULL,
    succeeded        INTEGER NOT NULL,
    status_code      INTEGER NOT NULL,
    error            TEXT NOT NULL,
    response_body    TEXT NOT NULL,
    response_time_ms INTEGER NOT NULL,
    request_headers  TEXT NOT NULL, -- JSON object
    created_at       INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL -- 0 when none
);
CREATE INDEX attempts_webhook ON attempts (webhook_id, seq);
CREATE INDEX attempts_created ON attempts (created_at);
CREATE INDEX attempts_delivery ON attempts (delivery_seq);

CREATE TABLE proposals (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    name             TEXT NOT NULL,
    client_name      TEXT NOT NULL,
    client_email     TEXT,
    requirements     TEXT,
    currency         TEXT NOT NULL,
    line_items       TEXT NOT NULL, -- JSON array, prices in minor units
    total_minor      INTEGER NOT NULL,
    status           TEXT NOT NULL,
    share_token      TEXT UNIQUE,
    responded_at     INTEGER,
    revision_comment TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX proposals_account ON proposals (account_id, seq);

CREATE TABLE lead_sessions (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    channel     TEXT NOT NULL,
    channel_id  TEXT NOT NULL,
    client_name TEXT NOT NULL,
    brief       TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX lead_sessions_account ON lead_sessions (account_id, seq);

-- Web UI sessions: the cookie holds a random id; only its SHA-256 is stored.
CREATE TABLE ui_sessions (
    id_hash    BLOB PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
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
