DROP INDEX events_root_id;
ALTER TABLE events DROP COLUMN depth;
ALTER TABLE events DROP COLUMN root_id;
