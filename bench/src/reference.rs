//! The reference servers the hub is measured against, and the sink deliveries go to.
//! Each runs in its own process (`muninn-bench reference ...`), like the hub, so CPU
//! and memory are measured the same way.
//!
//! - framework: a bare actix-web handler that parses the JSON body and answers 201,
//!   the ceiling of the HTTP framework on this machine;
//! - durable: the same handler appending each body to SQLite through one group-commit
//!   writer thread, with the hub's own pragmas and checkpoints, the ceiling of durable
//!   ingest (`durable-inline`: with SQLite's checkpoints on the writer thread);
//! - sink: answers 200 to everything, counts, notes when each `data.e2e` arrived, and
//!   keeps the first delivery (`GET /first`) for the outbound ceiling to replay.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Result;
use diesel::prelude::*;
use tokio::sync::{mpsc, oneshot};

use muninn::store::{StoreOptions, Synchronous, WriterStats, checkpoint, establish_sqlite};

diesel::table! {
    bench_bodies (id) {
        id -> BigInt,
        body -> Text,
    }
}

type Job = (String, oneshot::Sender<bool>);

fn parse_ok(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok()
}

async fn framework(body: web::Bytes) -> HttpResponse {
    if parse_ok(&body) {
        HttpResponse::Created().body("Event Created")
    } else {
        HttpResponse::BadRequest().finish()
    }
}

async fn durable(tx: web::Data<mpsc::UnboundedSender<Job>>, body: web::Bytes) -> HttpResponse {
    if !parse_ok(&body) {
        return HttpResponse::BadRequest().finish();
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let (reply, done) = oneshot::channel();
    if tx.send((text, reply)).is_err() {
        return HttpResponse::ServiceUnavailable().finish();
    }
    match done.await {
        Ok(true) => HttpResponse::Created().body("Event Created"),
        _ => HttpResponse::ServiceUnavailable().finish(),
    }
}

/// The group commit, as the hub's writer does it: block for one, take what is queued
/// (up to 1024), one transaction, answer everyone. Checkpoints as the hub's: off this
/// thread (`muninn::store::checkpoint`), following `stats.batches`.
fn writer(
    mut conn: SqliteConnection,
    mut rx: mpsc::UnboundedReceiver<Job>,
    stats: Arc<WriterStats>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < 1024 {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let ok = conn
            .transaction::<_, diesel::result::Error, _>(|c| {
                for (body, _) in &jobs {
                    diesel::insert_into(bench_bodies::table)
                        .values(bench_bodies::body.eq(body))
                        .execute(c)?;
                }
                Ok(())
            })
            .is_ok();
        stats.batches.fetch_add(1, Ordering::Relaxed);
        for (_, reply) in jobs {
            let _ = reply.send(ok);
        }
    }
    stats.stopped.store(true, Ordering::Relaxed);
}

/// One delivery as the sink got it: its headers and body.
pub type Delivery = (Vec<(String, String)>, Vec<u8>);

#[derive(Default)]
struct SinkState {
    count: AtomicU64,
    receipts: Mutex<Vec<(u64, u64)>>,
    /// The first delivery, so the outbound ceiling can send the very same bytes.
    first: Mutex<Option<Delivery>>,
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros() as u64
}

async fn sink_post(
    state: web::Data<SinkState>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let at = now_us();
    if state.count.fetch_add(1, Ordering::Relaxed) == 0
        && let Ok(mut first) = state.first.lock()
    {
        let headers = req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        *first = Some((headers, body.to_vec()));
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(n) = v["data"]["e2e"].as_u64()
        && let Ok(mut r) = state.receipts.lock()
    {
        r.push((n, at));
    }
    HttpResponse::Ok().finish()
}

async fn sink_count(state: web::Data<SinkState>) -> HttpResponse {
    HttpResponse::Ok().body(state.count.load(Ordering::Relaxed).to_string())
}

async fn sink_first(state: web::Data<SinkState>) -> HttpResponse {
    let first = state.first.lock().map(|f| f.clone()).unwrap_or_default();
    HttpResponse::Ok().json(first)
}

async fn sink_receipts(state: web::Data<SinkState>) -> HttpResponse {
    let r = state.receipts.lock().map(|r| r.clone()).unwrap_or_default();
    HttpResponse::Ok().json(r)
}

/// Serves reference `kind` on 127.0.0.1 (random port) and prints `listening <addr>`.
pub fn serve(
    kind: &str,
    synchronous: &str,
    data_dir: &std::path::Path,
    workers: usize,
) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("listening {}", listener.local_addr()?);
    let kind = kind.to_string();
    let sync = match synchronous {
        "normal" => Synchronous::Normal,
        _ => Synchronous::Full,
    };
    // `durable-inline`: the durable ceiling with SQLite's automatic checkpoints on its
    // writer thread (every 10 000 pages), as muninn had them before
    // `muninn::store::checkpoint`; for an A/B of that change in one run.
    let inline = kind == "durable-inline";
    let kind = if inline { "durable".to_string() } else { kind };
    let tx = if kind == "durable" {
        let opts = StoreOptions {
            path: data_dir.join("durable.db"),
            pg_url: None,
            synchronous: sync,
            busy_timeout: Duration::from_secs(5),
            reader_threads: 1,
            writer_batch_max: 1024,
            writer_queue_max: 20_000,
        };
        let mut conn = establish_sqlite(&opts)?;
        diesel::sql_query(
            "CREATE TABLE IF NOT EXISTS bench_bodies (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
        )
        .execute(&mut conn)?;
        let stats = Arc::new(WriterStats::default());
        if !inline {
            checkpoint::disable_auto(&mut conn)?;
            checkpoint::spawn(&opts, Arc::downgrade(&stats))?;
        }
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        std::thread::spawn(move || writer(conn, rx, stats));
        Some(tx)
    } else {
        None
    };
    let sink = web::Data::new(SinkState::default());
    actix_rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let app = App::new();
            match (kind.as_str(), &tx) {
                ("durable", Some(tx)) => app
                    .app_data(web::Data::new(tx.clone()))
                    .default_service(web::post().to(durable)),
                ("sink", _) => app
                    .app_data(sink.clone())
                    .route("/count", web::get().to(sink_count))
                    .route("/receipts", web::get().to(sink_receipts))
                    .route("/first", web::get().to(sink_first))
                    .default_service(web::post().to(sink_post)),
                _ => app.default_service(web::post().to(framework)),
            }
        })
        .workers(workers)
        .listen(listener)?
        .run()
        .await
    })?;
    Ok(())
}
