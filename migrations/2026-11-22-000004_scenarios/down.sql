DROP TABLE scenario_agents;
DROP TABLE scenarios;
