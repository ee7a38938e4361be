-- Several nodes on one database (issue 19). Every write that changes a subscription
-- sets its `updated_at`, which each node compares every heartbeat with the one it
-- runs; a circuit closed by hand on a node that does not send the subscription is
-- also counted here, so the node that sends it closes its live breaker too.
CREATE TABLE subscription_circuit_resets (
    subscription_id BIGINT PRIMARY KEY NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    resets BIGINT NOT NULL
);
-- The process running as this node id (random, new at every start): a second process
-- started with the same node id is refused while the first one beats, and a process
-- whose row another one took stops owning anything.
ALTER TABLE nodes ADD COLUMN instance TEXT NOT NULL DEFAULT '';
