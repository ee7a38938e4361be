-- Back to AUTOINCREMENT ids and counts kept in every commit: count what the Writer
-- had not counted yet, and make the sequence start above every reserved id.
UPDATE agents SET
    events_count = (SELECT count(*) FROM events WHERE agent_id = agents.id),
    last_event_at = CASE
        WHEN (SELECT max(created_at) FROM events WHERE agent_id = agents.id)
             > coalesce(last_event_at, '')
        THEN (SELECT max(created_at) FROM events WHERE agent_id = agents.id)
        ELSE last_event_at
    END;

CREATE TABLE events_autoincrement (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    agent_id INTEGER,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    target_agent_id BIGINT
);
INSERT INTO events_autoincrement
SELECT id, user_id, agent_id, event_type, payload, created_at, expires_at, target_agent_id
FROM events ORDER BY id;
DROP TABLE events;
ALTER TABLE events_autoincrement RENAME TO events;
DELETE FROM sqlite_sequence WHERE name = 'events';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'events', max(event_ids_reserved, coalesce((SELECT max(id) FROM events), 0))
FROM writer_marks;
CREATE INDEX events_agent_id ON events (agent_id, id);
CREATE INDEX events_user_id ON events (user_id, id);
CREATE INDEX events_expires_at ON events (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX events_target_agent_id ON events (target_agent_id, id) WHERE target_agent_id IS NOT NULL;

DROP TABLE writer_marks;
