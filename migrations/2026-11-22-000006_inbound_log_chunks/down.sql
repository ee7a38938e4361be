CREATE TABLE inbound_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    source_ip TEXT,
    method TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT,
    processing_ms BIGINT NOT NULL,
    event_ids TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX inbound_log_endpoint ON inbound_log (endpoint, id);

-- A line is an object, or (written since the migration events_indexes) an array of
-- the same fields in this order.
INSERT INTO inbound_log (id, endpoint, received_at, source_ip, method, status, reason,
                         processing_ms, event_ids)
SELECT c.id * 10000 + j.key, c.endpoint,
       replace(coalesce(json_extract(j.value, '$.received_at'), json_extract(j.value, '$[0]')), 'T', ' '),
       coalesce(json_extract(j.value, '$.source_ip'), json_extract(j.value, '$[1]')), coalesce(json_extract(j.value, '$.method'), json_extract(j.value, '$[2]')),
       coalesce(json_extract(j.value, '$.status'), json_extract(j.value, '$[3]')), coalesce(json_extract(j.value, '$.reason'), json_extract(j.value, '$[4]')),
       coalesce(json_extract(j.value, '$.processing_ms'), json_extract(j.value, '$[5]')),
       json(coalesce(json_extract(j.value, '$.event_ids'), json_extract(j.value, '$[6]')))
FROM inbound_log_chunks AS c, json_each(c.body) AS j
ORDER BY c.id, j.key;

DROP TABLE inbound_log_chunks;
