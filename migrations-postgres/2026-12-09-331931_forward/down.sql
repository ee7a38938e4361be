DROP TABLE node_requests;
