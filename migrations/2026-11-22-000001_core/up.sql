-- The core tables: users and their API tokens, agents and the links between them,
-- events, and agent logs. Ids are 64-bit and AUTOINCREMENT so an id is never reused:
-- event ids double as the polling cursor of GET /api/events?after=ID.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    is_admin BOOLEAN NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP
);

CREATE TABLE agents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agent_type TEXT NOT NULL,
    name TEXT NOT NULL,
    options TEXT NOT NULL,
    memory TEXT NOT NULL DEFAULT '{}',
    schedule TEXT,
    disabled BOOLEAN NOT NULL DEFAULT 0,
    keep_events_for BIGINT NOT NULL DEFAULT 0,
    propagate_immediately BOOLEAN NOT NULL DEFAULT 1,
    guid TEXT NOT NULL UNIQUE,
    events_count BIGINT NOT NULL DEFAULT 0,
    last_checked_event_id BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    last_check_at TIMESTAMP,
    last_receive_at TIMESTAMP,
    last_event_at TIMESTAMP,
    last_error_at TIMESTAMP,
    last_web_request_at TIMESTAMP
);
CREATE INDEX agents_user_id ON agents (user_id, id);

CREATE TABLE links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    receiver_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    event_id_at_creation BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (source_id, receiver_id)
);
CREATE INDEX links_receiver_id ON links (receiver_id);

CREATE TABLE control_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    controller_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (controller_id, target_id)
);

-- No foreign key on events.agent_id: system events have none, and deleting an agent
-- deletes its events explicitly (one statement) instead of paying a check per insert.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    agent_id INTEGER,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP
);
CREATE INDEX events_agent_id ON events (agent_id, id);
CREATE INDEX events_user_id ON events (user_id, id);
CREATE INDEX events_expires_at ON events (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE agent_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    level INTEGER NOT NULL,
    message TEXT NOT NULL,
    inbound_event_id BIGINT,
    outbound_event_id BIGINT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX agent_logs_agent_id ON agent_logs (agent_id, id);
