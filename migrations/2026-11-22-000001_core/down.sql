DROP TABLE agent_logs;
DROP TABLE events;
DROP TABLE control_links;
DROP TABLE links;
DROP TABLE agents;
DROP TABLE api_tokens;
DROP TABLE users;
