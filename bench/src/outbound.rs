//! Outbound: the hub's deliveries/s to the sink, fanned out to 1, 10 and 100
//! subscriptions, beside a delivery ceiling measured in the same run: the hub's own
//! HTTP client (`muninn::delivery::client::post`, the function its deliveries call)
//! posting the very bytes the sink got from the hub (its first delivery, headers and
//! body) to a fresh sink, as many times and as many at once as the hub may have in
//! flight, with no database, no queue and no retries behind it.

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use crate::load::{self, Conn, request};
use crate::reference::Delivery;
use crate::{Row, api, bodies, no_op, post_maker, row, start_hub, start_reference, webhook_agent};

/// Each subscription's `max_in_flight` in the hub runs.
const IN_FLIGHT: usize = 64;
/// The most sends the ceiling keeps in flight: the hub's client pools at most 256
/// connections per host.
const CEILING_IN_FLIGHT: usize = 256;

async fn sink_get(sink: SocketAddr, path: &str) -> Result<Vec<u8>> {
    let mut c = Conn::open(sink).await?;
    let (_, body, _) = c.roundtrip(&request("GET", path, None, None)).await?;
    Ok(body)
}

async fn sink_count(sink: SocketAddr) -> Result<u64> {
    Ok(String::from_utf8_lossy(&sink_get(sink, "/count").await?)
        .trim()
        .parse()?)
}

/// Creates `subs` paused subscriptions to the sink, ingests `events`, resumes them and
/// times the deliveries. Returns deliveries/s, how many arrived, and the first one.
async fn hub_rate(
    bin: &Path,
    subs: usize,
    events: u64,
    duration: u64,
) -> Result<(f64, u64, Delivery)> {
    let dir = tempfile::tempdir()?;
    let sink = start_reference("sink", "full", dir.path())?;
    let hub = start_hub(bin, dir.path(), "full")?;
    let path = webhook_agent(hub.addr).await?;
    let mut ids = Vec::new();
    for _ in 0..subs {
        let s = api(
            hub.addr,
            "POST",
            "/api/webhooks/outgoing",
            Some(json!({"url": format!("http://{}/hook", sink.addr),
                "event_types": ["event.created"], "max_in_flight": IN_FLIGHT})),
        )
        .await?;
        let id = s["id"].as_i64().context("subscription id")?;
        api(
            hub.addr,
            "POST",
            &format!("/api/webhooks/outgoing/{id}/pause"),
            None,
        )
        .await?;
        ids.push(id);
    }
    let s = load::run(
        hub.addr,
        8,
        Duration::from_secs(120),
        Some(events),
        post_maker(path, &bodies::body(203).bytes),
        no_op(),
        Duration::ZERO,
    )
    .await;
    if s.ok != events {
        bail!("only {} of {events} events were accepted", s.ok);
    }
    let want = events * subs as u64;
    let started = Instant::now();
    for id in &ids {
        api(
            hub.addr,
            "POST",
            &format!("/api/webhooks/outgoing/{id}/resume"),
            None,
        )
        .await?;
    }
    let cap = Duration::from_secs((duration * 6).max(60));
    let mut got = 0;
    while started.elapsed() < cap {
        got = sink_count(sink.addr).await?;
        if got >= want {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = got as f64 / started.elapsed().as_secs_f64();
    if got < want {
        bail!(
            "only {got} of {want} deliveries reached the sink within {} s ({rate:.0}/s)",
            cap.as_secs()
        );
    }
    let first: Option<Delivery> = serde_json::from_slice(&sink_get(sink.addr, "/first").await?)?;
    Ok((rate, got, first.context("the sink got no delivery")?))
}

/// The ceiling: `total` sends of `delivery` to a fresh sink, `in_flight` at once, with
/// the hub's client. Returns sends/s.
async fn ceiling(delivery: &Delivery, total: u64, in_flight: usize) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let sink = start_reference("sink", "full", dir.path())?;
    let url = format!("http://{}/hook", sink.addr);
    let headers: Vec<(String, String)> = delivery
        .0
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "host" | "content-length" | "user-agent"))
        .cloned()
        .collect();
    let (headers, body, url) = (Rc::new(headers), Rc::new(delivery.1.clone()), Rc::new(url));
    let next = Rc::new(Cell::new(0u64));
    let failed = Rc::new(Cell::new(0u64));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (headers, body, url, next, failed) = (
            headers.clone(),
            body.clone(),
            url.clone(),
            next.clone(),
            failed.clone(),
        );
        tasks.push(actix_rt::spawn(async move {
            while next.get() < total {
                next.set(next.get() + 1);
                let sent = muninn::delivery::client::post(
                    &url,
                    &headers,
                    body.to_vec(),
                    Duration::from_secs(10),
                    true,
                )
                .await;
                if sent.status != Some(200) {
                    failed.set(failed.get() + 1);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let took = started.elapsed();
    if failed.get() > 0 {
        bail!("{} of the ceiling's {total} sends failed", failed.get());
    }
    Ok(total as f64 / took.as_secs_f64())
}

/// The row of `subs` subscriptions and `events` events, with its ceiling.
pub async fn rows(
    bin: &Path,
    subs: usize,
    events: u64,
    duration: u64,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let (rate, n, first) = hub_rate(bin, subs, events, duration).await?;
    let in_flight = (IN_FLIGHT * subs).min(CEILING_IN_FLIGHT);
    let top = ceiling(&first, n.max(1), in_flight).await?;
    row(
        rows,
        &format!("outbound: {events} queued events x {subs} subscription(s)"),
        format!("{rate:.0} deliveries/s"),
        format!(
            "{n} delivered; ceiling (the hub's HTTP client, the same {} B body and headers, the same sink, no database, {in_flight} in flight) {top:.0}/s; ratio {:.0} %",
            first.1.len(),
            100.0 * rate / top
        ),
    );
    Ok(())
}
