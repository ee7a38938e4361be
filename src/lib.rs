//! muninn: a self-hosted automation hub. Webhooks come in and become durable events,
//! events pass through a graph of agents, and leave as signed webhooks and feeds.
//!
//! # Map
//!
//! | module | owns |
//! |---|---|
//! | [`server`](run) | wiring at start: store, hub, HTTP server, signals, shutdown |
//! | [`http`] | actix-web: public routes, `/api` handlers, auth, `ApiError` |
//! | [`hub`] | the supervisor: registry of actor addresses, Router, Clock, startup |
//! | [`agents`] | the agent types (one file each), `AgentActor`, schedules, scenarios |
//! | [`accounts`] | users, API tokens (and authenticating them), users' credentials |
//! | [`endpoints`] | inbound: web-request URLs and `/webhook/{token}`, guard, signatures |
//! | [`delivery`] | outbound: subscriptions, retry policy, circuit breaker, signer |
//! | [`feeds`] | `data_output` feeds: options, RSS/JSON rendering, cache |
//! | [`telemetry`] | one entry point for metrics and the console's statistics |
//! | [`store`] | SQLite through diesel: schema, queries per table, group-commit writer |
//! | [`options`], [`ops`] | agent option readers (Huginn's `boolify`); logging, metrics, systemd |
//! | [`template`], [`config`] | the Liquid/tera sandbox; the config file, env and defaults |
//! | [`time`], [`net`], [`event_types`], [`jsonpath`], [`secrets`], [`sandbox`] | leaves: timestamps, IP nets and header styles, the event-type catalog, bounded JSONPath, sealing and constant-time compare, the child-process sandbox for user code |
//! | [`agent_kind`] | leaf: the agent types as a type (`Kind`), for every layer |
//! | [`ids`] | leaf: one id type per table (`AgentId`, `SubscriptionId`, ...), stored as `BIGINT` |
//!
//! # Dependency direction
//!
//! ```text
//! server → http → hub → {agents, accounts} → {endpoints, delivery, feeds, mail}
//!        → telemetry → store
//!        → {options, ops} → {template, config} → leaves
//! ```
//!
//! A module imports only modules to its right; subsystems never import `agents`, `hub`
//! or `http`. Where a lower layer needs something from above, it takes an address or a
//! callback (e.g. `endpoints::incoming::AgentExists`). `tests/layering.rs` enforces the
//! direction. See DESIGN.md for the design.

pub mod accounts;
pub mod agent_kind;
pub mod agents;
pub mod cluster;
pub mod config;
pub mod delivery;
pub mod endpoints;
pub mod event_types;
pub mod feeds;
pub mod http;
pub mod hub;
pub mod ids;
pub mod jsonpath;
pub mod mail;
pub mod net;
pub mod ops;
pub mod options;
pub mod sandbox;
pub mod secrets;
mod server;
pub mod store;
pub mod telemetry;
pub mod template;
pub mod time;

pub use config::Config;
pub use server::{RunError, run};
