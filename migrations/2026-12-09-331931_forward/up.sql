-- An API action that needs an agent's or a webhook's running actor (run now, clear
-- memory, post to a manual_event agent, test send, reset the circuit), asked on a node
-- that does not run it (issue 19). The asking node inserts the request; the node that
-- runs the actor takes it (`taken_by`), carries it out and writes `answer` (JSON); the
-- asking node reads the answer and deletes the row. Rows nobody deleted (the asking
-- node died) are pruned after a minute. Only PostgreSQL hubs (several nodes) use it;
-- a SQLite hub is one node, but the schema means the same on both.
CREATE TABLE node_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    resource TEXT NOT NULL,
    action TEXT NOT NULL,
    argument TEXT NOT NULL,
    asked_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    taken_by TEXT,
    answer TEXT
);
