//! What the copy refuses before it touches anything: a database copied onto itself, and
//! a hub running on the source or the target. A copy taken under a running hub would
//! miss what the hub acknowledges afterwards (the source) or be overwritten by it (the
//! target), and the operator would learn it only from a missing event.
//!
//! How a running hub is seen:
//! - A hub holds `<data dir>/secret.key.lock` shared while it runs (see
//!   `secrets::RotationLock`). The copy takes it exclusive in the SQLite database's
//!   folder and in `--data-dir`, where it exists, and holds it to the end, so no hub
//!   starts there during the copy either.
//! - On PostgreSQL, any other session connected to the database counts: a hub keeps
//!   its connections open while it runs.

use std::path::{Path, PathBuf};

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::{CopyError, CopyOptions, Location};
use crate::secrets::{LOCK_FILE, RotationLock, SecretError};
use crate::store::DbConn;

/// Refuses a copy of a database onto itself.
pub fn not_the_same(from: &Location, to: &Location) -> Result<(), CopyError> {
    let same = match (from, to) {
        (Location::Sqlite(a), Location::Sqlite(b)) => a == b || same_file(a, b),
        (Location::Postgres(a), Location::Postgres(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(CopyError::Refused(format!(
            "--from and --to name the same database ({})",
            from.describe()
        )));
    }
    Ok(())
}

/// Whether two paths name one file: through `..`, a symlink, or a hard link (two
/// names of one file: canonical paths differ, but SQLite would keep a write-ahead log
/// beside each name, and two logs of one database corrupt it).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

/// Refuses a SQLite location that is not a database file before anything opens it:
/// opening makes a file mode 600 (and its folder), so a mistyped `--to ~/notes.txt`
/// must not reach that. A missing or empty file is fine for the target (the copy
/// makes it); `""`, `:memory:` and `file:` URIs name no file the operator can keep.
pub fn a_database_file(location: &Location, side: &str) -> Result<(), CopyError> {
    let Location::Sqlite(path) = location else {
        return Ok(());
    };
    let name = path.to_string_lossy();
    if name.trim().is_empty() || name == ":memory:" || name.starts_with("file:") {
        return Err(CopyError::Refused(format!(
            "--{side} {name:?} names no database file: give the path of a SQLite file, or a \
             postgres:// URL"
        )));
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(CopyError::Refused(format!(
                "cannot read --{side} {}: {e}",
                path.display()
            )));
        }
    };
    if !meta.is_file() {
        return Err(CopyError::Refused(format!(
            "--{side} {} is not a file (a directory?): give the path of the SQLite \
             database file, such as <data dir>/muninn.db",
            path.display()
        )));
    }
    if meta.len() == 0 {
        return Ok(());
    }
    let mut head = [0u8; 16];
    let read = std::fs::File::open(path).and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut head)
    });
    if read.is_err() || head.as_slice() != SQLITE_HEADER {
        return Err(CopyError::Refused(format!(
            "--{side} {} is not a SQLite database; nothing was changed",
            path.display()
        )));
    }
    Ok(())
}

/// The folders whose lock a hub of these databases would hold.
fn hub_dirs(opts: &CopyOptions) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for location in [&opts.from, &opts.to] {
        if let Location::Sqlite(path) = location {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            dirs.push(dir);
        }
    }
    dirs.extend(opts.data_dir.iter().cloned());
    let mut unique: Vec<PathBuf> = Vec::new();
    for d in dirs {
        let key = std::fs::canonicalize(&d).unwrap_or(d);
        if !unique.contains(&key) {
            unique.push(key);
        }
    }
    unique
}

/// Takes every hub lock that exists (exclusive); refuses when a hub holds one.
pub fn no_hub_running(opts: &CopyOptions) -> Result<Vec<RotationLock>, CopyError> {
    let mut held = Vec::new();
    for dir in hub_dirs(opts) {
        if !dir.join(LOCK_FILE).exists() {
            continue;
        }
        held.push(lock(&dir)?);
    }
    Ok(held)
}

fn lock(dir: &Path) -> Result<RotationLock, CopyError> {
    RotationLock::exclusive(dir).map_err(|e| match e {
        SecretError::HubRunning { path } => CopyError::Refused(format!(
            "a hub is running on {} (it holds {path}); stop it before copying its database, \
             so nothing it acknowledges is left behind",
            dir.display()
        )),
        other => CopyError::Refused(format!(
            "cannot tell whether a hub is running on {}: {other}",
            dir.display()
        )),
    })
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Backend {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
    #[diesel(sql_type = diesel::sql_types::Text)]
    started: String,
}

/// Refuses two PostgreSQL URLs that reach one database through different spellings
/// (`localhost` and `127.0.0.1`, another user, a pooler): the source's server sees the
/// target's own session in that database. Run before [`no_other_sessions`], which
/// would otherwise blame "a running hub" for the copy's own connection.
pub fn not_one_database(
    source: &mut DbConn,
    target: &mut DbConn,
    from: &Location,
) -> Result<(), CopyError> {
    let (DbConn::Pg(s), DbConn::Pg(t)) = (source, target) else {
        return Ok(());
    };
    let me = diesel::sql_query(
        "SELECT pid, backend_start::text AS started FROM pg_stat_activity \
         WHERE pid = pg_backend_pid()",
    )
    .get_result::<Backend>(t)?;
    let seen = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1 \
         AND backend_start::text = $2 AND datname = current_database()",
    )
    .bind::<diesel::sql_types::Integer, _>(me.pid)
    .bind::<diesel::sql_types::Text, _>(&me.started)
    .get_result::<Count>(s)?
    .n;
    if seen > 0 {
        return Err(CopyError::Refused(format!(
            "--from and --to reach the same database ({}) through different URLs",
            from.describe()
        )));
    }
    Ok(())
}

/// On PostgreSQL, refuses while other sessions are connected to the database.
pub fn no_other_sessions(conn: &mut DbConn, location: &Location) -> Result<(), CopyError> {
    let DbConn::Pg(c) = conn else {
        return Ok(());
    };
    let others = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
    )
    .get_result::<Count>(c)?
    .n;
    if others > 0 {
        return Err(CopyError::Refused(format!(
            "{others} other session(s) are connected to {}: a hub may be running on it. Stop \
             it (and close other sessions to that database) before copying",
            location.describe()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_is_not_copied_onto_itself() {
        let a = Location::parse("/tmp/x/muninn.db");
        let err = not_the_same(&a, &Location::parse("sqlite:///tmp/x/muninn.db"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("same database"), "{err}");
        let pg = Location::parse("postgres://u:secret@h/db");
        let err = not_the_same(&pg, &pg.clone()).unwrap_err().to_string();
        assert!(!err.contains("secret"), "no password in messages: {err}");
        not_the_same(&a, &pg).unwrap();
    }

    #[test]
    fn a_running_hub_is_seen_through_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let opts = CopyOptions {
            from: Location::Sqlite(dir.path().join("muninn.db")),
            to: Location::parse("postgres://h/db"),
            replace: false,
            data_dir: None,
        };
        // No lock file: no hub ever ran there, nothing to hold.
        assert!(no_hub_running(&opts).unwrap().is_empty());
        let hub = RotationLock::shared(dir.path()).unwrap();
        let err = no_hub_running(&opts).err().unwrap().to_string();
        assert!(err.contains("a hub is running"), "{err}");
        drop(hub);
        let held = no_hub_running(&opts).unwrap();
        assert_eq!(held.len(), 1);
        assert!(
            RotationLock::shared(dir.path()).is_err(),
            "no hub starts during the copy"
        );
    }
}
