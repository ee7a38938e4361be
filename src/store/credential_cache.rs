//! Users' credentials as renderings read them: `{% credential NAME %}` asks a
//! [`CredentialSource`], and [`source_for`] gives one for the agent owner's credentials.
//!
//! Renderings run on actors that must not wait for the database, so the hub keeps every
//! user's credentials in memory ([`CredentialCache`], loaded when the store opens) —
//! sealed, exactly as stored: a value is opened only when a template asks for it, and
//! the clear text lives only as long as the rendering. Every change goes through
//! [`write`], which refreshes the owner's entry in the same step as the database, so a
//! rendering started after a save answers sees it.
//!
//! Values must never leave through a log, an export or a dry run: [`UserCredentials`]
//! remembers which values it handed out and can [`UserCredentials::redact`] them from
//! text meant for anyone but the template's output.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;

use super::{Conn, Store, StoreError, credentials as table};
use crate::secrets::{Keyring, purpose};

pub use crate::template::liquid::CredentialSource;
use crate::template::liquid::expander::UriExpander;

/// Name -> sealed value, one user's.
type Sealed = HashMap<String, String>;

struct Entry {
    /// The write that produced this entry, in the writer's order.
    seq: u64,
    values: Arc<Sealed>,
}

/// Every user's credentials, sealed, as the database last committed them.
#[derive(Default)]
pub struct CredentialCache {
    users: RwLock<HashMap<i64, Entry>>,
    seq: AtomicU64,
    /// What this hub's renderings ask for `uri_expand` (set once the hub starts).
    uri_expander: RwLock<Option<Arc<dyn UriExpander>>>,
}

impl CredentialCache {
    /// Reads every user's credentials (at start, after the secrets were re-sealed).
    pub fn load(conn: &mut Conn) -> Result<CredentialCache, StoreError> {
        let users = table::all_sealed(conn)?
            .into_iter()
            .map(|(user, values)| {
                (
                    user,
                    Entry {
                        seq: 0,
                        values: Arc::new(values),
                    },
                )
            })
            .collect();
        Ok(CredentialCache {
            users: RwLock::new(users),
            seq: AtomicU64::new(1),
            uri_expander: RwLock::new(None),
        })
    }

    /// Gives this hub's renderings their `uri_expand` (see `delivery::expand`).
    pub fn set_uri_expander(&self, expander: Arc<dyn UriExpander>) {
        *self.uri_expander.write().unwrap_or_else(|p| p.into_inner()) = Some(expander);
    }

    fn uri_expander(&self) -> Option<Arc<dyn UriExpander>> {
        self.uri_expander
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// One user's credentials as they are now; later saves do not change it.
    fn snapshot(&self, user_id: i64) -> Arc<Sealed> {
        let users = self.users.read().unwrap_or_else(|p| p.into_inner());
        users
            .get(&user_id)
            .map_or_else(Arc::default, |e| e.values.clone())
    }

    /// Takes `values` as `user_id`'s credentials unless an entry from a later write is
    /// already there (two saves' answers may arrive in either order).
    fn install(&self, user_id: i64, seq: u64, values: Sealed) {
        let mut users = self.users.write().unwrap_or_else(|p| p.into_inner());
        match users.get(&user_id) {
            Some(e) if e.seq > seq => {}
            _ => {
                users.insert(
                    user_id,
                    Entry {
                        seq,
                        values: Arc::new(values),
                    },
                );
            }
        }
    }
}

/// Runs `f` (a change to `user_id`'s credentials) in the writer and, once it has
/// committed, refreshes the user's cached credentials from what that write saw.
///
/// The sequence number is taken on the writer's thread, inside the write: writes run
/// there one after another, so a higher number always means a later database state.
pub async fn write<T, F>(store: &Store, user_id: i64, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut Conn) -> Result<T, StoreError> + Send + 'static,
{
    let cache = store.credentials().clone();
    let (out, seq, values) = store
        .writer()
        .write(move |c, _| {
            let out = f(c)?;
            let values = table::sealed_by_name(c, user_id)?;
            Ok((out, cache.seq.fetch_add(1, Ordering::SeqCst), values))
        })
        .await?;
    store.credentials().install(user_id, seq, values);
    Ok(out)
}

/// One user's credentials for one rendering (or a few close together): a snapshot
/// taken when it is made, opened on demand.
pub struct UserCredentials {
    user_id: i64,
    keys: Arc<Keyring>,
    sealed: Arc<Sealed>,
    /// (name, value) of every value handed out, for [`UserCredentials::redact`].
    handed_out: Mutex<Vec<(String, String)>>,
    uri_expander: Option<Arc<dyn UriExpander>>,
}

impl UserCredentials {
    /// The credentials of `user_id` as the store holds them now.
    pub fn of(store: &Store, user_id: i64) -> UserCredentials {
        UserCredentials {
            user_id,
            keys: store.keys().clone(),
            sealed: store.credentials().snapshot(user_id),
            handed_out: Mutex::new(Vec::new()),
            uri_expander: store.credentials().uri_expander(),
        }
    }

    /// The values handed out so far, longest first (so a value that contains another
    /// is replaced whole).
    fn handed_out(&self) -> Vec<(String, String)> {
        let mut v = self
            .handed_out
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        v.sort_by_key(|b| std::cmp::Reverse(b.1.len()));
        v
    }

    /// `text` with every value this source handed out replaced by `[credential NAME]`:
    /// for dry-run answers and log lines, which are shown where the template's output
    /// itself would not be.
    pub fn redact(&self, text: &str) -> String {
        redact_with(&self.handed_out(), text)
    }

    /// `text` with every one of this user's values replaced by `[credential NAME]`,
    /// handed out or not: for text whose rendering this source did not see (agent log
    /// lines written after several renders).
    pub fn redact_all(&self, text: &str) -> String {
        if self.sealed.is_empty() {
            return text.to_string();
        }
        let mut all: Vec<(String, String)> = self
            .sealed
            .iter()
            .filter_map(|(name, sealed)| {
                let value = self.keys.open(purpose::USER_CREDENTIALS, sealed).ok()?;
                Some((name.clone(), value))
            })
            .collect();
        all.sort_by_key(|b| std::cmp::Reverse(b.1.len()));
        redact_with(&all, text)
    }

    /// [`UserCredentials::redact`] on every string (and key) of a JSON value.
    pub fn redact_json(&self, value: &mut Value) {
        let out = self.handed_out();
        if !out.is_empty() {
            redact_value(&out, value);
        }
    }
}

fn redact_with(out: &[(String, String)], text: &str) -> String {
    let mut text = text.to_string();
    for (name, value) in out {
        if !value.is_empty() && text.contains(value.as_str()) {
            text = text.replace(value.as_str(), &format!("[credential {name}]"));
        }
    }
    text
}

fn redact_value(out: &[(String, String)], value: &mut Value) {
    match value {
        Value::String(s) => *s = redact_with(out, s),
        Value::Array(items) => items.iter_mut().for_each(|v| redact_value(out, v)),
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut v) in old {
                redact_value(out, &mut v);
                map.insert(redact_with(out, &k), v);
            }
        }
        _ => {}
    }
}

impl CredentialSource for UserCredentials {
    fn names(&self) -> Vec<String> {
        self.sealed.keys().cloned().collect()
    }

    fn uri_expander(&self) -> Option<Arc<dyn UriExpander>> {
        self.uri_expander.clone()
    }

    fn credential(&self, name: &str) -> Option<String> {
        // Huginn strips the tag's markup; names are stored trimmed.
        let name = name.trim();
        let sealed = self.sealed.get(name)?;
        match self.keys.open(purpose::USER_CREDENTIALS, sealed) {
            Ok(value) => {
                self.handed_out
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((name.to_string(), value.clone()));
                Some(value)
            }
            Err(e) => {
                // Renders as missing; the reason names the key, never the value.
                tracing::warn!(user_id = self.user_id, credential = name, error = %e,
                    "a credential cannot be opened; it renders empty until it is set again");
                None
            }
        }
    }
}

/// The credentials `{% credential NAME %}` reads when an agent of `user_id` renders.
pub fn source_for(store: &Store, user_id: i64) -> Arc<dyn CredentialSource> {
    Arc::new(UserCredentials::of(store, user_id))
}

/// Like [`source_for`], keeping the concrete type for callers that redact what they
/// show (dry runs, log lines).
pub fn user_credentials(store: &Store, user_id: i64) -> Arc<UserCredentials> {
    Arc::new(UserCredentials::of(store, user_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(keys: &Keyring, pairs: &[(&str, &str)]) -> UserCredentials {
        UserCredentials {
            user_id: 1,
            keys: Arc::new(keys.clone()),
            sealed: Arc::new(
                pairs
                    .iter()
                    .map(|(n, v)| (n.to_string(), keys.seal(purpose::USER_CREDENTIALS, v)))
                    .collect(),
            ),
            handed_out: Mutex::new(Vec::new()),
            uri_expander: None,
        }
    }

    #[test]
    fn values_open_on_demand_and_missing_names_are_none() {
        let keys = Keyring::ephemeral();
        let s = source(&keys, &[("api_key", "sk-123"), ("other", "x")]);
        assert_eq!(s.credential("api_key").as_deref(), Some("sk-123"));
        assert_eq!(s.credential(" api_key ").as_deref(), Some("sk-123"));
        assert_eq!(s.credential("nope"), None);
        // A value sealed under another key renders as missing, not as garbage.
        let foreign = source(&Keyring::ephemeral(), &[("api_key", "v")]);
        let moved = UserCredentials {
            sealed: foreign.sealed.clone(),
            ..source(&keys, &[])
        };
        assert_eq!(moved.credential("api_key"), None);
    }

    #[test]
    fn redaction_covers_what_was_handed_out_only() {
        let keys = Keyring::ephemeral();
        let s = source(
            &keys,
            &[
                ("long", "secret-abc"),
                ("short", "secret"),
                ("unused", "zzz"),
            ],
        );
        assert_eq!(
            s.redact("secret-abc zzz"),
            "secret-abc zzz",
            "nothing handed out yet"
        );
        s.credential("short");
        s.credential("long");
        assert_eq!(
            s.redact("a secret-abc b secret zzz"),
            "a [credential long] b [credential short] zzz"
        );
        let mut v = serde_json::json!({"h": ["Bearer secret-abc"], "secret": 1});
        s.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"h": ["Bearer [credential long]"], "[credential short]": 1})
        );
    }

    #[test]
    fn an_older_write_does_not_replace_a_newer_entry() {
        let cache = CredentialCache::default();
        let one: Sealed = [("k".to_string(), "new".to_string())].into();
        let two: Sealed = [("k".to_string(), "old".to_string())].into();
        cache.install(7, 5, one);
        cache.install(7, 4, two);
        assert_eq!(cache.snapshot(7)["k"], "new");
        assert!(cache.snapshot(8).is_empty());
    }

    /// A store in `dir` sealing with `keys`.
    fn open_store(dir: &std::path::Path, keys: &Arc<Keyring>) -> Store {
        let mut config = crate::Config::default();
        config.storage.data_dir = dir.to_path_buf();
        Store::open_sealed(
            &config.store_options(),
            keys.clone(),
            Arc::new(crate::store::NoHook),
            Box::new(|_| {}),
        )
        .unwrap()
    }

    async fn save(store: &Store, user: i64, id: Option<i64>, name: &str, value: &str) -> i64 {
        let changes = table::CredentialChanges {
            credential_name: Some(name.into()),
            sealed_value: Some(store.keys().seal(purpose::USER_CREDENTIALS, value)),
            mode: None,
        };
        let saved = write(store, user, move |c| match id {
            None => table::insert(c, user, &changes),
            Some(id) => table::update(c, user, id, &changes),
        })
        .await
        .unwrap();
        match saved {
            table::Saved::Row(r) => r.id,
            other => panic!("{other:?}"),
        }
    }

    #[actix_rt::test]
    async fn sources_see_every_committed_change_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(Keyring::ephemeral());
        let store = open_store(dir.path(), &keys);
        let (a, b) = store
            .writer()
            .write(|c, _| {
                let a = crate::store::users::insert(c, "a", false)?.id;
                Ok((a, crate::store::users::insert(c, "b", false)?.id))
            })
            .await
            .unwrap();
        assert_eq!(source_for(&store, a).credential("k"), None);
        let id = save(&store, a, None, "k", "one").await;
        let during = source_for(&store, a);
        assert_eq!(during.credential("k").as_deref(), Some("one"));
        assert_eq!(source_for(&store, b).credential("k"), None, "a's, not b's");
        save(&store, a, Some(id), "k", "two").await;
        assert_eq!(
            source_for(&store, a).credential("k").as_deref(),
            Some("two")
        );
        assert_eq!(
            during.credential("k").as_deref(),
            Some("one"),
            "a rendering keeps the snapshot it started with"
        );
        save(&store, b, None, "k", "bee").await;
        store.writer().close().await;
        drop(store);

        let store = open_store(dir.path(), &keys);
        assert_eq!(
            source_for(&store, a).credential("k").as_deref(),
            Some("two")
        );
        assert_eq!(
            source_for(&store, b).credential("k").as_deref(),
            Some("bee")
        );
        let gone = write(&store, a, move |c| table::delete(c, a, id))
            .await
            .unwrap();
        assert!(gone);
        assert_eq!(source_for(&store, a).credential("k"), None);
        store.writer().close().await;
    }
}
