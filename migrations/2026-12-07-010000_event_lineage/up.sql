-- An event made by an agent from another event remembers the root event it descends
-- from and how many links it passed, so the propagation budget (agents.max_events_per_root)
-- and the depth cap survive a restart instead of starting afresh. Root events (webhooks,
-- scheduled runs, system events) keep NULL and 0: the hot ingest path writes nothing more
-- to the partial index.
ALTER TABLE events ADD COLUMN root_id BIGINT;
ALTER TABLE events ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
CREATE INDEX events_root_id ON events (root_id) WHERE root_id IS NOT NULL;
