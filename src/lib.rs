//! muninn: a self-hosted automation hub. Webhooks come in and become durable events,
//! events pass through a graph of agents, and leave as signed webhooks and feeds.
//!
//! The crate is laid out by subsystem; see DESIGN.md for the map.

pub mod agents;
pub mod config;
pub mod credentials;
pub mod delivery;
pub mod endpoints;
pub mod feeds;
pub mod http;
pub mod hub;
pub mod jsonpath;
pub mod mail;
pub mod ops;
pub mod secrets;
mod server;
pub mod store;
pub mod template;

pub use config::Config;
pub use server::{RunError, run};
