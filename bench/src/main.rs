//! `muninn-bench`: starts the release `muninn` binary on loopback with a fresh data dir,
//! drives it with its own HTTP load generator next to two reference servers built from
//! the same crates, and prints one table. Every run is bounded in time and sends
//! traffic only to 127.0.0.1.
//!
//! Usage: `cargo build --release --workspace && target/release/muninn-bench`
//! (see README, "Benchmark").

mod bodies;
mod e2e;
mod growth;
mod ingest;
mod load;
mod outbound;
mod postgres;
mod reference;
mod wrk;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use load::{Conn, Stats, request};

const TOKEN: &str = "bench-admin-token-0123456789abcdef";

const DEFAULT_HUB_LOG: &str = "warn,muninn=info";
/// What the default run (every row, the 10 M growth row included) should take on a 2-core
/// machine with a release build.
const BUDGET_MINUTES: f64 = 15.0;
/// `--hub-log`, set once at the start.
static HUB_LOG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

#[derive(Parser)]
#[command(
    name = "muninn-bench",
    about = "Benchmark the muninn binary against reference servers on loopback."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Seconds per load run (6: the whole default run then fits in 15 minutes on a
    /// 2-core machine; the matrix alone is 48 runs).
    #[arg(long, default_value_t = 6)]
    duration: u64,
    /// Concurrent connections for the ingest runs.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// The muninn binary [default: target/release/muninn next to this binary]
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Rounds of the ingest matrix (interleaved); rows show the median round.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Body sizes of the ingest runs, in bytes: a sensor reading, a Stripe-like event,
    /// a GitHub-like push (see bodies.rs).
    #[arg(long, value_delimiter = ',', default_values_t = [203, 2048, 8192])]
    bodies: Vec<usize>,
    /// A second muninn binary measured in the same rounds right after the first, with
    /// the same body and generator, for an A/B comparison on a noisy machine: its rows
    /// say "(compare)".
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Leave out the 10 M-event growth row (2.8 GB of disk; building and measuring it
    /// took 1 of the default run's 9 minutes in session 31).
    #[arg(long)]
    no_10m: bool,
    /// Accepted for old command lines: the 10 M row is part of the default run now.
    #[arg(long, hide = true)]
    growth_10m: bool,
    /// Also run the durable ceiling with SQLite's automatic checkpoints on its writer
    /// thread (as muninn had them), beside each FULL row: the A/B of moving them off.
    #[arg(long)]
    inline_checkpoint_reference: bool,
    /// Skip the growth rows (a database of 1 M events, its reads and its expiry).
    #[arg(long)]
    no_growth: bool,
    /// The hubs' log filter. Other than the default, the hubs' log lines are copied to
    /// stderr: `--hub-log warn,muninn::store::checkpoint=debug` shows each WAL
    /// checkpoint and how long it took, to line up with the slow requests.
    #[arg(long, default_value = DEFAULT_HUB_LOG)]
    hub_log: String,
    /// Only the end-to-end rows: one FULL ingest run (203 B, own generator, after a 1 s
    /// warm-up) to measure the capacity, then webhooks paced at 400 req/s and at 10 %
    /// and 50 % of it (about a minute).
    #[arg(long)]
    e2e_only: bool,
    /// Pace the end-to-end rows by this ingest rate (req/s) instead of the one the run
    /// measures: to compare with an earlier run's capacity, or to see how the rows
    /// fail when the pace is more than the machine can take.
    #[arg(long)]
    e2e_capacity: Option<f64>,
    /// Skip the outbound runs and the idle-RSS run (ingest only).
    #[arg(long)]
    ingest_only: bool,
    /// Only the growth rows (and the expiry rows): no ingest matrix, no outbound.
    #[arg(long)]
    growth_only: bool,
    /// Add the PostgreSQL rows (needs PostgreSQL installed; starts its own throwaway
    /// cluster): ingest with one node on SQLite, one on PostgreSQL and two on one
    /// PostgreSQL database, and deliveries/s on each backend (see postgres.rs).
    #[arg(long)]
    postgres: bool,
}

/// The hub's allocator, so that the references' ceilings are not lowered by a
/// different one: the ratios compare request handling, not allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Subcommand)]
enum Cmd {
    /// Serve a reference (used by the harness itself): framework, durable or sink.
    Reference {
        #[arg(long)]
        kind: String,
        #[arg(long, default_value = "full")]
        synchronous: String,
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 0)]
        workers: usize,
    },
    /// One webhook-ingest run against the hub alone, printing its pid first: for
    /// profiling with perf while the load runs (`--duration`, `--connections` apply).
    Ingest {
        #[arg(long, default_value = "full")]
        synchronous: String,
        /// What to load: the hub, or the `durable` or `framework` reference (to
        /// compare their per-request costs with the same tools).
        #[arg(long, default_value = "hub")]
        against: String,
    },
    /// The idle-memory rows alone: RSS of a restarted hub holding 10 000 agents
    /// (webhook agents, and a mix of 23 types) and 1 000 subscriptions.
    Idle,
    /// Builds a growth database (as the growth rows do) in `--data-dir` and leaves it
    /// there, for `EXPLAIN QUERY PLAN` or a hub of one's own: a webhook agent, a
    /// 40-item feed of it and `--events` copies of a 203-byte event.
    BuildDb {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
}

/// A child process serving HTTP on loopback; killed when dropped.
struct Proc {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Peak and current resident memory of the process, in MiB (VmHWM, VmRSS).
    fn rss_mib(&self) -> (f64, f64) {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(f64::NAN, |kb| kb / 1024.0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn start_reference(kind: &str, sync: &str, dir: &Path) -> Result<Proc> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "reference",
            "--kind",
            kind,
            "--synchronous",
            sync,
            "--workers",
        ])
        .arg(workers().to_string())
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("reference stdout")?;
    // Killed when dropped, should its address not come.
    let mut proc = Proc {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    proc.addr = line
        .trim()
        .strip_prefix("listening ")
        .context("reference did not print its address")?
        .parse()?;
    Ok(proc)
}

fn start_hub(bin: &Path, dir: &Path, sync: &str) -> Result<Proc> {
    start_hub_with(bin, dir, sync, &[])
}

/// [`start_hub`] with environment variables of its own (`MUNINN_<SECTION>_<KEY>`
/// settings: a hub that does not know one ignores it, so older builds still run).
fn start_hub_with(bin: &Path, dir: &Path, sync: &str, envs: &[(&str, String)]) -> Result<Proc> {
    let config = dir.join("muninn.toml");
    let log = HUB_LOG.get().map_or(DEFAULT_HUB_LOG, String::as_str);
    let echo = log != DEFAULT_HUB_LOG;
    // The harness reads the hub's address from its "muninn is listening" line (info,
    // from `muninn::server`): a `--hub-log` filter that leaves it out must not.
    let log = if echo {
        format!("{log},muninn::server=info")
    } else {
        log.to_string()
    };
    std::fs::write(
        &config,
        format!(
            "[delivery]\nallow_private_targets = true\npoll_interval_ms = 100\n[inbound]\ndefault_rate_limit_per_minute = 0\n[log]\nlevel = {}\n",
            Value::from(log)
        ),
    )?;
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--synchronous",
            sync,
            "--data-dir",
        ])
        .arg(dir)
        .env("MUNINN_CONFIG", &config)
        .env("MUNINN_ADMIN_TOKEN", TOKEN)
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stdout = child.stdout.take().context("hub stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if echo {
                eprintln!("{line}");
            }
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["fields"]["message"] == "muninn is listening"
                && let Some(a) = v["fields"]["address"].as_str()
            {
                let _ = tx.send(a.to_string());
            }
        }
    });
    // Owned by a `Proc` from here, so a hub whose address never comes is killed (when
    // `proc` is dropped) rather than left running behind the harness.
    let mut proc = Proc {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    proc.addr = rx
        .recv_timeout(Duration::from_secs(60))
        .context("muninn did not report its address")?
        .parse()
        .context("muninn's address")?;
    Ok(proc)
}

/// One API call on its own connection.
async fn api(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    let mut c = Conn::open(addr).await?;
    let bytes = body.map(|b| b.to_string().into_bytes());
    let (status, body, _) = c
        .roundtrip(&request(method, path, Some(TOKEN), bytes.as_deref()))
        .await?;
    if !(200..300).contains(&status) {
        bail!(
            "{method} {path} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn webhook_agent(addr: SocketAddr) -> Result<String> {
    let a = api(
        addr,
        "POST",
        "/api/agents",
        Some(json!({"type": "webhook", "name": "bench", "options": {"secret": "s"}})),
    )
    .await?;
    let id = a["id"].as_i64().context("agent id")?;
    Ok(format!("/users/1/web_requests/{id}/s"))
}

/// Webhooks of the first body size (a sensor reading by default) to `path`.
fn post_maker(path: String, body: &[u8]) -> Rc<dyn Fn(u64) -> Vec<u8>> {
    let req = request("POST", &path, None, Some(body));
    Rc::new(move |_| req.clone())
}

fn no_op() -> Rc<dyn Fn(u64)> {
    Rc::new(|_| {})
}

/// Numbered webhooks (`{"n": 7, ...}`) to `path`, for the feed run whose items show `n`.
fn numbered_maker(path: String) -> Rc<dyn Fn(u64) -> Vec<u8>> {
    Rc::new(move |n| {
        let body = format!("{{\"n\":{n},\"source\":\"bench\",\"items\":[1,2,3]}}");
        request("POST", &path, None, Some(body.as_bytes()))
    })
}

/// See [`Cmd::Ingest`]. After the run it prints the hub's writer metrics, the batch
/// sizes that explain most of its cost.
async fn ingest_alone(cli: Cli, sync: String, against: String) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let body = bodies::body(cli.bodies.first().copied().unwrap_or(203));
    let duration = Duration::from_secs(cli.duration);
    let own = ingest::Generator::Own;
    if against != "hub" {
        let reference = start_reference(&against, &sync, dir.path())?;
        println!("hub pid {}", reference.child.id());
        let s = ingest::measure(
            own,
            reference.addr,
            "/",
            &body.bytes,
            cli.connections,
            duration,
            dir.path(),
        )
        .await?;
        print_ingest(&format!("{against} {sync}, {}", body.label), &s);
        return Ok(());
    }
    let hub = start_hub(&hub_bin(&cli)?, dir.path(), &sync)?;
    let path = webhook_agent(hub.addr).await?;
    println!("hub pid {}", hub.child.id());
    let s = ingest::measure(
        own,
        hub.addr,
        &path,
        &body.bytes,
        cli.connections,
        duration,
        dir.path(),
    )
    .await?;
    print_ingest(&format!("{sync}, {}", body.label), &s);
    let mut c = Conn::open(hub.addr).await?;
    let (_, body, _) = c
        .roundtrip(&request("GET", "/metrics", Some(TOKEN), None))
        .await?;
    for line in String::from_utf8_lossy(&body).lines() {
        if line.starts_with("muninn_writer_") {
            println!("{line}");
        }
    }
    Ok(())
}

fn print_ingest(what: &str, s: &ingest::Measured) {
    println!(
        "{what}: {:.0} req/s, {}, {} failed",
        s.rps,
        s.tail(),
        s.failed
    );
}

struct Row {
    what: String,
    value: String,
    note: String,
}

fn row(rows: &mut Vec<Row>, what: &str, value: String, note: String) {
    println!("  {what}: {value} {note}");
    rows.push(Row {
        what: what.into(),
        value,
        note,
    });
}

/// GETs of a `data_output` feed of 40 events at 32 connections. The first GET renders
/// the feed; the rest are answered from its cache until a source emits again. Returns
/// the load's stats and the hub's own count of cache hits.
async fn feed_gets(bin: &Path, cli: &Cli) -> Result<(Stats, u64, usize)> {
    let dir = tempfile::tempdir()?;
    let hub = start_hub(bin, dir.path(), "normal")?;
    let path = webhook_agent(hub.addr).await?;
    let source: i64 = path
        .split('/')
        .nth(4)
        .and_then(|id| id.parse().ok())
        .context("webhook agent id")?;
    let sent = load::run(
        hub.addr,
        4,
        Duration::from_secs(60),
        Some(40),
        numbered_maker(path),
        no_op(),
        Duration::ZERO,
    )
    .await;
    if sent.ok != 40 {
        bail!("only {} of 40 feed events were accepted", sent.ok);
    }
    let feed = api(
        hub.addr,
        "POST",
        "/api/agents",
        Some(
            json!({"type": "data_output", "name": "bench feed", "source_ids": [source],
            "options": {"secrets": ["feed-key"], "events_to_show": 40,
                "template": {"title": "bench", "description": "bench feed",
                    "item": {"title": "event {{ n }}", "description": "{{ n }}"}}}}),
        ),
    )
    .await?;
    let id = feed["id"].as_i64().context("feed agent id")?;
    let url = format!("/users/1/web_requests/{id}/feed-key.xml");
    let mut c = Conn::open(hub.addr).await?;
    let (status, body, _) = c.roundtrip(&request("GET", &url, None, None)).await?;
    if status != 200 {
        bail!(
            "the feed answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let make: Rc<dyn Fn(u64) -> Vec<u8>> = Rc::new(move |_| request("GET", &url, None, None));
    let stats = load::run(
        hub.addr,
        cli.connections,
        Duration::from_secs(cli.duration),
        None,
        make,
        no_op(),
        Duration::ZERO,
    )
    .await;
    // A new connection: the first one has been idle past the keep-alive timeout.
    let mut c = Conn::open(hub.addr).await?;
    let (_, metrics, _) = c.roundtrip(&request("GET", "/metrics", None, None)).await?;
    let hits = String::from_utf8_lossy(&metrics)
        .lines()
        .find_map(|l| l.strip_prefix("muninn_feed_cache_hits_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64;
    Ok((stats, hits, body.len()))
}

/// How many types the mixed idle run takes in turn.
const MIXED_TYPES: u64 = 23;

/// The agents of the mixed idle run, taken in turn: the types Huginn users' scenarios
/// use most, each with options like theirs (templates compiled, regexes, a jq filter,
/// fetchers on their default schedules pointed at a closed local port), and the types
/// added since (key_value_store, java_script and sentiment, which need the settings
/// [`mixed_env`] gives, liquid_output, the detectors, jabber, slack). No agent runs
/// while the hub idles: java_script's worker process is started per run only.
fn mixed_agent(n: u64) -> Value {
    let (kind, options) = match n % MIXED_TYPES {
        0 => ("webhook", json!({"secret": format!("s{n}")})),
        1 => (
            "website",
            json!({"url": "http://127.0.0.1:9/page", "expected_update_period_in_days": 1,
                   "extract": {"t": {"css": "title", "value": "string(.)"}}}),
        ),
        2 => (
            "rss",
            json!({"url": "http://127.0.0.1:9/feed.xml", "expected_update_period_in_days": 1}),
        ),
        3 => (
            "trigger",
            json!({"rules": [{"type": "regex", "path": "x", "value": "y\\d+"}],
                   "message": "m {{x}}", "expected_receive_period_in_days": 1}),
        ),
        4 => (
            "event_formatting",
            json!({"instructions": {"m": "{{x | upcase}}"}}),
        ),
        5 => (
            "email",
            json!({"subject": "s {{x}}", "expected_receive_period_in_days": 1,
                   "recipients": ["a@example.com"]}),
        ),
        6 => (
            "email_digest",
            json!({"subject": "s", "expected_receive_period_in_days": 1,
                   "recipients": ["a@example.com"]}),
        ),
        7 => ("digest", json!({"expected_receive_period_in_days": 1})),
        8 => ("jq", json!({"filter": ".items[] | {name: .}"})),
        9 => (
            "change_detector",
            json!({"property": "{{x}}", "expected_update_period_in_days": 1}),
        ),
        10 => ("json_parse", json!({"data": "{{d}}", "data_key": "d"})),
        11 => (
            "de_duplication",
            json!({"property": "{{x}}", "expected_update_period_in_days": 1}),
        ),
        12 => (
            "csv",
            json!({"mode": "parse", "with_header": "true", "data_path": "$.data"}),
        ),
        14 => (
            "key_value_store",
            json!({"key": "{{ k }}", "value": "{{ v }}", "variable": format!("kvs{n}")}),
        ),
        15 => (
            "java_script",
            json!({"code": "Agent.receive = function() { var e = this.incomingEvents(); \
                   for (var i = 0; i < e.length; i++) { this.createEvent(e[i].payload); } };"}),
        ),
        16 => (
            "sentiment",
            json!({"content": "$.message", "expected_receive_period_in_days": 1}),
        ),
        17 => (
            "liquid_output",
            json!({"secret": format!("s{n}"), "content": "{{ x }}",
                   "expected_receive_period_in_days": "2", "event_limit": "15 minutes"}),
        ),
        18 => (
            "peak_detector",
            json!({"value_path": "count", "group_by_path": "filter", "min_events": "4",
                   "message": "A peak of {{count}}", "expected_receive_period_in_days": "2"}),
        ),
        19 => (
            "gap_detector",
            json!({"value_path": "count", "window_duration_in_days": "2",
                   "message": "No data has been received!"}),
        ),
        20 => (
            "attribute_difference",
            json!({"path": "rate", "output": "rate_diff", "method": "integer_difference",
                   "expected_update_period_in_days": 1}),
        ),
        21 => (
            "jabber",
            json!({"jabber_server": "127.0.0.1", "jabber_port": "9",
                   "jabber_sender": "huginn@localhost", "jabber_receiver": "me@localhost",
                   "message": "{{ x }}", "expected_receive_period_in_days": "2"}),
        ),
        22 => (
            "slack",
            json!({"webhook_url": "http://127.0.0.1:9/slack", "channel": "#random",
                   "message": "{{ x }}"}),
        ),
        _ => (
            "post",
            json!({"post_url": "http://127.0.0.1:9/post", "expected_receive_period_in_days": 1}),
        ),
    };
    json!({"type": kind, "name": format!("a{n}"), "options": options})
}

/// What the mixed idle run's hub needs beside the defaults: insecure agents on (the
/// java_script agents) and a lexicon (the sentiment agents; the made-up test lexicon,
/// since muninn ships none), written into `dir`.
fn mixed_env(dir: &Path) -> Result<Vec<(&'static str, String)>> {
    let lexicon = dir.join("lexicon.csv");
    std::fs::write(
        &lexicon,
        include_str!("../../fixtures/sentiment/lexicon.csv"),
    )?;
    Ok(vec![
        ("MUNINN_INSECURE_AGENTS_ENABLED", "true".to_string()),
        (
            "MUNINN_SENTIMENT_LEXICON_PATH",
            lexicon.to_string_lossy().into_owned(),
        ),
    ])
}

/// RSS of an idle hub holding `agents` agents (webhook agents, or a mix of types) and
/// `subs` subscriptions.
async fn idle_rss(bin: &Path, agents: u64, subs: u64, mixed: bool) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let env = if mixed {
        mixed_env(dir.path())?
    } else {
        Vec::new()
    };
    let hub = start_hub_with(bin, dir.path(), "normal", &env)?;
    let mk_agent: Rc<dyn Fn(u64) -> Vec<u8>> = Rc::new(move |n| {
        let b = if mixed {
            mixed_agent(n)
        } else {
            json!({"type": "webhook", "name": format!("a{n}"), "options": {"secret": format!("s{n}")}})
        };
        request(
            "POST",
            "/api/agents",
            Some(TOKEN),
            Some(b.to_string().as_bytes()),
        )
    });
    let s = load::run(
        hub.addr,
        8,
        Duration::from_secs(600),
        Some(agents),
        mk_agent,
        no_op(),
        Duration::ZERO,
    )
    .await;
    let mk_sub: Rc<dyn Fn(u64) -> Vec<u8>> = Rc::new(|_| {
        let b =
            json!({"url": "http://127.0.0.1:9/none", "event_types": ["never.sent"]}).to_string();
        request(
            "POST",
            "/api/webhooks/outgoing",
            Some(TOKEN),
            Some(b.as_bytes()),
        )
    });
    let t = load::run(
        hub.addr,
        8,
        Duration::from_secs(600),
        Some(subs),
        mk_sub,
        no_op(),
        Duration::ZERO,
    )
    .await;
    if s.ok != agents || t.ok != subs {
        bail!("created {} agents and {} subscriptions", s.ok, t.ok);
    }
    // Restart so the figure is what a hub loading them from the database holds.
    drop(hub);
    let hub = start_hub_with(bin, dir.path(), "normal", &env)?;
    actix_rt::time::sleep(Duration::from_secs(3)).await;
    Ok(hub.rss_mib().1)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split(':')
                    .nth(1)
                    .map(|s| s.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(String::new(), |kb| {
            format!(", {:.1} GiB RAM", kb / 1024.0 / 1024.0)
        });
    format!("{} x {cpu}{mem}", workers())
}

/// Each round's `hub` rate as a percentage of the same round's `reference` rate.
/// The median (the mean of the middle two of an even count); NaN when empty.
fn median_of(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The muninn binary to measure: `--bin`, or the one built next to this binary.
fn hub_bin(cli: &Cli) -> Result<PathBuf> {
    let bin = match &cli.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("muninn"),
    };
    if !bin.exists() {
        bail!(
            "{} does not exist; run `cargo build --release --workspace` first or pass --bin",
            bin.display()
        );
    }
    Ok(bin)
}

async fn bench(cli: Cli) -> Result<()> {
    let started = std::time::Instant::now();
    let bin = hub_bin(&cli)?;
    println!(
        "machine: {}; {} s per run, {} connections",
        machine(),
        cli.duration,
        cli.connections
    );
    let mut rows = Vec::new();
    if cli.growth_10m {
        eprintln!("--growth-10m: the 10 M-event row is part of the default run now");
    }
    if cli.growth_only {
        growth_rows(&bin, &cli, &mut rows).await?;
        print_table(rows, started);
        return Ok(());
    }
    if cli.e2e_only {
        e2e_rows(&bin, &cli, given_capacity(&cli), &mut rows).await;
        print_table(rows, started);
        return Ok(());
    }

    let bodies: Vec<bodies::Body> = cli.bodies.iter().map(|&n| bodies::body(n)).collect();
    let mut generators = vec![ingest::Generator::Own];
    if wrk::available() {
        generators.push(ingest::Generator::Wrk);
    } else {
        row(
            &mut rows,
            "wrk",
            "not installed".into(),
            "apt-get install wrk: only muninn-bench's own generator measured ingest in this run"
                .into(),
        );
    }
    let hubs = ingest::hubs(&bin, cli.compare.as_deref());
    let mut parts = Parts::new();
    let matrix = ingest::run(
        &hubs,
        &bodies,
        &generators,
        cli.rounds,
        cli.connections,
        Duration::from_secs(cli.duration),
        cli.inline_checkpoint_reference,
    )
    .await?;
    matrix.rows(&mut rows, &bodies, &generators, &hubs);
    // The end-to-end rows pace their webhooks by this rate.
    let capacity = given_capacity(&cli).or_else(|| {
        let b = bodies.iter().position(|b| b.bytes.len() == e2e::BODY)?;
        let rps = matrix.median_rps(b, ingest::Generator::Own, "full")?;
        Some((
            rps,
            "(this run's FULL row, 203 B, muninn-bench)".to_string(),
        ))
    });
    parts.done("ingest matrix");
    row(
        &mut rows,
        "peak RSS of the hub during ingest (FULL runs)",
        format!("{:.1} MiB", matrix.peak_rss_full),
        "target < 50 MiB".into(),
    );
    if cli.postgres {
        let done = postgres::rows(&bin, &cli, &mut rows).await;
        failed_part(&mut rows, "the PostgreSQL rows", done);
        parts.done("PostgreSQL rows");
    }

    if !cli.ingest_only && !cli.no_growth {
        let done = growth_rows(&bin, &cli, &mut rows).await;
        failed_part(&mut rows, "the growth rows", done);
        parts.done("growth and expiry");
    }

    if !cli.ingest_only {
        // 30 000 deliveries, so the run lasts seconds: at 10 000 it was over in under a
        // second and a single poll interval (100 ms) moved the result by a fifth.
        for (subs, events) in [(1, 10_000), (10, 3_000), (100, 300)] {
            let done = outbound::rows(&bin, subs, events, cli.duration, &mut rows).await;
            failed_part(&mut rows, &format!("outbound to {subs}"), done);
        }
        parts.done("outbound");
        e2e_rows(&bin, &cli, capacity, &mut rows).await;
        parts.done("end-to-end");
        let done = later_rows(&bin, &cli, &mut rows).await;
        failed_part(&mut rows, "feed and idle rows", done);
        parts.done("feed and idle");
    }

    print_table(rows, started);
    parts.print();
    Ok(())
}

/// How long each part of the run took, printed after the table: what to shorten when
/// the whole run does not fit in [`BUDGET_MINUTES`].
struct Parts {
    last: std::time::Instant,
    took: Vec<(&'static str, f64)>,
}

impl Parts {
    fn new() -> Parts {
        Parts {
            last: std::time::Instant::now(),
            took: Vec::new(),
        }
    }

    fn done(&mut self, what: &'static str) {
        let now = std::time::Instant::now();
        self.took
            .push((what, now.duration_since(self.last).as_secs_f64() / 60.0));
        self.last = now;
    }

    fn print(&self) {
        let shown: Vec<String> = self
            .took
            .iter()
            .map(|(what, min)| format!("{what} {min:.1} min"))
            .collect();
        println!("by part: {}", shown.join(", "));
    }
}

/// A part of the run that failed leaves a row saying so, and the run goes on: one
/// broken row must not cost the rest of a 15-minute table.
fn failed_part(rows: &mut Vec<Row>, what: &str, done: Result<()>) {
    if let Err(e) = done {
        row(rows, what, "FAILED".into(), format!("{e:#}"));
    }
}

/// `--e2e-capacity`, with the words its rows say it with.
fn given_capacity(cli: &Cli) -> Option<(f64, String)> {
    cli.e2e_capacity
        .map(|c| (c, "(given with --e2e-capacity)".to_string()))
}

/// The ingest capacity the end-to-end rows are paced by when the matrix did not
/// measure it (`--e2e-only`, or `--bodies` without 203): one FULL run of the 203 B
/// body with the own generator, as the matrix's row is measured.
async fn e2e_capacity(bin: &Path, cli: &Cli) -> Result<(f64, String)> {
    let dir = tempfile::tempdir()?;
    let hub = start_hub(bin, dir.path(), "full")?;
    let path = webhook_agent(hub.addr).await?;
    let s = ingest::measure(
        ingest::Generator::Own,
        hub.addr,
        &path,
        &bodies::body(e2e::BODY).bytes,
        cli.connections,
        Duration::from_secs(cli.duration),
        dir.path(),
    )
    .await?;
    print_ingest("ingest capacity for the end-to-end rows, FULL, 203 B", &s);
    Ok((
        s.rps,
        "(FULL, 203 B, muninn-bench, one run of its own)".to_string(),
    ))
}

/// The end-to-end rows, paced by `capacity` (measured here when the matrix did not).
async fn e2e_rows(bin: &Path, cli: &Cli, capacity: Option<(f64, String)>, rows: &mut Vec<Row>) {
    let capacity = match capacity {
        Some(c) => Ok(c),
        None => e2e_capacity(bin, cli).await,
    };
    match capacity {
        Ok((rps, source)) => e2e::rows(bin, rps, &source, cli.connections, rows).await,
        Err(e) => failed_part(rows, "the ingest capacity for the end-to-end rows", Err(e)),
    }
}

/// The feed and idle-RSS rows.
async fn later_rows(bin: &Path, cli: &Cli, rows: &mut Vec<Row>) -> Result<()> {
    let (feed, hits, bytes) = feed_gets(bin, cli).await?;
    row(
        rows,
        &format!("cached feed GETs (RSS, 40 items, {bytes} bytes)"),
        format!("{:.0} req/s", feed.rps()),
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, {} failed, {hits} of {} answered from the cache",
            feed.quantile_ms(0.5),
            feed.quantile_ms(0.99),
            feed.failed,
            feed.ok + feed.failed
        ),
    );
    let rss = idle_rss(bin, 10_000, 1_000, false).await?;
    row(
        rows,
        "idle RSS, 10 000 webhook agents + 1 000 subscriptions",
        format!("{rss:.1} MiB"),
        String::new(),
    );
    let rss = idle_rss(bin, 10_000, 1_000, true).await?;
    row(
        rows,
        &format!("idle RSS, 10 000 agents of {MIXED_TYPES} types + 1 000 subscriptions"),
        format!("{rss:.1} MiB"),
        "website, rss, trigger, email, email_digest, digest, jq, key_value_store, \
         java_script, sentiment, liquid_output, jabber, slack, ... in turn"
            .into(),
    );
    Ok(())
}

/// The growth rows (1 M and 10 M events; 1 M only with `--no-10m`) and the expiry rows.
async fn growth_rows(bin: &Path, cli: &Cli, rows: &mut Vec<Row>) -> Result<()> {
    let mut sizes = vec![1_000_000];
    if !cli.no_10m {
        sizes.push(10_000_000);
    }
    let body = bodies::body(203);
    let d = Duration::from_secs(cli.duration);
    growth::run(bin, &sizes, &body, cli.connections, d, rows).await?;
    growth::expiry(bin, 1_000_000, &body, cli.connections, d, rows).await
}

fn print_table(rows: Vec<Row>, started: std::time::Instant) {
    println!("\n| measurement | result | notes |\n| --- | --- | --- |");
    for r in rows {
        println!("| {} | {} | {} |", r.what.trim(), r.value, r.note);
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!("\nthe whole run took {minutes:.1} min");
    if minutes > BUDGET_MINUTES {
        println!(
            "that is over the {BUDGET_MINUTES} minutes the default run is meant to fit in: a loaded machine, or a debug build"
        );
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let _ = HUB_LOG.set(cli.hub_log.clone());
    match &cli.command {
        Some(Cmd::Reference {
            kind,
            synchronous,
            data_dir,
            workers: w,
        }) => reference::serve(
            kind,
            synchronous,
            data_dir,
            if *w == 0 { workers() } else { *w },
        ),
        Some(Cmd::Ingest {
            synchronous,
            against,
        }) => {
            let (sync, against) = (synchronous.clone(), against.clone());
            actix_rt::System::new().block_on(ingest_alone(cli, sync, against))
        }
        Some(Cmd::Idle) => actix_rt::System::new().block_on(async {
            let bin = hub_bin(&cli)?;
            for mixed in [false, true] {
                let rss = idle_rss(&bin, 10_000, 1_000, mixed).await?;
                let what = if mixed {
                    format!("of {MIXED_TYPES} types")
                } else {
                    "(webhook)".to_string()
                };
                println!("idle RSS, 10 000 agents {what} + 1 000 subscriptions: {rss:.1} MiB");
            }
            Ok(())
        }),
        Some(Cmd::BuildDb { data_dir, events }) => {
            let (dir, n) = (data_dir.clone(), *events);
            actix_rt::System::new().block_on(async {
                let bin = hub_bin(&cli)?;
                growth::build(&bin, &dir, n, &bodies::body(203)).await
            })
        }
        None => actix_rt::System::new().block_on(bench(cli)),
    }
}

#[cfg(test)]
mod tests {
    use super::median_of;

    #[test]
    fn the_median_of_the_rounds_ratios() {
        assert_eq!(median_of(&[74.0, 55.0, 92.0]), 74.0);
        assert_eq!(median_of(&[40.0, 49.0]), 44.5);
        assert!(median_of(&[]).is_nan());
    }
}
