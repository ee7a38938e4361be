DROP INDEX events_target_agent_id;
CREATE INDEX events_target_agent_id ON events (target_agent_id, id) WHERE target_agent_id IS NOT NULL;
DROP INDEX events_agent_id;
CREATE INDEX events_agent_id ON events (agent_id, id);
DROP INDEX events_user_id_agentless;
CREATE INDEX events_user_id ON events (user_id, id);
