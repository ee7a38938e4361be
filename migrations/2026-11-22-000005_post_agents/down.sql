ALTER TABLE deliveries DROP COLUMN request;
DROP TABLE agent_subscriptions;
