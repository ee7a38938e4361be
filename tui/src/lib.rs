//! muninn-console: the operator console. It talks to a running hub over its HTTP API
//! only. Split as gitui/bottom are: `app` holds the state, `input` maps keys to
//! actions, `ui` draws from the state (one file per screen), `client` is the data
//! layer, `worker` runs it off the draw loop, and `token` finds the API token.

pub mod api;
pub mod app;
pub mod client;
pub mod input;
pub mod token;
pub mod ui;
pub mod worker;
