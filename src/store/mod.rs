//! Storage: SQLite or PostgreSQL through diesel (see `backend` and `postgres`). Owns the schema, one module of queries per table,
//! the read pool (a `SyncArbiter` of readers) and the single group-commit writer.

pub mod agent_logs;
pub mod agents;
pub mod api_tokens;
pub(crate) mod backend;
mod cached;
pub mod checkpoint;
pub mod claims;
mod connection;
pub mod control_links;
pub mod copy;
pub mod credential_cache;
pub mod credentials;
pub mod deliveries;
pub mod delivery_attempts;
mod error;
pub mod event_totals;
pub mod events;
pub mod files;
pub mod idempotency_keys;
#[cfg(test)]
mod ids_tests;
pub mod inbound_log;
pub mod incoming_webhooks;
pub mod leases;
pub mod links;
pub mod listen;
pub mod mail_outbox;
#[cfg(test)]
mod migration_tests;
pub mod node_load;
pub mod node_requests;
pub mod nodes;
pub mod postgres;
pub mod rate_windows;
mod reader;
pub mod scenarios;
pub mod schema;
pub mod sealed;
pub mod subscriptions;
pub mod system_events;
pub(crate) mod text_enum;
pub mod users;
mod writer;
pub mod writer_marks;

use std::sync::Arc;

use actix::{Addr, SyncArbiter};

use crate::secrets::Keyring;

pub use backend::DbConn;
pub use cached::{Cached, Statement, Value};
pub use connection::{
    Conn, ReadPool, StoreOptions, Synchronous, establish, establish_sqlite, migrate, path_from_url,
};
pub use error::{Answer, StoreError};
pub use reader::{Read, Reader};
pub use writer::{
    CommitSink, Committed, Emitted, EventHook, NoHook, WriteHealth, Writer, WriterStats,
};

/// The handle every other part of the hub uses to reach the database.
#[derive(Clone)]
pub struct Store {
    reader: Addr<Reader>,
    writer: Writer,
    keys: Arc<Keyring>,
    credentials: Arc<credential_cache::CredentialCache>,
    /// On PostgreSQL, where several nodes may share the database.
    on_pg: bool,
}

impl Store {
    /// `open_sealed` with a key that lives only as long as the process: for tests and
    /// tools whose secrets need not outlive it.
    pub fn open(
        opts: &StoreOptions,
        hook: Arc<dyn EventHook>,
        sink: CommitSink,
    ) -> Result<Store, StoreError> {
        Store::open_sealed(opts, Arc::new(Keyring::ephemeral()), hook, sink)
    }

    /// Opens the database, runs migrations, brings the secret columns to `keys`' current
    /// key (see `sealed`), starts the readers and the writer.
    /// Must run inside an actix System (the readers are actors).
    pub fn open_sealed(
        opts: &StoreOptions,
        keys: Arc<Keyring>,
        hook: Arc<dyn EventHook>,
        sink: CommitSink,
    ) -> Result<Store, StoreError> {
        let mut write_conn = establish(opts)?;
        // Only a SQLite file can be deleted or replaced under the hub.
        let watch = opts
            .pg_url
            .is_none()
            .then(|| files::FileWatch::new(&opts.path));
        let ran = migrate(&mut write_conn)?;
        if ran > 0 {
            tracing::info!(migrations = ran, "database migrated");
        }
        let resealed = sealed::reseal_all(&mut write_conn, &keys)?;
        if resealed.converted > 0 {
            tracing::info!(
                values = resealed.converted,
                key_id = keys.current_id(),
                "secrets at rest converted: sealed with the current key, tokens hashed"
            );
        }
        for row in &resealed.unreadable {
            tracing::error!(error = %row, "a stored secret cannot be opened; what uses it stays stopped until it is set again");
        }
        // After the re-sealing, so the cache holds values sealed with the current key.
        let credentials = Arc::new(credential_cache::CredentialCache::load(&mut write_conn)?);
        let pool = connection::read_pool(opts)?;
        // Checkpoints run on a thread of their own, not inside the writer's commits:
        // see `checkpoint` for why and what it measured. SQLite only: PostgreSQL
        // checkpoints on its own.
        if let DbConn::Sqlite(c) = &mut write_conn {
            checkpoint::disable_auto(c)?;
        }
        let reader = SyncArbiter::start(opts.reader_threads.max(1), move || {
            Reader::new(pool.clone())
        });
        let writer = Writer::start(
            write_conn,
            opts.writer_batch_max,
            opts.writer_queue_max,
            hook,
            sink,
            watch,
            opts.pg_url.clone(),
        )?;
        if opts.pg_url.is_none() {
            checkpoint::spawn(opts, Arc::downgrade(writer.stats()))?;
        }
        Ok(Store {
            reader,
            writer,
            keys,
            credentials,
            on_pg: opts.pg_url.is_some(),
        })
    }

    /// The keyring that seals and opens the secrets in the rows.
    pub fn keys(&self) -> &Arc<Keyring> {
        &self.keys
    }

    /// Users' credentials, sealed, as renderings read them (see `credential_cache`).
    pub fn credentials(&self) -> &Arc<credential_cache::CredentialCache> {
        &self.credentials
    }

    /// Runs `f` on a read connection in the reader pool. The future owns what it
    /// needs, so actors can hold it across their own state changes.
    pub fn read<R, F>(
        &self,
        f: F,
    ) -> impl std::future::Future<Output = Result<R, StoreError>> + use<R, F>
    where
        R: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<R, StoreError> + Send + 'static,
    {
        let reader = self.reader.clone();
        async move {
            reader
                .send(Read(Box::new(f)))
                .await
                .map_err(|_| StoreError::WriterGone)?
        }
    }

    /// True on PostgreSQL: several nodes may share the database, so what must hold
    /// across them (inbound rate limits) is kept in it.
    pub fn is_pg(&self) -> bool {
        self.on_pg
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }
}

/// A reader of its own (one thread, its own connection) for work that must not queue
/// behind the hub's reads or writes: a cluster node's heartbeats and leases. On
/// PostgreSQL only; on SQLite every write goes through the one Writer.
pub fn private_reader(opts: &StoreOptions) -> Result<Addr<Reader>, StoreError> {
    let mut one = opts.clone();
    one.reader_threads = 0;
    let pool = connection::read_pool(&one)?;
    Ok(SyncArbiter::start(1, move || Reader::new(pool.clone())))
}

/// Serialises a JSON value for a TEXT column.
pub fn to_json_text(value: &serde_json::Value) -> String {
    value.to_string()
}

/// Parses a TEXT column that holds JSON; `what` names the column in the error.
pub fn from_json_text(text: &str, what: &'static str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::CorruptJson {
        what,
        reason: e.to_string(),
    })
}

/// The text a panic carried, when it was a string (as `panic!`/`expect` make).
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic without a message".into())
}

/// The current time as stored: UTC, naive (diesel's `Timestamp`).
pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// A migrated database in a temporary directory, for unit tests of the store.
#[cfg(test)]
pub(crate) fn test_conn() -> (tempfile::TempDir, Conn) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let mut conn = establish(&config.store_options()).unwrap();
    migrate(&mut conn).unwrap();
    (dir, conn)
}

/// A webhook agent of a new user, for unit tests that need a real owner row.
#[cfg(test)]
pub(crate) fn test_webhook_agent(conn: &mut Conn) -> Result<agents::AgentRow, StoreError> {
    let user = users::insert(conn, &format!("user-{}", rand::random::<u32>()), false)?;
    agents::insert(
        conn,
        &agents::NewAgent {
            user_id: user.id,
            agent_type: "webhook".into(),
            name: "hook".into(),
            options: "{}".into(),
            schedule: None,
            disabled: false,
            keep_events_for: 0,
            propagate_immediately: false,
            guid: None,
        },
    )
}
