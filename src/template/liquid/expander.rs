//! Where `uri_expand` asks the network: Huginn's filter follows up to `limit` HEAD
//! redirects. Rendering is synchronous and the template layer makes no requests of its
//! own, so a hub gives its renderings an [`UriExpander`] (the delivery engine's guarded
//! client, see `delivery::expand`) through the owner's [`super::CredentialSource`], which
//! is what a rendering may reach; without one (validation, subscriptions, unit tests) the
//! filter gives the normalised URL, as Huginn does when a URL does not redirect.

use std::sync::Arc;
use std::time::Duration;

/// Follows a URL's redirects: at most `limit` HEAD requests, and no longer than `within`.
pub trait UriExpander: Send + Sync {
    /// The URL the redirects lead to, or where they stopped (an error, no redirect, the
    /// limit, the time): never an error, as Huginn's filter.
    fn expand(&self, url: &str, limit: usize, within: Duration) -> String;
}

/// The rendering's expander, read by the filter.
#[derive(Default)]
pub(super) struct Expander(pub Option<Arc<dyn UriExpander>>);
