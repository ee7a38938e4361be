//! The files the store lives in: the data directory and the database files, their
//! permissions, the marker that records a database was created here, and the watch
//! that notices when the database file is deleted or replaced under a running hub.
//!
//! Permissions are set explicitly rather than left to the umask: the database holds
//! every user's events and secrets, and under the common umask 022 SQLite would
//! create it world-readable (0644) in a world-readable directory (0755).

use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::StoreError;

/// The data directory's mode: only the hub's own user may list or enter it.
pub const DIR_MODE: u32 = 0o700;
/// The mode of the database, its WAL and shared-memory files, and admin.token.
pub const FILE_MODE: u32 = 0o600;
/// The marker's name in the data directory.
pub const MARKER: &str = "muninn.initialized";

fn open_error(path: &Path, reason: String) -> StoreError {
    StoreError::Open {
        path: path.display().to_string(),
        reason,
    }
}

/// Creates `dir` (and missing parents) with mode 0700; when `tighten`, also makes an
/// existing `dir` that others may read or enter 0700, saying so in the log. A shared
/// directory with the sticky bit (like /tmp) is never tightened, only warned about.
pub fn prepare_dir(dir: &Path, tighten: bool) -> Result<(), StoreError> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|e| open_error(dir, format!("cannot create the directory: {e}")))?;
    }
    if !tighten {
        return Ok(());
    }
    let full = fs::metadata(dir)
        .map_err(|e| open_error(dir, format!("cannot read the directory: {e}")))?
        .permissions()
        .mode();
    let mode = full & 0o777;
    if full & 0o1000 != 0 && mode & 0o077 != 0 {
        tracing::warn!(path = %dir.display(), "the data directory is a shared directory (sticky bit); its mode is left as it is: use a directory of its own");
        return Ok(());
    }
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)).map_err(|e| {
            open_error(
                dir,
                format!("the directory is mode {mode:o} and cannot be made 700: {e}"),
            )
        })?;
        tracing::warn!(path = %dir.display(), was = %format!("{mode:o}"), now = "700", "data directory was readable by other users; tightened");
    }
    Ok(())
}

/// The database file and the files SQLite keeps beside it.
fn database_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

/// True for SQLite's in-memory and URI names, which are not files to look after.
fn not_a_file(db: &Path) -> bool {
    let name = db.to_string_lossy();
    name.is_empty() || name == ":memory:" || name.starts_with("file:")
}

/// Creates the database file empty with mode 0600 when it does not exist (SQLite then
/// gives its WAL and shared-memory files the same mode), and makes existing database
/// files 0600.
pub fn secure_database_files(db: &Path) -> Result<(), StoreError> {
    if not_a_file(db) {
        return Ok(());
    }
    if !db.exists() {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(db)
            .map_err(|e| open_error(db, format!("cannot create the database file: {e}")))?;
    }
    for file in database_files(db) {
        let Ok(meta) = fs::metadata(&file) else {
            continue;
        };
        if meta.permissions().mode() & 0o777 != FILE_MODE {
            fs::set_permissions(&file, fs::Permissions::from_mode(FILE_MODE))
                .map_err(|e| open_error(&file, format!("cannot make the file mode 600: {e}")))?;
        }
    }
    Ok(())
}

/// Refuses to open an empty or missing database in a data directory whose marker says
/// a database was created there: the files were deleted or lost, and starting anew
/// would hide that. `init` (`muninn serve --init`) allows starting fresh.
pub fn check_marker(data_dir: &Path, db: &Path, init: bool) -> Result<(), StoreError> {
    let marker = data_dir.join(MARKER);
    if init || not_a_file(db) || !marker.exists() {
        return Ok(());
    }
    let size = fs::metadata(db).map(|m| m.len()).ok();
    if size.is_some_and(|s| s > 0) {
        return Ok(());
    }
    let state = if size.is_some() {
        "is empty"
    } else {
        "does not exist"
    };
    Err(StoreError::MissingDatabase(format!(
        "the database {} {state}, but {} records that a database was created in this data \
         directory: its files were deleted or moved. Restore them from a backup, or run \
         `muninn serve --init` to start with a new, empty database",
        db.display(),
        marker.display()
    )))
}

/// Writes the marker (mode 0600) when it is absent, once a database exists.
pub fn write_marker(data_dir: &Path, db: &Path) -> Result<(), StoreError> {
    let marker = data_dir.join(MARKER);
    if not_a_file(db) || marker.exists() {
        return Ok(());
    }
    let text = format!(
        "A muninn database was created in this directory: {}\n\
         If it goes missing, muninn refuses to start an empty one unless run with --init.\n",
        db.display()
    );
    write_private(&marker, &text)
        .map_err(|e| open_error(&marker, format!("cannot write the marker file: {e}")))
}

/// Writes `contents` to `path` with mode 0600 whatever the umask, replacing the file.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

/// Notices that the database file was deleted or replaced while the hub runs: SQLite
/// keeps writing to the open file, which nobody will ever read again, and the next
/// start would find an empty one.
///
/// Compares the (device, inode) of the path with those seen at open. A `stat` measured
/// 5.8 µs on the shared 2-core test VM under load (about 1 µs on an idle machine), which
/// is small against one commit but not against thousands of batches a second, so the
/// writer checks just before it commits, at most once per [`CHECK_EVERY`]: every batch
/// when idle (batches are further apart), at most 100 stats a second under load. The
/// cost is a window of at most that long in which writes after a deletion are still
/// acknowledged; the check and the commit race anyway.
#[derive(Debug, Clone)]
pub struct FileWatch {
    path: PathBuf,
    identity: Option<(u64, u64)>,
    checked_at: Option<Instant>,
}

/// How often at most the writer looks at the database file.
pub const CHECK_EVERY: Duration = Duration::from_millis(10);

impl FileWatch {
    /// Records the identity of the file at `path` now (after it was opened).
    pub fn new(path: &Path) -> FileWatch {
        FileWatch {
            path: path.to_path_buf(),
            identity: identity(path).ok().filter(|_| !not_a_file(path)),
            checked_at: None,
        }
    }

    /// Like [`FileWatch::lost`], but looks only when [`CHECK_EVERY`] has passed since
    /// the last look.
    pub fn lost_due(&mut self) -> Option<String> {
        let now = Instant::now();
        if self
            .checked_at
            .is_some_and(|at| now.duration_since(at) < CHECK_EVERY)
        {
            return None;
        }
        self.checked_at = Some(now);
        self.lost()
    }

    /// `Some(reason)` when the file at the path is no longer the one opened.
    pub fn lost(&self) -> Option<String> {
        let opened = self.identity?;
        match identity(&self.path) {
            Ok(now) if now == opened => None,
            Ok(_) => Some(format!(
                "the database file {} was replaced by another file while muninn was running; \
                 writes are refused so nothing is acknowledged that would be lost. Restore \
                 the file and restart muninn",
                self.path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
                "the database file {} was deleted while muninn was running; writes are \
                 refused so nothing is acknowledged that would be lost. Restore it from a \
                 backup and restart muninn",
                self.path.display()
            )),
            // Another failure to look (permissions on a parent changed) is not proof
            // that the file is gone; the commit itself will say if it cannot write.
            Err(_) => None,
        }
    }
}

fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    let meta = fs::metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_directory_is_private_and_a_loose_one_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        prepare_dir(&dir, false).unwrap();
        assert_eq!(mode(&dir), 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        prepare_dir(&dir, false).unwrap();
        assert_eq!(mode(&dir), 0o755, "left as it is without tighten");
        prepare_dir(&dir, true).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn database_files_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("x.db");
        secure_database_files(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let wal = tmp.path().join("x.db-wal");
        fs::write(&wal, b"").unwrap();
        fs::set_permissions(&wal, fs::Permissions::from_mode(0o644)).unwrap();
        secure_database_files(&db).unwrap();
        assert_eq!(mode(&wal), 0o600);
    }

    #[test]
    fn the_marker_refuses_a_missing_or_empty_database_unless_init() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("m.db");
        // A fresh directory: no marker, anything goes.
        check_marker(tmp.path(), &db, false).unwrap();
        fs::write(&db, b"SQLite format 3\0").unwrap();
        write_marker(tmp.path(), &db).unwrap();
        assert_eq!(mode(&tmp.path().join(MARKER)), 0o600);
        check_marker(tmp.path(), &db, false).unwrap();
        fs::write(&db, b"").unwrap();
        let err = check_marker(tmp.path(), &db, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is empty") && err.contains("--init"), "{err}");
        fs::remove_file(&db).unwrap();
        let err = check_marker(tmp.path(), &db, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        check_marker(tmp.path(), &db, true).unwrap();
    }

    #[test]
    fn the_watch_sees_a_deleted_or_replaced_file() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("w.db");
        fs::write(&db, b"one").unwrap();
        let watch = FileWatch::new(&db);
        assert_eq!(watch.lost(), None);
        let other = tmp.path().join("other");
        fs::write(&other, b"two").unwrap();
        fs::rename(&other, &db).unwrap();
        assert!(watch.lost().unwrap().contains("replaced"));
        fs::remove_file(&db).unwrap();
        assert!(watch.lost().unwrap().contains("deleted"));
        let mut due = FileWatch::new(&other);
        assert_eq!(due.lost_due(), None, "the first look is due");
    }
}
