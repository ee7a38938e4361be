//! The `agent.*` system events the workflows record, inside the write they report.
//!
//! The catalog still lives in `hub::event_types`; this is the agents service's only
//! path to it, so when the catalog moves to a leaf module (issue 18, item 1) only this
//! line changes and the service imports nothing above it.

pub(super) use crate::hub::event_types::{
    AGENT_CREATED, AGENT_DELETED, AGENT_DISABLED, AGENT_ENABLED, AGENT_UPDATED, agent_summary,
    record,
};
