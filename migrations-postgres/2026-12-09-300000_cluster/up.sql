-- Several nodes on one database (issue 19; on SQLite there is one node, and these
-- tables only name it). A node records that it is alive; a lease gives one resource
-- ("agent:12", "subscription:3") to one node until it expires; a schedule tick is
-- fired once per agent, cluster-wide, even across a failover.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY NOT NULL,
    started_at TIMESTAMP NOT NULL,
    heartbeat_at TIMESTAMP NOT NULL,
    version TEXT NOT NULL
);
CREATE TABLE leases (
    resource TEXT PRIMARY KEY NOT NULL,
    node_id TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX leases_node ON leases (node_id);
CREATE TABLE schedule_ticks (
    agent_id BIGINT PRIMARY KEY NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    fired_at TIMESTAMP NOT NULL
);
-- Which node is sending a delivery, until when (NULL: nobody).
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
ALTER TABLE deliveries ADD COLUMN claim_expires_at TIMESTAMP;
-- The claims a node renews.
CREATE INDEX deliveries_claimed_by ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL;
