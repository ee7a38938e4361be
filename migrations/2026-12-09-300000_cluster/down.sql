DROP INDEX deliveries_claimed_by;
ALTER TABLE deliveries DROP COLUMN claim_expires_at;
ALTER TABLE deliveries DROP COLUMN claimed_by;
DROP TABLE schedule_ticks;
DROP INDEX leases_node;
DROP TABLE leases;
DROP TABLE nodes;
