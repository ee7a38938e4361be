-- Event ids come from the Writer instead of AUTOINCREMENT, and agents' events_count
-- and last_event_at are brought up to date about once a second instead of in every
-- commit. Under webhook load every commit wrote the page of sqlite_sequence and the
-- page of the emitting agent's row besides the event's own pages: two of about eight
-- WAL pages a commit, each a write the fsync has to wait for.

-- One row. The Writer never hands out an event id at or below event_ids_reserved
-- unless it read that id's reservation back at start; it moves the mark in blocks, in
-- the same transaction as the events that need it, so an id is never used twice even
-- when the newest events are deleted. Agents' events_count and last_event_at include
-- exactly the events with ids up to events_counted_upto; readers add those above it.
CREATE TABLE writer_marks (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    event_ids_reserved BIGINT NOT NULL,
    events_counted_upto BIGINT NOT NULL
);
INSERT INTO writer_marks (id, event_ids_reserved, events_counted_upto)
VALUES (
    1,
    max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
        coalesce((SELECT max(id) FROM events), 0)),
    coalesce((SELECT max(id) FROM events), 0)
);
-- Counted afresh up to that mark: expiring events did not use to recount their agents.
UPDATE agents SET events_count = (SELECT count(*) FROM events WHERE agent_id = agents.id);

-- The same table without AUTOINCREMENT (SQLite cannot drop it in place).
CREATE TABLE events_by_writer_id (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    agent_id INTEGER,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    target_agent_id BIGINT
);
INSERT INTO events_by_writer_id
SELECT id, user_id, agent_id, event_type, payload, created_at, expires_at, target_agent_id
FROM events ORDER BY id;
DROP TABLE events;
ALTER TABLE events_by_writer_id RENAME TO events;
DELETE FROM sqlite_sequence WHERE name = 'events';
CREATE INDEX events_agent_id ON events (agent_id, id);
CREATE INDEX events_user_id ON events (user_id, id);
CREATE INDEX events_expires_at ON events (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX events_target_agent_id ON events (target_agent_id, id) WHERE target_agent_id IS NOT NULL;
