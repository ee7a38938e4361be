-- One-time data upgrades that need Rust (not SQL) run at start and record themselves
-- here, so each runs once (see src/hub/upgrade.rs).
CREATE TABLE data_upgrades (
    name TEXT PRIMARY KEY NOT NULL,
    done_at TIMESTAMP NOT NULL
);
