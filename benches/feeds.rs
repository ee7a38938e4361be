//! Feed benchmark: cached feed GETs per second under concurrency, next to the ingest
//! rate of the same hub (webhook POSTs, one event each, committed before the 2xx).
//!
//! Runs the real server in-process on 127.0.0.1:0 with a temporary database (the
//! integration tests' `TestHub`), so the figures include HTTP and the actor hops.
//!
//!     cargo bench --bench feeds                      # release build
//!     BENCH_CONCURRENCY=64 BENCH_SECONDS=5 cargo bench --bench feeds
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, TestHub};
use serde_json::json;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `concurrency` clients, each sending requests built by `path_of` for `seconds`;
/// returns (requests answered with `want` status, elapsed).
async fn hammer(
    hub: Rc<TestHub>,
    concurrency: usize,
    seconds: u64,
    want: u16,
    headers: Vec<(&'static str, String)>,
    path: String,
) -> (usize, Duration) {
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (hub, headers, path) = (hub.clone(), headers.clone(), path.clone());
        tasks.push(actix_rt::spawn(async move {
            let hdrs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let mut ok = 0;
            while Instant::now() < until {
                let r = hub.request("GET", &path, None, &hdrs, None).await;
                assert_eq!(r.status, want, "{}", r.text());
                ok += 1;
            }
            ok
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    (total, start.elapsed())
}

async fn run() {
    let concurrency = env_or("BENCH_CONCURRENCY", 32);
    let seconds = env_or("BENCH_SECONDS", 3) as u64;
    let events = env_or("BENCH_EVENTS", 2000);
    let hub = Rc::new(TestHub::start().await);
    let hook = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "webhook", "name": "In", "options": {"secret": "in"}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let feed = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "data_output", "name": "Out", "source_ids": [hook], "options": {
                "secrets": ["s"],
                "template": {"item": {"title": "{{ title }}", "description": "{{ body }}", "link": "{{ url }}"}}
            }}),
        )
        .await["id"]
        .as_i64()
        .unwrap();

    // Ingest: `events` POSTs spread over `concurrency` clients.
    let start = Instant::now();
    let per_client = events.div_ceil(concurrency);
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let hub = hub.clone();
        tasks.push(actix_rt::spawn(async move {
            for i in 0..per_client {
                let body = json!({"title": format!("event {c}-{i}"), "body": "x".repeat(200), "url": "https://example.org/"});
                let r = hub
                    .request(
                        "POST",
                        &format!("/users/1/web_requests/{hook}/in"),
                        None,
                        &[("content-type", "application/json")],
                        Some(body.to_string().into_bytes()),
                    )
                    .await;
                assert_eq!(r.status, 201, "{}", r.text());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ingest = start.elapsed();
    let posted = per_client * concurrency;

    let path = format!("/users/1/web_requests/{feed}/s.xml");
    // The first GET renders; every later one is served from the cache.
    let first = hub.request("GET", &path, None, &[], None).await;
    let etag = first.header("etag").unwrap().to_string();
    let (gets, took) = hammer(hub.clone(), concurrency, seconds, 200, vec![], path.clone()).await;
    let (nm, nm_took) = hammer(
        hub.clone(),
        concurrency,
        seconds,
        304,
        vec![("if-none-match", etag)],
        path,
    )
    .await;
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "muninn feed benchmark ({concurrency} concurrent clients, 2 server workers, synchronous=FULL)"
    );
    println!(
        "  ingest              {:>9.0} events/s  ({posted} webhook POSTs, one event each)",
        rate(posted, ingest)
    );
    println!(
        "  cached feed GET 200 {:>9.0} req/s     ({gets} GETs in {:.1} s, 40 items, {} bytes)",
        rate(gets, took),
        took.as_secs_f64(),
        first.body.len()
    );
    println!(
        "  cached feed GET 304 {:>9.0} req/s     ({nm} conditional GETs in {:.1} s)",
        rate(nm, nm_took),
        nm_took.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test --benches` it only has to build.
    if !std::env::args().any(|a| a == "--bench") && std::env::var("BENCH_SECONDS").is_err() {
        eprintln!("(not under `cargo bench`: skipping the feed benchmark)");
        return;
    }
    actix_rt::System::new().block_on(run());
}
