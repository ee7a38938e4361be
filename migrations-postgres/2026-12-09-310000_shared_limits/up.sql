-- Inbound rate limits shared by every node of one database (issue 19): requests per
-- endpoint per fixed one-minute window. Only PostgreSQL hubs (several nodes) use it;
-- a SQLite hub is one node and limits in memory, but the schema means the same on both.
CREATE TABLE inbound_rate_windows (
    endpoint TEXT NOT NULL,
    window_start TIMESTAMP NOT NULL,
    requests BIGINT NOT NULL,
    PRIMARY KEY (endpoint, window_start)
);
