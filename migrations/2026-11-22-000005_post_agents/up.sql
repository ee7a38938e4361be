-- A post agent sends through the delivery engine: it owns a subscription (hidden from
-- the outgoing-webhooks API), and each of its deliveries carries the request it makes.
CREATE TABLE agent_subscriptions (
    agent_id INTEGER PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
    subscription_id INTEGER NOT NULL UNIQUE REFERENCES subscriptions(id) ON DELETE CASCADE
);
ALTER TABLE deliveries ADD COLUMN request TEXT;
