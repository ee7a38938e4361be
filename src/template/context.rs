//! The render context every template sees, whichever language it is written in: the
//! top-level variables as JSON, and where `{% credential %}` reads from (Liquid only).
//! Engine-neutral so that agent code does not depend on tera or Liquid types.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::sync::{Arc, LazyLock};

use serde::Serialize;
use serde_json::{Map, Value};

use super::liquid::{CredentialSource, NoCredentials};

static NO_CREDENTIALS: LazyLock<Arc<dyn CredentialSource>> =
    LazyLock::new(|| Arc::new(NoCredentials));

/// A source that has no credentials (subscriptions, transforms, tests, validation).
pub fn no_credentials() -> Arc<dyn CredentialSource> {
    NO_CREDENTIALS.clone()
}

/// Top-level variables (borrowed from a payload when nothing is added) and credentials.
#[derive(Clone)]
pub struct RenderCtx<'a> {
    vars: Cow<'a, Map<String, Value>>,
    credentials: Arc<dyn CredentialSource>,
    /// tera's copy of `vars`, made on the first tera rendering and reused by the next
    /// ones (a subscription payload object renders many leaves with one context).
    tera: OnceCell<tera::Context>,
}

impl Default for RenderCtx<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> RenderCtx<'a> {
    pub fn new() -> Self {
        Self::from_map(Map::new())
    }

    pub fn from_map(vars: Map<String, Value>) -> Self {
        RenderCtx {
            vars: Cow::Owned(vars),
            credentials: no_credentials(),
            tera: OnceCell::new(),
        }
    }

    /// An object's keys become variables (borrowed, not copied); any other value is
    /// available as `value`.
    pub fn of(value: &'a Value) -> Self {
        match value {
            Value::Object(map) => RenderCtx {
                vars: Cow::Borrowed(map),
                credentials: no_credentials(),
                tera: OnceCell::new(),
            },
            other => {
                let mut ctx = Self::new();
                ctx.insert("value", other);
                ctx
            }
        }
    }

    pub fn with_credentials(mut self, credentials: Arc<dyn CredentialSource>) -> Self {
        self.credentials = credentials;
        self
    }

    /// Sets variable `key` (a value that does not serialise becomes null).
    pub fn insert<T: Serialize + ?Sized>(&mut self, key: impl Into<String>, value: &T) {
        let v = serde_json::to_value(value).unwrap_or(Value::Null);
        self.set(key, v);
    }

    /// Sets variable `key` to an owned value without copying it.
    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        self.tera.take();
        self.vars.to_mut().insert(key.into(), value);
    }

    pub fn remove(&mut self, key: &str) {
        self.tera.take();
        self.vars.to_mut().remove(key);
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.vars.contains_key(key)
    }

    pub fn vars(&self) -> &Map<String, Value> {
        &self.vars
    }

    pub fn credentials(&self) -> &dyn CredentialSource {
        &*self.credentials
    }

    /// The same variables as a tera context (tera needs its own copy, made once).
    pub fn tera(&self) -> &tera::Context {
        self.tera.get_or_init(|| {
            let mut ctx = tera::Context::new();
            for (k, v) in self.vars.iter() {
                ctx.insert(k.as_str(), v);
            }
            ctx
        })
    }
}
