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
//! Two nodes measure ingest only, with one webhook agent and no subscription. On a
//! 2-core machine two nodes cannot be faster than one (they share the cores with the
//! database); the row shows the cost of the shared database. Each ingest row also
//! shows what was lost: every request carries a key of its own (a query parameter,
//! which the webhook agent puts in the event), and after the load each key answered
//! 2xx is looked for in the database.

use std::cell::RefCell;
use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::json;

use crate::ingest::Measured;
use crate::load::{self, Conn, request};
use crate::{
    Row, api, bodies, no_op, post_maker, row, start_hub_with, start_reference, webhook_agent,
};

/// A secret key both nodes share (base64 of 32 bytes): each node has its own data
/// directory, and what one seals the other must open.
const SHARED_KEY: &str = "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtMTI=";

/// Events queued for the delivery rows.
const DELIVERIES: u64 = 3_000;

/// How long the delivery rows wait for the sink to have them all: a release hub sends
/// 3 000 in a second or two, so a minute means it stopped sending (the row says so and
/// the run goes on).
const DELIVERY_BOUND: Duration = Duration::from_secs(60);

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

/// The query parameter each ingest request of these rows carries, unique per request
/// (`node-phase-n`): a webhook agent merges the query into the event's payload, so the
/// harness can find each acknowledged request's event in the database. The body stays
/// the size the row names.
const ACK_KEY: &str = "muninn_bench_ack";

/// What one ingest row measured: the load (rates of the nodes added, the worse node's
/// latencies) and the acknowledged requests whose events are not in the database.
struct Ingested {
    load: Measured,
    acked: usize,
    lost: usize,
}

/// Webhook ingest against `nodes` hubs at once, the connections split between them
/// (the rates add up); then every acknowledged request (2xx, warm-up included) is
/// looked for in the database the hubs share.
async fn ingest(bin: &Path, url: Option<&str>, nodes: usize, cli: &crate::Cli) -> Result<Ingested> {
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
        // Each node its own id: two processes under one id refuse to run.
        let mut node_envs = envs.clone();
        node_envs.push(("MUNINN_CLUSTER_NODE_ID", format!("bench-node-{n}")));
        let hub = start_hub_with(bin, dir.path(), "full", &node_envs)?;
        if n == 0 {
            // Made before the other nodes start, so each loads it.
            path = webhook_agent(hub.addr).await?;
        }
        hubs.push(hub);
        dirs.push(dir);
    }
    let agent: i64 = path
        .split('/')
        .nth(4)
        .and_then(|id| id.parse().ok())
        .context("webhook agent id")?;
    let per_node = (cli.connections / nodes).max(1);
    let duration = Duration::from_secs(cli.duration);
    let acked: Acked = Rc::default();
    let mut runs = Vec::new();
    for (node, hub) in hubs.iter().enumerate() {
        let (addr, path, body, acked) = (hub.addr, path.clone(), body.clone(), acked.clone());
        runs.push(actix_rt::spawn(async move {
            // A second of warm-up, as the other ingest rows have; its answers count
            // as acknowledged too.
            numbered(
                addr,
                &path,
                &body,
                per_node,
                Duration::from_secs(1),
                node,
                0,
                &acked,
            )
            .await;
            numbered(addr, &path, &body, per_node, duration, node, 1, &acked).await
        }));
    }
    let mut total = Measured::default();
    for r in runs {
        let m = r.await.context("a load task failed")?;
        total.rps += m.rps;
        total.failed += m.failed;
        total.p50_ms = total.p50_ms.max(m.p50_ms);
        total.p99_ms = total.p99_ms.max(m.p99_ms);
        total.max_ms = total.max_ms.max(m.max_ms);
    }
    let mut opts = crate::growth::opts(dirs[0].path());
    opts.pg_url = url.map(str::to_string);
    let stored = stored_keys(&opts, agent)?;
    let acked = acked.borrow();
    let lost = acked.iter().filter(|k| !stored.contains(*k)).count();
    Ok(Ingested {
        load: total,
        acked: acked.len(),
        lost,
    })
}

/// The keys of the requests that were answered 2xx.
type Acked = Rc<RefCell<HashSet<String>>>;

fn ack_key(node: usize, phase: u8, n: u64) -> String {
    format!("{node}-{phase}-{n}")
}

/// One load run of `duration` whose requests each carry their own [`ACK_KEY`]; the
/// keys answered 2xx go into `acked`.
#[allow(clippy::too_many_arguments)]
async fn numbered(
    addr: std::net::SocketAddr,
    path: &str,
    body: &[u8],
    connections: usize,
    duration: Duration,
    node: usize,
    phase: u8,
    acked: &Acked,
) -> Measured {
    let (path, body) = (path.to_string(), body.to_vec());
    let make: Rc<dyn Fn(u64) -> Vec<u8>> = Rc::new(move |n| {
        let keyed = format!("{path}?{ACK_KEY}={}", ack_key(node, phase, n));
        request("POST", &keyed, None, Some(&body))
    });
    let acked = acked.clone();
    let on_ok: Rc<dyn Fn(u64)> = Rc::new(move |n| {
        acked.borrow_mut().insert(ack_key(node, phase, n));
    });
    let s = load::run(
        addr,
        connections,
        duration,
        None,
        make,
        on_ok,
        Duration::ZERO,
    )
    .await;
    Measured::from(&s)
}

/// The [`ACK_KEY`]s of `agent`'s events in the database (read by the harness beside
/// the hubs, after the load).
fn stored_keys(opts: &muninn::store::StoreOptions, agent: i64) -> Result<HashSet<String>> {
    #[derive(diesel::QueryableByName)]
    struct P {
        #[diesel(sql_type = diesel::sql_types::Text)]
        payload: String,
    }
    let mut conn = muninn::store::establish(opts)?;
    // The id is the agent's own, an integer: no binding needed, and one text for both
    // backends' placeholders.
    let rows: Vec<P> = diesel::sql_query(format!(
        "SELECT payload FROM events WHERE agent_id = {agent}"
    ))
    .load(&mut conn)?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let v: serde_json::Value = serde_json::from_str(&r.payload).ok()?;
            v.get(ACK_KEY)?.as_str().map(str::to_string)
        })
        .collect())
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
    while started.elapsed() < DELIVERY_BOUND {
        let mut c = Conn::open(sink.addr).await?;
        let (_, body, _) = c.roundtrip(&request("GET", "/count", None, None)).await?;
        got = String::from_utf8_lossy(&body).trim().parse().unwrap_or(0);
        if got >= DELIVERIES {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    if got < DELIVERIES {
        bail!(
            "only {got} of {DELIVERIES} deliveries arrived within {} s",
            DELIVERY_BOUND.as_secs()
        );
    }
    Ok(got as f64 / started.elapsed().as_secs_f64())
}

fn ingest_row(rows: &mut Vec<Row>, what: &str, i: &Ingested, base: f64) {
    let m = &i.load;
    row(
        rows,
        what,
        format!("{:.0} req/s", m.rps),
        format!(
            "{:.0} % of SQLite's; p50 {:.2} ms, p99 {:.2} ms (worst node), {} failed; lost: {} of {} acknowledged",
            100.0 * m.rps / base,
            m.p50_ms,
            m.p99_ms,
            m.failed,
            i.lost,
            i.acked
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
        sqlite.load.rps,
    );
    let one = ingest(bin, Some(&cluster.database("one")?), 1, cli).await?;
    ingest_row(
        rows,
        &format!("ingest {label}, PostgreSQL, 1 node"),
        &one,
        sqlite.load.rps,
    );
    let two = ingest(bin, Some(&cluster.database("two")?), 2, cli).await?;
    ingest_row(
        rows,
        &format!("ingest {label}, PostgreSQL, 2 nodes on one database"),
        &two,
        sqlite.load.rps,
    );
    let lite = deliveries(bin, None).await?;
    row(
        rows,
        "deliveries, SQLite FULL, 1 node, 1 subscription",
        format!("{lite:.0} deliveries/s"),
        format!("{DELIVERIES} queued events"),
    );
    match deliveries(bin, Some(&cluster.database("deliveries")?)).await {
        Ok(pg) => row(
            rows,
            "deliveries, PostgreSQL, 1 node, 1 subscription",
            format!("{pg:.0} deliveries/s"),
            format!(
                "{DELIVERIES} queued events; {:.0} % of SQLite's",
                100.0 * pg / lite
            ),
        ),
        Err(e) => row(
            rows,
            "deliveries, PostgreSQL, 1 node, 1 subscription",
            "FAILED".into(),
            format!("{e:#}"),
        ),
    }
    Ok(())
}
