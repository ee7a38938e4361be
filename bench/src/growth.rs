//! The growth rows: the hub with a database that already holds 1 M (and, with
//! unless `--no-10m`, 10 M) events, against a small one in the same run. The events are
//! written by the harness in bulk, straight into SQLite with the hub stopped (copies
//! of one event the hub itself stored from a webhook, so every column is as the hub
//! writes it), not through HTTP: 10 M webhooks would take minutes, a bulk insert
//! seconds. Then the hub is started again on it and measured: webhook ingest, the
//! reads that walk the events, and the file's size. The baseline is a database of
//! [`BASELINE`] events built the same way, so that each read returns as many rows as
//! at 1 M (a page of 100 events, a feed of 40): against an empty database a page read
//! returned one row, and the ratio measured the page size rather than the growth.
//! Expiry has rows of its own: a database of 1 M expired events, ingest p99 before
//! and while the hub deletes them.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use muninn::store::{StoreOptions, Synchronous, establish};
use serde_json::json;

use crate::bodies::Body;
use crate::ingest::Measured;
use crate::load::{Conn, request};
use crate::{Row, TOKEN, api, row};

/// How long the expiry rows wait for the expired events to go, from the first run.
const EXPIRY_BOUND: Duration = Duration::from_secs(45);

/// Events in the database every growth row is compared with.
const BASELINE: u64 = 1_000;

/// Requests per read measurement; the row shows their median.
const READS: usize = 21;

/// The agents a growth database holds: the webhook agent its events come from and a
/// 40-item feed of them.
struct Setup {
    agent: i64,
    feed_url: String,
    webhook: String,
}

/// What one database size measured.
struct Sized {
    events: u64,
    built_in: Duration,
    bytes: u64,
    ingest: Measured,
    /// (what, median ms)
    reads: Vec<(&'static str, f64)>,
}

pub(crate) fn opts(dir: &Path) -> StoreOptions {
    StoreOptions {
        path: dir.join("muninn.db"),
        pg_url: None,
        synchronous: Synchronous::Normal,
        busy_timeout: Duration::from_secs(5),
        reader_threads: 1,
        writer_batch_max: 1024,
        writer_queue_max: 20_000,
    }
}

async fn setup(hub: SocketAddr, body: &[u8]) -> Result<Setup> {
    let webhook = crate::webhook_agent(hub).await?;
    let agent: i64 = webhook
        .split('/')
        .nth(4)
        .and_then(|id| id.parse().ok())
        .context("webhook agent id")?;
    let feed = api(
        hub,
        "POST",
        "/api/agents",
        Some(
            json!({"type": "data_output", "name": "growth feed", "source_ids": [agent],
            "options": {"secrets": ["feed-key"], "events_to_show": 40,
                "template": {"title": "bench", "description": "growth feed",
                    "item": {"title": "event {{ id }}", "description": "{{ id }}"}}}}),
        ),
    )
    .await?;
    let feed_id = feed["id"].as_i64().context("feed agent id")?;
    // The template row the bulk insert copies.
    let mut c = Conn::open(hub).await?;
    let (status, _, _) = c
        .roundtrip(&request("POST", &webhook, None, Some(body)))
        .await?;
    if !(200..300).contains(&status) {
        bail!("the template webhook answered {status}");
    }
    Ok(Setup {
        agent,
        feed_url: format!("/users/1/web_requests/{feed_id}/feed-key.xml"),
        webhook,
    })
}

/// Adds `n` copies of the newest event (ids above it, the same agent, payload and
/// time; `expired` moves their expiry into the past) with the hub stopped, and moves
/// the writer's marks past them as the hub's own writer would have, and the agents'
/// cursors, as their catch-up would have: a database that grew while the hub ran
/// has no backlog of a million events for the feed agent to read at the start, and
/// such a backlog took the CPU from every row measured after it.
fn bulk_insert(dir: &Path, n: u64, expired: bool) -> Result<()> {
    let mut conn = establish(&opts(dir))?;
    // A rollback journal rather than the WAL for the bulk insert: in WAL mode every new
    // page would be written twice (the WAL, then the checkpoint), gigabytes at 10 M.
    conn.batch_execute(
        "PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; \
         PRAGMA cache_size = -262144; BEGIN",
    )?;
    let expires = if expired {
        "'2000-01-01 00:00:00'"
    } else {
        "t.expires_at"
    };
    diesel::sql_query(format!(
        "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?), \
         t AS (SELECT * FROM events ORDER BY id DESC LIMIT 1) \
         INSERT INTO events (id, user_id, agent_id, event_type, payload, created_at, \
             expires_at, target_agent_id, root_id, depth) \
         SELECT t.id + seq.i, t.user_id, t.agent_id, t.event_type, t.payload, t.created_at, \
             {expires}, t.target_agent_id, \
             CASE WHEN t.root_id = t.id THEN t.id + seq.i ELSE t.root_id END, t.depth \
         FROM seq, t"
    ))
    .bind::<BigInt, _>(n as i64)
    .execute(&mut conn)?;
    conn.batch_execute(
        "UPDATE agents SET events_count = (SELECT count(*) FROM events WHERE agent_id = agents.id); \
         UPDATE agents SET last_checked_event_id = (SELECT max(id) FROM events); \
         UPDATE writer_marks SET event_ids_reserved = max(event_ids_reserved, (SELECT max(id) FROM events)), \
             events_counted_upto = (SELECT max(id) FROM events) WHERE id = 1; \
         COMMIT; PRAGMA journal_mode = WAL;",
    )?;
    Ok(())
}

/// See `muninn-bench build-db`: the growth rows' database of `events` events in `dir`.
pub async fn build(bin: &Path, dir: &Path, events: u64, body: &Body) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let s = {
        let hub = crate::start_hub(bin, dir, "full")?;
        setup(hub.addr, &body.bytes).await?
    };
    let started = Instant::now();
    bulk_insert(dir, events, false)?;
    println!(
        "{} events in {} in {:.1} s ({:.1} MB); agent {}, feed {}, webhook {}",
        events,
        dir.join("muninn.db").display(),
        started.elapsed().as_secs_f64(),
        db_bytes(dir) as f64 / 1e6,
        s.agent,
        s.feed_url,
        s.webhook
    );
    Ok(())
}

fn db_bytes(dir: &Path) -> u64 {
    ["muninn.db", "muninn.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// The median time of `READS` sequential GETs of `path` (each must answer 200).
async fn timed_get(hub: SocketAddr, path: &str, token: bool) -> Result<f64> {
    let mut c = Conn::open(hub).await?;
    let req = request("GET", path, token.then_some(TOKEN), None);
    let mut ms = Vec::with_capacity(READS);
    for _ in 0..READS {
        let t = Instant::now();
        let (status, body, _) = c.roundtrip(&req).await?;
        if status != 200 {
            bail!(
                "GET {path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(crate::median_of(&ms))
}

/// The feed rendered afresh each time: a webhook to its source first, so the cached
/// rendering is stale, then the timed GET.
async fn timed_feed(hub: SocketAddr, s: &Setup, body: &[u8]) -> Result<f64> {
    let mut c = Conn::open(hub).await?;
    let post = request("POST", &s.webhook, None, Some(body));
    let get = request("GET", &s.feed_url, None, None);
    let mut ms = Vec::with_capacity(READS);
    for _ in 0..READS {
        c.roundtrip(&post).await?;
        let t = Instant::now();
        let (status, _, _) = c.roundtrip(&get).await?;
        if status != 200 {
            bail!("the feed answered {status}");
        }
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(crate::median_of(&ms))
}

async fn max_event_id(hub: SocketAddr) -> Result<i64> {
    let v = api(hub, "GET", "/worker_status", None).await?;
    v["max_id"].as_i64().context("worker_status has no max_id")
}

async fn measure_size(
    bin: &Path,
    events: u64,
    body: &Body,
    connections: usize,
    duration: Duration,
) -> Result<Sized> {
    let dir = tempfile::tempdir()?;
    let s = {
        let hub = crate::start_hub(bin, dir.path(), "full")?;
        setup(hub.addr, &body.bytes).await?
    };
    let started = Instant::now();
    if events > 0 {
        bulk_insert(dir.path(), events, false)?;
    }
    let built_in = started.elapsed();
    let bytes = db_bytes(dir.path());
    let hub = crate::start_hub(bin, dir.path(), "full")?;
    let max = max_event_id(hub.addr).await?;
    let mut reads = vec![
        (
            "GET /api/events?after= from the start",
            timed_get(hub.addr, "/api/events?after=0", true).await?,
        ),
        (
            "GET /api/events?after= from the end",
            timed_get(hub.addr, &format!("/api/events?after={}", max - 10), true).await?,
        ),
        (
            "GET /api/agents/{id}/events",
            timed_get(hub.addr, &format!("/api/agents/{}/events", s.agent), true).await?,
        ),
        (
            "GET /worker_status",
            timed_get(hub.addr, "/worker_status", true).await?,
        ),
        (
            "GET /api/agents (counts above the mark)",
            timed_get(hub.addr, "/api/agents", true).await?,
        ),
    ];
    reads.push((
        "feed of 40 items, rendered afresh",
        timed_feed(hub.addr, &s, &body.bytes).await?,
    ));
    let ingest = crate::ingest::measure(
        crate::ingest::Generator::Own,
        hub.addr,
        &s.webhook,
        &body.bytes,
        connections,
        duration,
        dir.path(),
    )
    .await?;
    println!(
        "  growth {events} events: built in {:.1} s, {:.1} MB; ingest {:.0} req/s, {}; reads {:?}",
        built_in.as_secs_f64(),
        bytes as f64 / 1e6,
        ingest.rps,
        ingest.tail(),
        reads
    );
    Ok(Sized {
        events,
        built_in,
        bytes,
        ingest,
        reads,
    })
}

fn millions(n: u64) -> String {
    if n < 1_000_000 {
        format!("{n} events")
    } else {
        format!("{} M events", n / 1_000_000)
    }
}

/// The growth rows: each size against the baseline database measured in the same run.
pub async fn run(
    bin: &Path,
    sizes: &[u64],
    body: &Body,
    connections: usize,
    duration: Duration,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let mut measured = Vec::new();
    for &n in std::iter::once(&BASELINE).chain(sizes) {
        measured.push(measure_size(bin, n, body, connections, duration).await?);
    }
    let Some((base, grown)) = measured.split_first() else {
        return Ok(());
    };
    let baseline = millions(base.events);
    for g in grown {
        let per_million =
            (g.bytes.saturating_sub(base.bytes)) as f64 / ((g.events - base.events) as f64 / 1e6);
        row(
            rows,
            &format!("growth: {}, size on disk", millions(g.events)),
            format!("{:.0} MB per million events", per_million / 1e6),
            format!(
                "{:.1} MB in all; built by the harness in bulk in {:.1} s",
                g.bytes as f64 / 1e6,
                g.built_in.as_secs_f64()
            ),
        );
        row(
            rows,
            &format!(
                "growth: {}, ingest FULL, {}, muninn-bench",
                millions(g.events),
                body.label
            ),
            format!("{:.0} req/s", g.ingest.rps),
            format!(
                "p99 {:.2} ms; {baseline} {:.0} req/s, p99 {:.2} ms; ratio {:.0} % (target >= 90 %)",
                g.ingest.p99_ms,
                base.ingest.rps,
                base.ingest.p99_ms,
                100.0 * g.ingest.rps / base.ingest.rps
            ),
        );
        for ((what, ms), (_, base_ms)) in g.reads.iter().zip(&base.reads) {
            row(
                rows,
                &format!("growth: {}, {what}", millions(g.events)),
                format!("{ms:.2} ms"),
                format!(
                    "median of {READS}; {baseline} {base_ms:.2} ms; {:.1}x (target <= 2x)",
                    ms / base_ms
                ),
            );
        }
    }
    Ok(())
}

/// Events left that expired (read by the harness while the hub runs: WAL readers do
/// not block the hub's writer).
fn expired_left(dir: &Path) -> Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = establish(&opts(dir))?;
    let r: Vec<N> = diesel::sql_query(
        "SELECT count(*) AS n FROM events WHERE expires_at < '2001-01-01 00:00:00'",
    )
    .load(&mut conn)?;
    Ok(r.first().map_or(0, |r| r.n))
}

/// Expiry of `n` events: ingest p99 before it, and while the hub's Clock deletes them
/// (its first expiry run comes a minute after the start), and how long they took.
pub async fn expiry(
    bin: &Path,
    n: u64,
    body: &Body,
    connections: usize,
    duration: Duration,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let s = {
        let hub = crate::start_hub(bin, dir.path(), "full")?;
        setup(hub.addr, &body.bytes).await?
    };
    bulk_insert(dir.path(), n, true)?;
    // The Clock's first expiry run comes one interval after the start: long enough for
    // the ingest before it, not the default minute (a build without the setting runs
    // it after a minute, which the wait below also covers).
    let interval = duration.as_secs() + 10;
    let hub = crate::start_hub_with(
        bin,
        dir.path(),
        "full",
        &[(
            "MUNINN_AGENTS_EXPIRY_INTERVAL_SECONDS",
            interval.to_string(),
        )],
    )?;
    let ingest = |addr| {
        crate::ingest::measure(
            crate::ingest::Generator::Own,
            addr,
            &s.webhook,
            &body.bytes,
            connections,
            duration,
            dir.path(),
        )
    };
    let before = ingest(hub.addr).await?;
    if expired_left(dir.path())? < n as i64 {
        bail!("expiry began during the ingest before it");
    }
    // Until the first batch is gone (bounded: a minute and a bit).
    let waited = Instant::now();
    while expired_left(dir.path())? == n as i64 {
        if waited.elapsed() > Duration::from_secs(75) {
            bail!("the hub did not begin deleting expired events");
        }
        actix_rt::time::sleep(Duration::from_millis(500)).await;
    }
    let expiry_started = Instant::now();
    let during = ingest(hub.addr).await?;
    // Then until they are gone, bounded: the rate is the row, the rest is extrapolated.
    let mut left = expired_left(dir.path())?;
    while left > 0 && expiry_started.elapsed() < EXPIRY_BOUND {
        actix_rt::time::sleep(Duration::from_millis(500)).await;
        left = expired_left(dir.path())?;
    }
    let took = expiry_started.elapsed();
    let deleted = n as i64 - left;
    let shown =
        api(hub.addr, "GET", &format!("/api/agents/{}", s.agent), None).await?["events_count"]
            .as_i64()
            .context("the agent has no events_count")?;
    let stored = events_of(dir.path(), s.agent)?;
    println!(
        "  expiry of {n}: before {}; during {}; {deleted} deleted in {:.1} s",
        before.tail(),
        during.tail(),
        took.as_secs_f64()
    );
    row(
        rows,
        &format!("growth: expiry of {} (all expired)", millions(n)),
        format!(
            "{:.0} events/s deleted",
            deleted as f64 / took.as_secs_f64()
        ),
        format!(
            "{deleted} deleted in {:.1} s{}",
            took.as_secs_f64(),
            if left > 0 && deleted > 0 {
                format!(
                    ", {left} still left (all of them would take about {:.0} s)",
                    took.as_secs_f64() * n as f64 / deleted as f64
                )
            } else if left > 0 {
                format!(", {left} still left")
            } else {
                String::new()
            }
        ),
    );
    row(
        rows,
        &format!("growth: ingest FULL during that expiry, {}", body.label),
        format!("{:.0} req/s", during.rps),
        format!(
            "p99 {:.2} ms during, {:.2} ms before it on the same hub ({:.0} req/s): {:.1}x (target <= 2x)",
            during.p99_ms,
            before.p99_ms,
            before.rps,
            during.p99_ms / before.p99_ms
        ),
    );
    row(
        rows,
        "growth: the agent's events_count after that expiry",
        format!("{shown}"),
        format!(
            "{stored} of its events in the table{}",
            if left > 0 {
                " (read while expiry still ran)"
            } else if shown == stored {
                ""
            } else {
                ": WRONG"
            }
        ),
    );
    Ok(())
}

/// How many events of `agent` the table holds (read by the harness beside the hub).
fn events_of(dir: &Path, agent: i64) -> Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = establish(&opts(dir))?;
    let r: Vec<N> = diesel::sql_query("SELECT count(*) AS n FROM events WHERE agent_id = ?")
        .bind::<BigInt, _>(agent)
        .load(&mut conn)?;
    Ok(r.first().map_or(0, |r| r.n))
}
