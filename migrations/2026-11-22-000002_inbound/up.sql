-- Inbound: incoming webhooks (the AGiXT shape, reached at /webhook/{token}), their
-- request log and idempotency keys; and a durable route for events addressed to one
-- agent rather than flowing along a link.

-- An event delivered straight to one agent (an incoming webhook's event). The agent's
-- catch-up reads these as well as its linked sources' events, so an acknowledged
-- request reaches its agent even after a crash.
ALTER TABLE events ADD COLUMN target_agent_id BIGINT;
CREATE INDEX events_target_agent_id ON events (target_agent_id, id) WHERE target_agent_id IS NOT NULL;

CREATE TABLE incoming_webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    -- The token is the credential of the URL; it is kept as issued because the API
    -- shows the URL again (AGiXT does the same).
    token TEXT NOT NULL UNIQUE,
    -- After a rotation the previous token keeps working until previous_expires_at.
    previous_token TEXT,
    previous_expires_at TIMESTAMP,
    is_active BOOLEAN NOT NULL DEFAULT 1,
    transform_template TEXT,
    -- Requests per minute; NULL uses [inbound] default_rate_limit_per_minute.
    rate_limit BIGINT,
    -- JSON array of addresses and CIDR ranges; NULL or [] allows every address.
    allowed_ips TEXT,
    -- JSON {scheme, secret, header?, tolerance_seconds?}; never shown in logs.
    signature TEXT,
    max_body_bytes BIGINT,
    -- JSON object of headers added to every answer and to the CORS preflight.
    response_headers TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX incoming_webhooks_user_id ON incoming_webhooks (user_id, id);
CREATE INDEX incoming_webhooks_agent_id ON incoming_webhooks (agent_id);

-- One row per request to an endpoint, kept to a bounded number per endpoint.
-- endpoint is "incoming:<id>" or "agent:<id>".
CREATE TABLE inbound_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    source_ip TEXT,
    method TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT,
    processing_ms BIGINT NOT NULL,
    event_ids TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX inbound_log_endpoint ON inbound_log (endpoint, id);

-- Running totals per endpoint and outcome ("accepted" or a rejection reason), so the
-- statistics survive log retention.
CREATE TABLE inbound_stats (
    endpoint TEXT NOT NULL,
    outcome TEXT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    total_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint, outcome)
);

CREATE TABLE idempotency_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    content_type TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    UNIQUE (endpoint, idem_key)
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
