-- Email agents: a user's address (where mail goes when an agent names no recipients,
-- as Huginn's user.email) and the durable outbox the mail actor sends from.
ALTER TABLE users ADD COLUMN email TEXT;

-- One mail owed to one recipient (recipient NULL: the owner's address, read when sent).
-- `message` is the rendered mail as sealed JSON: it holds rendered options, so it may
-- hold the owner's credential values. Sent rows are deleted; dead rows stay to be seen.
CREATE TABLE mail_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    event_id BIGINT,
    message TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);
CREATE INDEX mail_outbox_agent ON mail_outbox (agent_id, id);
