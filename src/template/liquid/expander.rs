//! Where `uri_expand` asks the network: Huginn's filter follows up to `limit` HEAD
//! redirects. Rendering is synchronous and the template layer makes no requests of its
//! own, so the hub installs an [`UriExpander`] (the delivery engine's guarded client,
//! see `delivery::expand`) when it starts; without one (validation, unit tests) the
//! filter gives the normalised URL, as Huginn does when a URL does not redirect.
//!
//! One per process, because one hub runs per process; a later start replaces it (test
//! binaries start several hubs with the same guard settings).

use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Follows a URL's redirects: at most `limit` HEAD requests, and no longer than `within`.
pub trait UriExpander: Send + Sync {
    /// The URL the redirects lead to, or where they stopped (an error, no redirect, the
    /// limit, the time): never an error, as Huginn's filter.
    fn expand(&self, url: &str, limit: usize, within: Duration) -> String;
}

static EXPANDER: RwLock<Option<Arc<dyn UriExpander>>> = RwLock::new(None);

/// Installs the expander renderings use from now on.
pub fn install(expander: Arc<dyn UriExpander>) {
    // A panic while holding the lock cannot leave the slot half-written (one store).
    *EXPANDER.write().unwrap_or_else(|p| p.into_inner()) = Some(expander);
}

pub(super) fn current() -> Option<Arc<dyn UriExpander>> {
    EXPANDER.read().unwrap_or_else(|p| p.into_inner()).clone()
}
