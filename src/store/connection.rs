//! Opening the database: SQLite (the path, the pragmas) or PostgreSQL (a URL, see
//! `postgres.rs`), the migrations and the read pool. Every SQLite-specific setting
//! lives here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{CustomizeConnection, HandleError, ManageConnection, Pool, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::StoreError;
use super::backend::DbConn;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

pub type Conn = DbConn;
pub type ReadPool = Pool<Manager>;

pub use crate::config::Synchronous;

fn synchronous_pragma(s: Synchronous) -> &'static str {
    match s {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    }
}

/// Where and how to open the database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The SQLite file; unused on PostgreSQL.
    pub path: PathBuf,
    /// `postgres://...` when the hub runs on PostgreSQL; `None` for SQLite.
    pub pg_url: Option<String>,
    pub synchronous: Synchronous,
    pub busy_timeout: Duration,
    pub reader_threads: usize,
    pub writer_batch_max: usize,
    pub writer_queue_max: usize,
}

pub use crate::config::path_from_url;

// The conversion lives here, not in `config`, so the config stays a leaf that knows
// no subsystem; call sites still read `config.store_options()`.
impl crate::config::Config {
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            path: self.database_path(),
            pg_url: self.postgres_url().map(str::to_owned),
            synchronous: self.storage.synchronous,
            busy_timeout: Duration::from_millis(self.storage.busy_timeout_ms),
            reader_threads: self.storage.reader_threads,
            writer_batch_max: self.storage.writer_batch_max,
            writer_queue_max: self.storage.writer_queue_max,
        }
    }
}

/// `wal_autocheckpoint` is 10 000 pages (about 40 MB of WAL) rather than SQLite's
/// 1 000: the checkpoint runs on the writer thread, inside a commit, and at 1 000
/// pages it ran every second or so under load, rewriting the same hot index pages each
/// time; that was where the p99 of ingest with `synchronous=NORMAL` came from
/// (6 ms -> 2.6 ms at 32 connections in the benchmark).
fn pragmas(sync: Synchronous, busy: Duration) -> String {
    format!(
        "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; \
         PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; \
         PRAGMA wal_autocheckpoint = 10000;",
        busy.as_millis(),
        synchronous_pragma(sync)
    )
}

/// Opens one connection: to PostgreSQL when `opts` names it, else to the SQLite file
/// with the hub's pragmas.
pub fn establish(opts: &StoreOptions) -> Result<Conn, StoreError> {
    match &opts.pg_url {
        Some(url) => Ok(DbConn::Pg(super::postgres::establish_pg(url)?)),
        None => establish_sqlite(opts).map(DbConn::Sqlite),
    }
}

/// Opens the SQLite file `opts.path` with the hub's pragmas.
pub fn establish_sqlite(opts: &StoreOptions) -> Result<SqliteConnection, StoreError> {
    let path = path_string(&opts.path)?;
    if let Some(dir) = opts.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        super::files::prepare_dir(dir, false)?;
    }
    super::files::secure_database_files(&opts.path)?;
    let mut conn = SqliteConnection::establish(&path).map_err(|e| StoreError::Open {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    conn.batch_execute(&pragmas(opts.synchronous, opts.busy_timeout))
        .map_err(|e| StoreError::Open {
            path,
            reason: format!("setting pragmas failed: {e}"),
        })?;
    // WAL mode made the -wal and -shm files; SQLite gives them the database's mode,
    // but ones left by an older version may be looser.
    super::files::secure_database_files(&opts.path)?;
    Ok(conn)
}

fn path_string(path: &Path) -> Result<String, StoreError> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Open {
            path: path.display().to_string(),
            reason: "the path is not valid UTF-8".into(),
        })
}

/// Runs pending migrations (each backend has its own, of the same meaning); returns
/// how many ran.
pub fn migrate(conn: &mut Conn) -> Result<usize, StoreError> {
    match conn {
        DbConn::Pg(c) => super::postgres::migrate_pg(c),
        DbConn::Sqlite(c) => c
            .run_pending_migrations(MIGRATIONS)
            .map(|v| v.len())
            .map_err(|e| StoreError::Migration(e.to_string())),
    }
}

#[derive(Debug)]
struct ReaderPragmas {
    busy: Duration,
    outage: Outage,
}

/// Whether the pool's last attempt to open a connection failed. r2d2's own handler
/// logs an ERROR for every failed attempt, every 2.5 s or sooner while PostgreSQL is
/// down; this logs the outage once (WARN) and the first connection after it (INFO).
/// The pool itself needs no help to recover: it tests each connection as it hands it
/// out (r2d2's `test_on_check_out`), drops the dead ones and opens new ones.
#[derive(Debug, Clone, Default)]
struct Outage(Arc<AtomicBool>);

impl HandleError<diesel::r2d2::Error> for Outage {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        if !self.0.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %error, "the read pool cannot connect to the database; reads fail until it answers again (retrying)");
        }
    }
}

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for ReaderPragmas {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        if self.outage.0.swap(false, Ordering::Relaxed) {
            tracing::info!("the read pool connects to the database again");
        }
        let DbConn::Sqlite(conn) = conn else {
            // PostgreSQL needs no settings per connection.
            return Ok(());
        };
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA query_only = ON;",
            self.busy.as_millis()
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Opens the pool's connections to the database `opts` names: r2d2's
/// `ConnectionManager` would let the multi-connection guess the backend from the URL
/// (see `backend.rs`); this one knows it.
#[derive(Debug)]
pub struct Manager {
    sqlite: Option<String>,
    pg: Option<String>,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, diesel::r2d2::Error> {
        use diesel::pg::PgConnection;
        let connected = match (&self.pg, &self.sqlite) {
            (Some(url), _) => {
                let timed = super::postgres::with_connect_timeout(
                    url,
                    super::postgres::CONNECT_TIMEOUT_SECONDS,
                );
                PgConnection::establish(&timed).map(DbConn::Pg)
            }
            (None, Some(path)) => SqliteConnection::establish(path).map(DbConn::Sqlite),
            (None, None) => Err(diesel::ConnectionError::BadConnection(
                "no database named".into(),
            )),
        };
        connected.map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// The pool the readers draw from. On SQLite, read-only connections: every write goes
/// through the Writer so there is exactly one writer and group commit sees all of them.
pub fn read_pool(opts: &StoreOptions) -> Result<ReadPool, StoreError> {
    let manager = match &opts.pg_url {
        Some(url) => Manager {
            sqlite: None,
            pg: Some(url.clone()),
        },
        None => Manager {
            sqlite: Some(path_string(&opts.path)?),
            pg: None,
        },
    };
    let mut builder = Pool::builder().max_size(opts.reader_threads.max(1) as u32 + 1);
    if opts.pg_url.is_some() {
        // A PostgreSQL server that is gone (stopped, the database dropped) makes every
        // read wait for a connection: answer 503 after 5 s rather than r2d2's 30, which
        // is longer than clients wait.
        builder = builder.connection_timeout(Duration::from_secs(5));
    }
    let outage = Outage::default();
    builder
        .error_handler(Box::new(outage.clone()))
        .connection_customizer(Box::new(ReaderPragmas {
            busy: opts.busy_timeout,
            outage,
        }))
        .build(manager)
        .map_err(|e| StoreError::Open {
            path: opts
                .pg_url
                .as_deref()
                .map_or_else(|| opts.path.display().to_string(), super::postgres::redact),
            reason: e.to_string(),
        })
}
