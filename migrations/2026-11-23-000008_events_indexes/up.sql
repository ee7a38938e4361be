-- Smaller event indexes: every webhook adds an entry to each index of events, and
-- under load each commit wrote one or two WAL pages per index (of about six).
--
-- 1. Events are no longer indexed by user, except those without an agent. What that
--    index served, and how it is served now:
--    * a user's event listing (GET /api/events for a non-admin) walks the events by
--      id, newest or oldest first as asked, and keeps the user's: as fast as before
--      for a user whose events are among the recent ones, slower for a quiet user of
--      a busy hub;
--    * a user's event count (/worker_status) counts the events of the user's agents
--      (events_agent_id) and the user's events without an agent (the new index).
-- 2. The other indexes name their column alone: an index entry ends with the rowid,
--    which is the id, so (agent_id) orders and ranges exactly as (agent_id, id) did,
--    with the id stored once instead of twice. Smaller entries fill a page later, and
--    a full page is what makes SQLite rewrite its neighbours and parent.
DROP INDEX events_user_id;
CREATE INDEX events_user_id_agentless ON events (user_id) WHERE agent_id IS NULL;
DROP INDEX events_agent_id;
CREATE INDEX events_agent_id ON events (agent_id);
DROP INDEX events_target_agent_id;
CREATE INDEX events_target_agent_id ON events (target_agent_id) WHERE target_agent_id IS NOT NULL;
