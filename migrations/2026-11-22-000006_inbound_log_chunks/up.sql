-- The request log of an endpoint is stored in chunks: one row per flush of the
-- endpoint's buffered lines (up to 1 000), the lines a JSON array, oldest first. A row
-- per line cost the single writer a table insert, an index entry and a later delete for
-- every request, about a sixth of its time under webhook load; a chunk costs one of
-- each per flush. Line ids are chunk_id * 10000 + the line's place in its chunk.
CREATE TABLE inbound_log_chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    lines INTEGER NOT NULL,
    body TEXT NOT NULL
);
-- Covers the trim, which walks an endpoint's chunks newest first counting lines.
CREATE INDEX inbound_log_chunks_endpoint ON inbound_log_chunks (endpoint, id, lines);

-- Existing lines move into chunks of at most 1 000, in order; they get new ids.
INSERT INTO inbound_log_chunks (endpoint, lines, body)
SELECT endpoint, count(*), json_group_array(json(line) ORDER BY id)
FROM (
    SELECT endpoint, id,
           (row_number() OVER (PARTITION BY endpoint ORDER BY id) - 1) / 1000 AS part,
           json_object(
               'received_at', replace(received_at, ' ', 'T'),
               'source_ip', source_ip,
               'method', method,
               'status', status,
               'reason', reason,
               'processing_ms', processing_ms,
               'event_ids', json(event_ids)
           ) AS line
    FROM inbound_log
)
GROUP BY endpoint, part
ORDER BY endpoint, part;

DROP TABLE inbound_log;
