DROP INDEX events_user_id_agentless;
CREATE INDEX events_user_id ON events (user_id, id);
