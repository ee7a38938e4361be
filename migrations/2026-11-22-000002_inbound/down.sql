DROP TABLE idempotency_keys;
DROP TABLE inbound_stats;
DROP TABLE inbound_log;
DROP TABLE incoming_webhooks;
DROP INDEX events_target_agent_id;
ALTER TABLE events DROP COLUMN target_agent_id;
