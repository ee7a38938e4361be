//! `--postgres`: the hub on PostgreSQL beside SQLite, in the same run (issue 19):
//! webhook ingest with one node on SQLite, one node on PostgreSQL and two nodes on one
//! PostgreSQL database; deliveries/s with one node on each backend.
//!
//! The harness starts its own throwaway cluster (`initdb` and `pg_ctl` from PATH or
//! `/usr/lib/postgresql/*/bin`, as the `postgres` user when run as root) on a free
//! loopback port, with PostgreSQL's durable defaults (fsync, synchronous_commit on), so
//! it is compared with SQLite's `synchronous=FULL`: both acknowledge a webhook only
//! once it is on disk. The cluster is stopped and deleted when the run ends.
//!
//! Two nodes measure ingest only, with one webhook agent and no subscription: until
//! agents and subscriptions have leases, two nodes on one database would both run
//! every agent and send every delivery. On a 2-core machine two nodes cannot be
//! faster than one (they share the cores with the database); the row shows the cost
//! of the shared database and that every acknowledged webhook is there.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::json;

use crate::ingest::{self, Generator, Measured};
use crate::load::{self, Conn, request};
use crate::{
    Row, api, bodies, no_op, post_maker, row, start_hub_with, start_reference, webhook_agent,
};

/// A secret key both nodes share (base64 of 32 bytes): each node has its own data
/// directory, and what one seals the other must open.
const SHARED_KEY: &str = "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtMTI=";

/// Events queued for the delivery rows.
const DELIVERIES: u64 = 3_000;

/// A throwaway PostgreSQL cluster; stopped and removed when dropped.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
}

fn bin_dir() -> Option<PathBuf> {
    let has_all = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    if let Some(paths) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&paths) {
            if has_all(&d) {
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
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Cluster {
    pub fn start() -> Result<Cluster> {
        let bin = bin_dir().context(
            "--postgres needs PostgreSQL's initdb, pg_ctl and postgres (Debian: apt-get install postgresql)",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("muninn-bench-pg-")
            .tempdir()?;
        let as_postgres = is_root();
        if as_postgres {
            let out = Command::new("chown")
                .args(["postgres:", &dir.path().to_string_lossy()])
                .output()?;
            if !out.status.success() {
                bail!("chown: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        let mut cluster = Cluster {
            dir,
            bin,
            as_postgres,
            port: 0,
        };
        let data = cluster.data();
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
            ],
        )?;
        if !init.status.success() {
            bail!("initdb: {}", String::from_utf8_lossy(&init.stderr));
        }
        for _ in 0..5 {
            cluster.port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=200",
                cluster.port,
                cluster.dir.path().display()
            );
            let log = cluster.dir.path().join("server.log");
            let started = cluster.run(
                "pg_ctl",
                &[
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    &data,
                    "-l",
                    &log.to_string_lossy(),
                    "-o",
                    &opts,
                ],
            )?;
            if started.status.success() {
                return Ok(cluster);
            }
        }
        cluster.port = 0;
        bail!("postgres did not start on any of 5 ports")
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<Output> {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", exe.display()))
    }

    /// A new empty database; its URL.
    pub fn database(&self, name: &str) -> Result<String> {
        let url = |db: &str| format!("postgres://postgres@127.0.0.1:{}/{db}", self.port);
        let mut conn = PgConnection::establish(&url("postgres"))?;
        diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut conn)?;
        Ok(url(name))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.port != 0 {
            let _ = self.run("pg_ctl", &["stop", "-m", "fast", "-w", "-D", &self.data()]);
        }
    }
}

/// Webhook ingest against `nodes` hubs at once, the connections split between them;
/// the rates add up.
async fn ingest(bin: &Path, url: Option<&str>, nodes: usize, cli: &crate::Cli) -> Result<Measured> {
    let body = bodies::body(cli.bodies.first().copied().unwrap_or(203)).bytes;
    let mut envs = vec![("MUNINN_SECRET_KEY", SHARED_KEY.to_string())];
    if let Some(u) = url {
        envs.push(("MUNINN_DATABASE_URL", u.to_string()));
    }
    let mut dirs = Vec::new();
    let mut hubs = Vec::new();
    let mut path = String::new();
    for n in 0..nodes {
        let dir = tempfile::tempdir()?;
        let hub = start_hub_with(bin, dir.path(), "full", &envs)?;
        if n == 0 {
            // Made before the other nodes start, so each loads it.
            path = webhook_agent(hub.addr).await?;
        }
        hubs.push(hub);
        dirs.push(dir);
    }
    let per_node = (cli.connections / nodes).max(1);
    let duration = Duration::from_secs(cli.duration);
    let mut runs = Vec::new();
    for hub in &hubs {
        let (addr, path, body, scratch) = (
            hub.addr,
            path.clone(),
            body.clone(),
            dirs[0].path().to_path_buf(),
        );
        runs.push(actix_rt::spawn(async move {
            ingest::measure(
                Generator::Own,
                addr,
                &path,
                &body,
                per_node,
                duration,
                &scratch,
            )
            .await
        }));
    }
    let mut total = Measured::default();
    for r in runs {
        let m = r.await.context("a load task failed")??;
        total.rps += m.rps;
        total.failed += m.failed;
        total.p50_ms = total.p50_ms.max(m.p50_ms);
        total.p99_ms = total.p99_ms.max(m.p99_ms);
        total.max_ms = total.max_ms.max(m.max_ms);
    }
    Ok(total)
}

/// Deliveries/s of one node: `DELIVERIES` events queued behind a paused subscription,
/// then resumed and timed until the sink has them all.
async fn deliveries(bin: &Path, url: Option<&str>) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let sink = start_reference("sink", "full", dir.path())?;
    let envs: Vec<(&str, String)> = url
        .map(|u| ("MUNINN_DATABASE_URL", u.to_string()))
        .into_iter()
        .collect();
    let hub = start_hub_with(bin, dir.path(), "full", &envs)?;
    let path = webhook_agent(hub.addr).await?;
    let sub = api(
        hub.addr,
        "POST",
        "/api/webhooks/outgoing",
        Some(json!({"url": format!("http://{}/hook", sink.addr),
            "event_types": ["event.created"], "max_in_flight": 64})),
    )
    .await?;
    let id = sub["id"].as_i64().context("subscription id")?;
    api(
        hub.addr,
        "POST",
        &format!("/api/webhooks/outgoing/{id}/pause"),
        None,
    )
    .await?;
    let s = load::run(
        hub.addr,
        8,
        Duration::from_secs(300),
        Some(DELIVERIES),
        post_maker(path, &bodies::body(203).bytes),
        no_op(),
        Duration::ZERO,
    )
    .await;
    if s.ok != DELIVERIES {
        bail!("only {} of {DELIVERIES} events were accepted", s.ok);
    }
    let started = Instant::now();
    api(
        hub.addr,
        "POST",
        &format!("/api/webhooks/outgoing/{id}/resume"),
        None,
    )
    .await?;
    let mut got = 0;
    while started.elapsed() < Duration::from_secs(300) {
        let mut c = Conn::open(sink.addr).await?;
        let (_, body, _) = c.roundtrip(&request("GET", "/count", None, None)).await?;
        got = String::from_utf8_lossy(&body).trim().parse().unwrap_or(0);
        if got >= DELIVERIES {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    if got < DELIVERIES {
        bail!("only {got} of {DELIVERIES} deliveries arrived within 300 s");
    }
    Ok(got as f64 / started.elapsed().as_secs_f64())
}

fn ingest_row(rows: &mut Vec<Row>, what: &str, m: &Measured, base: f64) {
    row(
        rows,
        what,
        format!("{:.0} req/s", m.rps),
        format!(
            "{:.0} % of SQLite's; p50 {:.2} ms, p99 {:.2} ms (worst node), {} failed",
            100.0 * m.rps / base,
            m.p50_ms,
            m.p99_ms,
            m.failed
        ),
    );
}

/// The PostgreSQL rows, each beside its SQLite neighbour measured in the same run.
pub async fn rows(bin: &Path, cli: &crate::Cli, rows: &mut Vec<Row>) -> Result<()> {
    let cluster = Cluster::start()?;
    let label = bodies::body(cli.bodies.first().copied().unwrap_or(203)).label;
    let sqlite = ingest(bin, None, 1, cli).await?;
    ingest_row(
        rows,
        &format!("ingest {label}, SQLite FULL, 1 node"),
        &sqlite,
        sqlite.rps,
    );
    let one = ingest(bin, Some(&cluster.database("one")?), 1, cli).await?;
    ingest_row(
        rows,
        &format!("ingest {label}, PostgreSQL, 1 node"),
        &one,
        sqlite.rps,
    );
    let two = ingest(bin, Some(&cluster.database("two")?), 2, cli).await?;
    ingest_row(
        rows,
        &format!("ingest {label}, PostgreSQL, 2 nodes on one database (no agents run)"),
        &two,
        sqlite.rps,
    );
    let lite = deliveries(bin, None).await?;
    row(
        rows,
        "deliveries, SQLite FULL, 1 node, 1 subscription",
        format!("{lite:.0} deliveries/s"),
        format!("{DELIVERIES} queued events"),
    );
    let pg = deliveries(bin, Some(&cluster.database("deliveries")?)).await?;
    row(
        rows,
        "deliveries, PostgreSQL, 1 node, 1 subscription",
        format!("{pg:.0} deliveries/s"),
        format!(
            "{DELIVERIES} queued events; {:.0} % of SQLite's",
            100.0 * pg / lite
        ),
    );
    Ok(())
}
