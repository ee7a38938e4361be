//! A request an agent prepared (a post agent's), as the delivery engine reads it back
//! from its delivery row, and the hook through which the agent hears the final
//! response. The engine never looks inside `emit`: it is the agent's note to itself,
//! handed back to the hook with the response.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::client::Sent;
use crate::store::events::NewEvent;

/// The stored text's shape (the agent writes it; unknown fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct StoredRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Set when the agent wants to hear the response; opaque here.
    #[serde(default)]
    pub emit: Option<Value>,
}

type HookFn = dyn Fn(&Value, &Sent) -> Option<NewEvent> + Send + Sync;

/// Turns a final response into the event the agent emits, given the agent's `emit`
/// note. Installed by whoever starts the delivery engine (the hub, from the post agent).
#[derive(Clone)]
pub struct ResponseHook(Arc<HookFn>);

impl ResponseHook {
    pub fn new(f: impl Fn(&Value, &Sent) -> Option<NewEvent> + Send + Sync + 'static) -> Self {
        ResponseHook(Arc::new(f))
    }

    pub fn event(&self, emit: &Value, sent: &Sent) -> Option<NewEvent> {
        (self.0)(emit, sent)
    }
}

impl std::fmt::Debug for ResponseHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseHook")
    }
}
