//! The integration tests, one binary (`cargo test --test it`): each file beside this
//! one is a module, and `common/` holds what they share (TestHub, sinks, fake servers,
//! process helpers). One binary links once, where one per file linked ~60 times.
//!
//! Run one file's tests with its module name as the filter:
//! `cargo test --test it inbound::` (or one test: `cargo test --test it inbound::name`).
//!
//! A new test file goes here as `tests/it/foo.rs` with `mod foo;` below (in order), and
//! takes the shared helpers with `use crate::common;` (a file of its own binary would
//! say `mod common;`); a file's `include_str!` paths are relative to this folder.
//!
//! The tests share one process: none may set environment variables or the current
//! directory (pass them to a child `Command` instead). The hub's metrics are counted
//! process-wide, so `tests/metrics.rs`, which reads exact counts, stays a binary of its
//! own (with `common` through `#[path]`); tests here may only read counts that grow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod api_errors;
mod body_limits;
mod circuit_reset;
mod cli;
mod cli_api;
mod cluster;
mod cluster_sync;
mod cluster_view;
mod console_api;
mod contracts;
mod contracts_s32;
mod copy_db;
mod crash_safety;
mod credentials;
mod credentials_leak;
mod durability;
mod email_agents;
mod fanout;
mod fanout_restart;
mod feed_request_log;
mod feeds;
mod file_agents;
mod fixtures;
mod forward;
mod hostile_jsonpath;
mod hostile_s30;
mod hostile_s32;
mod http_status;
mod ids;
mod imap_folder_agent;
mod inbound;
mod insecure_agents;
mod jabber_agent;
mod java_script_agent;
mod key_value_store;
mod layering;
mod liquid_agents;
mod liquid_output;
mod log_output;
mod logic_agents;
mod migrations;
mod notify_agents;
mod openapi;
mod openapi_bodies;
mod outbound;
mod pagination;
mod post_agent;
mod postgres_hub;
mod postgres_nodes;
mod postgres_restart;
mod postgres_store;
mod propagation;
mod resilience;
mod restart_delivery;
mod rss_agent;
mod safe_defaults;
mod scenario_import;
mod scenarios;
mod scoped_reads;
mod secrets_at_rest;
mod sentiment;
mod shutdown;
mod signals;
mod source_shape;
mod standard_v1a;
mod target_guard;
mod template_sandbox;
mod tokens;
mod website_agent;
mod wild_end_to_end;
mod wild_scenarios;
mod worker_status;
