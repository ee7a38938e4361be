//! End-to-end latency: webhooks sent at a fixed pace (open loop: each request has its
//! slot on a schedule, whatever the answers before it took) to a hub with one live
//! subscription to the sink, timed from the moment each webhook was sent to the
//! moment the sink got its delivery. Measured from the send rather than from the 2xx
//! because the delivery starts at the commit, in parallel with the 2xx, and often
//! arrives before the client has read its answer.
//!
//! The paces: 400 req/s, and 10 % and 50 % of the ingest capacity the same run
//! measured (FULL, 203 B sensor reading, muninn-bench's generator). Every webhook
//! acknowledged must reach the sink: one that does not is a failure, not a number.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use crate::load::{self, Conn, request};
use crate::{Row, api, bodies, reference, row, start_hub, start_reference, webhook_agent};

/// How long each paced run sends.
pub const SECONDS: u64 = 5;
/// The body of every webhook, as the ingest capacity was measured with.
pub const BODY: usize = 203;
/// The subscription's `max_in_flight`, as in the outbound rows.
const IN_FLIGHT: i64 = 64;
/// How long the sink may take, after the last send, to get every delivery.
const DRAIN: Duration = Duration::from_secs(30);
/// Enough connections to go on sending through a stall of this long at the pace (a
/// webhook's senders do not wait for each other), and at least `--connections`.
const STALL_COVERED: f64 = 0.05;
/// The most connections a paced run opens.
const MAX_CONNECTIONS: usize = 1024;
/// A run that sent at less than this share of its pace did not measure that pace.
const PACE_KEPT: f64 = 0.95;
/// How long past its schedule the generator may go on sending before it gives up the
/// slots left (they are counted as not sent).
const OVERRUN: Duration = Duration::from_secs(5);

/// One paced run, as the sink saw it.
#[derive(Debug, Default)]
pub struct Paced {
    /// The pace asked for and the one achieved, in webhooks per second.
    pub rate: f64,
    pub achieved: f64,
    /// Slots on the schedule, webhooks sent, acknowledged (2xx), not acknowledged.
    pub slots: u64,
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    /// Slots the generator had not started when it gave up ([`OVERRUN`] past the end).
    pub unsent: u64,
    /// Acknowledged webhooks whose delivery reached the sink.
    pub arrived: u64,
    /// Sent -> sink receipt of the ones that arrived, in microseconds.
    pub latencies_us: Vec<u32>,
    /// The same from each one's slot on the schedule: what a sender sees whose
    /// webhook had to wait for a free connection (the send's own lateness added).
    pub from_slot_us: Vec<u32>,
    /// Send -> the hub's 2xx, in microseconds: the ingest's part of the latency.
    pub answered_us: Vec<u32>,
    /// The webhooks slower than [`load::SLOW_US`] to the sink and to the 2xx: (ms
    /// from the run's start to the send, µs), to line up with the hub's log.
    pub slow_receipts: Vec<(u32, u32)>,
    pub slow_answers: Vec<(u32, u32)>,
    /// Connections the run used.
    pub connections: usize,
    /// How late the generator sent behind its schedule, at most (timer granularity, or
    /// connections all busy), in milliseconds.
    pub max_late_ms: f64,
    /// From the last send to the sink's last receipt.
    pub drained_in: Duration,
}

impl Paced {
    pub fn lost(&self) -> u64 {
        self.acked - self.arrived
    }
}

/// What the paced sender shares between its connections.
#[derive(Default)]
struct Sender {
    /// The schedule's start, wall-clock microseconds.
    started_us: u64,
    next: Cell<u64>,
    /// By webhook number: (its slot, when it was sent), wall-clock microseconds.
    sent_at: RefCell<HashMap<u64, (u64, u64)>>,
    acked: RefCell<HashSet<u64>>,
    /// Send -> 2xx of the acknowledged, in microseconds.
    answered_us: RefCell<Vec<u32>>,
    /// The 2xx slower than [`load::SLOW_US`]: (ms from the start to the send, µs).
    slow_answers: RefCell<Vec<(u32, u32)>>,
    failed: Cell<u64>,
    late_us: Cell<u64>,
}

/// Sends `rate` webhooks a second for [`SECONDS`] over `connections` keep-alive
/// connections, each on its slot of the schedule.
async fn send_paced(addr: SocketAddr, path: &str, rate: f64, connections: usize) -> Rc<Sender> {
    let slots = (rate * SECONDS as f64).round() as u64;
    let s = Rc::new(Sender {
        started_us: reference::now_us(),
        ..Sender::default()
    });
    let started = Instant::now();
    let started_us = s.started_us;
    let give_up = started + Duration::from_secs(SECONDS) + OVERRUN;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (s, path) = (s.clone(), path.to_string());
        tasks.push(actix_rt::spawn(async move {
            let mut conn: Option<Conn> = None;
            while Instant::now() < give_up {
                let n = s.next.get();
                if n >= slots {
                    break;
                }
                s.next.set(n + 1);
                let due = started + Duration::from_secs_f64(n as f64 / rate);
                actix_rt::time::sleep_until(due.into()).await;
                let req = request("POST", &path, None, Some(&bodies::numbered(BODY, n)));
                if conn.is_none() {
                    conn = Conn::open(addr).await.ok();
                }
                let Some(c) = conn.as_mut() else {
                    s.failed.set(s.failed.get() + 1);
                    continue;
                };
                let late = Instant::now().saturating_duration_since(due).as_micros() as u64;
                s.late_us.set(s.late_us.get().max(late));
                let slot_us = started_us + (n as f64 * 1e6 / rate) as u64;
                s.sent_at
                    .borrow_mut()
                    .insert(n, (slot_us, reference::now_us()));
                let t = Instant::now();
                match c.roundtrip(&req).await {
                    Ok((status, _, close)) => {
                        if (200..300).contains(&status) {
                            s.acked.borrow_mut().insert(n);
                            let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                            s.answered_us.borrow_mut().push(us);
                            if u64::from(us) >= load::SLOW_US {
                                let at = t.duration_since(started).as_millis() as u32;
                                s.slow_answers.borrow_mut().push((at, us));
                            }
                        } else {
                            s.failed.set(s.failed.get() + 1);
                        }
                        if close {
                            conn = None;
                        }
                    }
                    Err(_) => {
                        s.failed.set(s.failed.get() + 1);
                        conn = None;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    s
}

async fn sink_get(sink: SocketAddr, path: &str) -> Result<Vec<u8>> {
    let mut c = Conn::open(sink).await?;
    let (_, body, _) = c.roundtrip(&request("GET", path, None, None)).await?;
    Ok(body)
}

/// The sink's receipts (webhook number, when it arrived), once it has counted `acked`
/// deliveries or [`DRAIN`] has passed. Duplicates would count too: the receipts are
/// matched by number afterwards.
async fn receipts_of(sink: SocketAddr, acked: u64) -> Result<Vec<(u64, u64)>> {
    let last_send = Instant::now();
    while last_send.elapsed() < DRAIN {
        let count: u64 = String::from_utf8_lossy(&sink_get(sink, "/count").await?)
            .trim()
            .parse()
            .context("the sink's count")?;
        if count >= acked {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(serde_json::from_slice(&sink_get(sink, "/receipts").await?)?)
}

/// One paced run at `rate` against a fresh hub (FULL) with one subscription.
pub async fn paced(bin: &Path, rate: f64, at_least: usize) -> Result<Paced> {
    if !(rate.is_finite() && rate >= 1.0) {
        bail!("cannot pace webhooks at {rate} req/s");
    }
    let connections = ((rate * STALL_COVERED).ceil() as usize)
        .min(MAX_CONNECTIONS)
        .max(at_least.max(1));
    let slots = (rate * SECONDS as f64).round() as u64;
    let dir = tempfile::tempdir()?;
    let sink = start_reference("sink", "full", dir.path())?;
    let hub = start_hub(bin, dir.path(), "full")?;
    let path = webhook_agent(hub.addr).await?;
    api(
        hub.addr,
        "POST",
        "/api/webhooks/outgoing",
        Some(json!({"url": format!("http://{}/hook", sink.addr),
            "event_types": ["event.created"], "max_in_flight": IN_FLIGHT})),
    )
    .await?;
    let started = Instant::now();
    let s = send_paced(hub.addr, &path, rate, connections).await;
    let sending = started.elapsed();
    let acked = s.acked.borrow().len() as u64;
    let receipts = receipts_of(sink.addr, acked).await?;
    let (sent_at, acked_set) = (s.sent_at.borrow(), s.acked.borrow());
    let mut first: HashMap<u64, u64> = HashMap::new();
    for &(n, at) in &receipts {
        if acked_set.contains(&n) {
            let e = first.entry(n).or_insert(at);
            *e = (*e).min(at);
        }
    }
    let us = |from: u64, at: u64| at.saturating_sub(from).min(u64::from(u32::MAX)) as u32;
    let (mut latencies_us, mut from_slot_us) = (Vec::new(), Vec::new());
    let mut slow_receipts = Vec::new();
    for (n, &at) in &first {
        if let Some(&(slot, sent)) = sent_at.get(n) {
            latencies_us.push(us(sent, at));
            from_slot_us.push(us(slot, at));
            if u64::from(us(sent, at)) >= load::SLOW_US {
                slow_receipts.push((us(s.started_us, sent) / 1000, us(sent, at)));
            }
        }
    }
    let last_receipt = first.values().max().copied().unwrap_or(0);
    let last_sent = sent_at.values().map(|v| v.1).max().unwrap_or(0);
    Ok(Paced {
        rate,
        achieved: sent_at.len() as f64 / sending.as_secs_f64().max(1e-9),
        slots,
        sent: sent_at.len() as u64,
        acked,
        failed: s.failed.get(),
        unsent: slots.saturating_sub(s.next.get()),
        arrived: first.len() as u64,
        latencies_us,
        from_slot_us,
        answered_us: s.answered_us.borrow().clone(),
        slow_receipts,
        slow_answers: s.slow_answers.borrow().clone(),
        connections,
        max_late_ms: s.late_us.get() as f64 / 1000.0,
        drained_in: Duration::from_micros(last_receipt.saturating_sub(last_sent)),
    })
}

/// The row of one paced run: its latencies, or FAILED when an acknowledged webhook
/// did not reach the sink, one was not acknowledged, or a slot was not sent.
pub fn row_of(rows: &mut Vec<Row>, what: &str, p: &Paced) {
    use crate::load::quantile_ms;
    let lat = &p.latencies_us;
    let tail = format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        quantile_ms(lat, 0.5),
        quantile_ms(lat, 0.99),
        quantile_ms(lat, 1.0)
    );
    let how = format!(
        "p99 from each webhook's slot on the schedule {:.2} ms; the hub's 2xx p50 {:.2} ms, p99 {:.2} ms; paced at {:.0} req/s for {SECONDS} s over {} connections (sent at {:.0} req/s, at most {:.1} ms behind the schedule); 1 subscription (max_in_flight {IN_FLIGHT}); the last delivery {:.0} ms after the last send",
        quantile_ms(&p.from_slot_us, 0.99),
        quantile_ms(&p.answered_us, 0.5),
        quantile_ms(&p.answered_us, 0.99),
        p.rate,
        p.connections,
        p.achieved,
        p.max_late_ms,
        p.drained_in.as_secs_f64() * 1000.0
    );
    if p.achieved < PACE_KEPT * p.rate {
        row(
            rows,
            what,
            format!(
                "FAILED: sent at {:.0} req/s, under the pace of {:.0}",
                p.achieved, p.rate
            ),
            format!(
                "{} of {} acknowledged arrived; of those {tail}; {how}",
                p.arrived, p.acked
            ),
        );
    } else if p.lost() > 0 || p.failed > 0 || p.unsent > 0 {
        row(
            rows,
            what,
            format!(
                "FAILED: {} acknowledged webhooks not delivered within {} s of the last send, {} not acknowledged, {} not sent",
                p.lost(),
                DRAIN.as_secs(),
                p.failed,
                p.unsent
            ),
            format!(
                "{} of {} acknowledged arrived ({} on the schedule, {} sent); of those that arrived {tail}; {how}",
                p.arrived, p.acked, p.slots, p.sent
            ),
        );
    } else {
        row(
            rows,
            what,
            tail,
            format!("{} of {} webhooks arrived; {how}", p.arrived, p.slots),
        );
    }
}

/// `second:count(worst ms)` for each second of the run that had slow webhooks, as
/// the ingest runs' progress lines show them.
fn by_second(slow: &[(u32, u32)]) -> String {
    let stats = load::Stats {
        slow: slow.to_vec(),
        ..load::Stats::default()
    };
    let seconds: Vec<String> = stats
        .slow_by_second()
        .iter()
        .map(|(sec, n, worst)| format!("{sec}:{n}({worst:.0})"))
        .collect();
    if seconds.is_empty() {
        "none".into()
    } else {
        seconds.join(" ")
    }
}

/// The end-to-end rows: at 400 req/s, and at 10 % and 50 % of `capacity` (FULL ingest
/// of the 203 B body with muninn-bench's generator, req/s), saying where it came from.
pub async fn rows(
    bin: &Path,
    capacity: f64,
    source: &str,
    connections: usize,
    rows: &mut Vec<Row>,
) {
    let paces = [
        (400.0, "400 req/s".to_string()),
        (
            capacity * 0.10,
            format!("10 % of the ingest capacity, {capacity:.0} req/s {source}"),
        ),
        (
            capacity * 0.50,
            format!("50 % of the ingest capacity, {capacity:.0} req/s {source}"),
        ),
    ];
    for (rate, label) in paces {
        let what = format!("end-to-end, webhook sent -> sink receipt, {label}");
        match paced(bin, rate, connections).await {
            Ok(p) => {
                println!(
                    "  {label}: > 5 ms by second of the send: to the sink {}; to the 2xx {}",
                    by_second(&p.slow_receipts),
                    by_second(&p.slow_answers)
                );
                row_of(rows, &what, &p)
            }
            Err(e) => row(rows, &what, "FAILED".into(), format!("{e:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(acked: u64, arrived: u64, failed: u64, unsent: u64) -> Paced {
        Paced {
            rate: 100.0,
            achieved: 100.0,
            slots: acked + failed + unsent,
            sent: acked + failed,
            acked,
            failed,
            unsent,
            arrived,
            latencies_us: vec![1_000; arrived as usize],
            from_slot_us: vec![2_000; arrived as usize],
            ..Paced::default()
        }
    }

    #[test]
    fn a_webhook_that_did_not_arrive_makes_the_row_a_failure() {
        let mut rows = Vec::new();
        row_of(&mut rows, "all", &run(500, 500, 0, 0));
        row_of(&mut rows, "one lost", &run(500, 499, 0, 0));
        row_of(&mut rows, "one refused", &run(499, 499, 1, 0));
        row_of(&mut rows, "one not sent", &run(499, 499, 0, 1));
        let slow = Paced {
            achieved: 90.0,
            ..run(500, 500, 0, 0)
        };
        row_of(&mut rows, "under the pace", &slow);
        assert!(
            rows[0].value.starts_with("p50 1.00 ms"),
            "{}",
            rows[0].value
        );
        assert!(rows[0].note.starts_with("500 of 500 webhooks arrived"));
        assert!(
            rows[1]
                .value
                .starts_with("FAILED: 1 acknowledged webhooks not delivered")
        );
        assert!(rows[1].note.starts_with("499 of 500 acknowledged arrived"));
        assert!(
            rows[2].value.contains("1 not acknowledged"),
            "{}",
            rows[2].value
        );
        assert!(rows[3].value.ends_with("1 not sent"), "{}", rows[3].value);
        assert!(rows[0].note.contains("slot on the schedule 2.00 ms"));
        assert_eq!(
            rows[4].value,
            "FAILED: sent at 90 req/s, under the pace of 100"
        );
    }
}
