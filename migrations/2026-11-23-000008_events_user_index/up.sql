-- Events are no longer indexed by user, except those without an agent. Under webhook
-- load that index cost every commit one or two WAL pages of its own (of six), and
-- with synchronous=NORMAL about a tenth of the ingest rate.
--
-- What it served, and how it is served now:
-- * a user's event listing (GET /api/events for a non-admin) walks the events by id,
--   newest or oldest first as asked, and keeps the user's: as fast as before for a
--   user whose events are among the recent ones, slower for a quiet user of a busy
--   hub;
-- * a user's event count (/worker_status) counts the events of the user's agents
--   (events_agent_id) and the user's events without an agent (this index).
DROP INDEX events_user_id;
CREATE INDEX events_user_id_agentless ON events (user_id, id) WHERE agent_id IS NULL;
