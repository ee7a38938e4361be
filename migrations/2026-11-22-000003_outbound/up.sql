-- Outgoing webhooks: subscriptions, the deliveries they are owed (the outbox, written
-- in the same transaction as the event), and every attempt made.

CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    url TEXT NOT NULL,
    -- JSON array of event-type patterns ("agent.*", "*").
    event_types TEXT NOT NULL,
    agent_id BIGINT,
    -- JSON: an object (field -> value) or a list of {field, operator, value}; NULL for none.
    filters TEXT,
    -- JSON object of extra request headers.
    headers TEXT NOT NULL DEFAULT '{}',
    payload_template TEXT,
    signature_scheme TEXT NOT NULL DEFAULT 'hex',
    signature_header TEXT,
    -- JSON list of {"secret": "...", "expires_at": "..." or null}, newest first.
    secrets TEXT NOT NULL DEFAULT '[]',
    retry_count INTEGER NOT NULL DEFAULT 3,
    retry_delay_ms BIGINT NOT NULL DEFAULT 60000,
    max_retry_delay_ms BIGINT NOT NULL DEFAULT 3600000,
    -- JSON list of delays in milliseconds; replaces retry_count/retry_delay when set.
    retry_schedule TEXT,
    timeout_ms BIGINT NOT NULL DEFAULT 30000,
    rate_limit INTEGER,
    rate_limit_period_ms BIGINT NOT NULL DEFAULT 1000,
    max_in_flight INTEGER NOT NULL DEFAULT 8,
    ordered BOOLEAN NOT NULL DEFAULT 0,
    is_active BOOLEAN NOT NULL DEFAULT 1,
    paused BOOLEAN NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    failure_threshold INTEGER NOT NULL DEFAULT 5,
    circuit_cooldown_ms BIGINT NOT NULL DEFAULT 300000,
    circuit_state TEXT NOT NULL DEFAULT 'closed',
    circuit_opened_at TIMESTAMP,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX subscriptions_user_id ON subscriptions (user_id);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    event_id BIGINT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    -- pending | retrying | delivered | dead
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- failures that count against the retry policy (a Retry-After wait does not)
    failures INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP
);
CREATE INDEX deliveries_due ON deliveries (subscription_id, status, next_attempt_at);
CREATE INDEX deliveries_status ON deliveries (status, id);
CREATE INDEX deliveries_event_id ON deliveries (event_id);

CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    subscription_id BIGINT NOT NULL,
    attempt_number INTEGER NOT NULL,
    started_at TIMESTAMP NOT NULL,
    duration_ms BIGINT NOT NULL,
    request_headers TEXT NOT NULL,
    request_body TEXT NOT NULL,
    response_status INTEGER,
    response_excerpt TEXT,
    error TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);
CREATE INDEX delivery_attempts_subscription ON delivery_attempts (subscription_id, id);
