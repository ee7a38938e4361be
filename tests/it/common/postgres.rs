//! A throwaway PostgreSQL cluster for one test: `initdb` into a temp dir, `postgres`
//! on a free loopback port, stopped (`pg_ctl stop -m immediate`) and removed when the
//! `PgCluster` drops, also when the test panics. Run as the `postgres` user (through
//! `runuser`) when the tests run as root, since PostgreSQL refuses to run as root.
//!
//! Where PostgreSQL is not installed, `PgCluster::start()` prints why and returns
//! `None`, and the test returns early; with MUNINN_REQUIRE_POSTGRES=1 (set by
//! .ci/run) that is a failure instead.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use diesel::{Connection, PgConnection, RunQueryDsl};

pub const REQUIRE_ENV: &str = "MUNINN_REQUIRE_POSTGRES";

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres_user: bool,
    pub port: u16,
}

/// The folder holding initdb, pg_ctl and postgres: from PATH, else the newest
/// /usr/lib/postgresql/<version>/bin (Debian keeps them there, off PATH).
fn find_bin_dir() -> Option<PathBuf> {
    let has_all = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    if let Some(paths) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&paths) {
            if has_all(&d) {
                // A symlink on PATH (/usr/local/bin/initdb) points to the real folder,
                // where pg_ctl finds the matching postgres.
                let real = std::fs::canonicalize(d.join("initdb")).ok()?;
                return real.parent().map(Path::to_path_buf);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_all(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    // `id -u` rather than a libc call: the crate forbids unsafe code.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn skip(reason: &str) -> Option<PgCluster> {
    if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
        panic!("PostgreSQL is required ({REQUIRE_ENV}=1) but cannot be used: {reason}");
    }
    // Straight to stderr, not through eprintln!: the test harness captures that macro's
    // output and shows it only for failing tests, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: this test needs PostgreSQL, which cannot be used here: {reason}. \
         Install PostgreSQL (Debian: apt-get install postgresql) to run it; \
         {REQUIRE_ENV}=1 makes this skip a failure."
    );
    None
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl PgCluster {
    /// A new cluster, or `None` (with a message) where PostgreSQL is not installed.
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = find_bin_dir() else {
            return skip(
                "initdb, pg_ctl and postgres are neither on PATH nor in /usr/lib/postgresql/*/bin",
            );
        };
        let as_postgres_user = is_root();
        if as_postgres_user {
            let known = Command::new("id").arg("postgres").output();
            if !known.map(|o| o.status.success()).unwrap_or(false) {
                return skip(
                    "running as root, and there is no `postgres` user to run the server as",
                );
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("muninn-pg-")
            .tempdir()
            .unwrap();
        if as_postgres_user {
            let chown = Command::new("chown")
                .args(["postgres:", &dir.path().to_string_lossy()])
                .output()
                .unwrap();
            assert!(chown.status.success(), "chown: {}", stderr(&chown));
        }
        let mut cluster = PgCluster {
            dir,
            bin,
            as_postgres_user,
            port: 0,
        };
        let data = cluster.data_dir();
        let init = cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        assert!(init.status.success(), "initdb failed: {}", stderr(&init));
        // A port that was free a moment ago may be taken by the time the server binds:
        // a few tries, each on a new port.
        for _ in 0..5 {
            cluster.port = free_port();
            let started = cluster.pg_ctl_start();
            if started.status.success() {
                return Some(cluster);
            }
            eprintln!(
                "postgres did not start on port {}: {}\n{}",
                cluster.port,
                stderr(&started),
                cluster.server_log()
            );
        }
        panic!("postgres did not start on any of 5 ports");
    }

    fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    /// `pg_ctl start` on this cluster's data, port and socket directory, waiting until
    /// the server accepts connections (its log in `server.log`).
    fn pg_ctl_start(&self) -> Output {
        let data = self.data_dir();
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let log = log.to_string_lossy();
        let args = [
            "start", "-w", "-t", "60", "-D", &data, "-l", &log, "-o", &opts,
        ];
        self.run("pg_ctl", &args)
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        // The server must not inherit the test's stdout/stderr pipes: cargo would wait
        // for them to close.
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
    }

    /// The URL of database `name` (the superuser, no password: trust on loopback).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        let mut conn = PgConnection::establish(&self.url("postgres")).unwrap();
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .unwrap();
        self.url(name)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.port == 0 {
            return;
        }
        let data = self.data_dir();
        let stopped = self.run("pg_ctl", &["stop", "-m", "immediate", "-w", "-D", &data]);
        if !stopped.status.success() {
            eprintln!("pg_ctl stop failed: {}", stderr(&stopped));
        }
        // The TempDir removes the folder (root may remove the postgres user's files;
        // otherwise they are the test user's own).
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether `needle` is anywhere in what PostgreSQL keeps on disk for the database at
/// `url`: its relation files (`base/<oid>/`) and the write-ahead log, after a
/// checkpoint has written everything out. The PostgreSQL form of reading a SQLite
/// database's files for a value that must not be stored in clear.
pub fn files_hold(url: &str, needle: &str) -> bool {
    use diesel::sql_types::Text;
    #[derive(diesel::QueryableByName)]
    struct Dirs {
        #[diesel(sql_type = Text)]
        data: String,
        #[diesel(sql_type = Text)]
        oid: String,
    }
    let mut conn = PgConnection::establish(url).unwrap();
    diesel::sql_query("CHECKPOINT").execute(&mut conn).unwrap();
    let dirs: Dirs = diesel::sql_query(
        "SELECT current_setting('data_directory') AS data, \
         (SELECT oid::text FROM pg_database WHERE datname = current_database()) AS oid",
    )
    .get_result(&mut conn)
    .unwrap();
    let data = Path::new(&dirs.data);
    let mut files = 0;
    for dir in [data.join("base").join(&dirs.oid), data.join("pg_wal")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if !path.is_file() {
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                return true;
            }
        }
    }
    assert!(files > 0, "no files under {}", data.display());
    false
}

/// Stopping and starting the cluster under a running hub, as a PostgreSQL restart
/// does (`pg_ctl stop -m fast` ends every session, like a restart by the operator or
/// the service manager).
impl PgCluster {
    /// Stops the server (`-m fast`: open sessions are ended) and waits until it is down.
    pub fn stop_fast(&self) {
        let data = self.data_dir();
        let stopped = self.run("pg_ctl", &["stop", "-m", "fast", "-w", "-D", &data]);
        assert!(
            stopped.status.success(),
            "pg_ctl stop: {}",
            stderr(&stopped)
        );
    }

    /// Starts the stopped server again on the same port and data, and waits until it
    /// accepts connections.
    pub fn start_again(&self) {
        let started = self.pg_ctl_start();
        assert!(
            started.status.success(),
            "pg_ctl start: {}\n{}",
            stderr(&started),
            self.server_log()
        );
    }
}
