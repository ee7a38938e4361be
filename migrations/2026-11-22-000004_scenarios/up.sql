-- Scenarios: named sets of agents, imported and exported in Huginn's format.
CREATE TABLE scenarios (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    guid TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    tag_fg_color TEXT,
    tag_bg_color TEXT,
    icon TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (user_id, guid)
);

CREATE TABLE scenario_agents (
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    PRIMARY KEY (scenario_id, agent_id)
);
CREATE INDEX scenario_agents_agent ON scenario_agents (agent_id);
