//! Metrics: process-wide counters and fixed-bucket histograms, rendered in the
//! Prometheus text format by `GET /metrics`.
//!
//! The counters live in one static, not in `Addrs`, because they are written from the
//! hottest paths (the writer thread, every ingest request, every delivery) where a
//! message or a lock would cost more than the count itself: each update is one or two
//! relaxed atomic adds. Labelled counters have a fixed set of label values known at
//! compile time (plus status codes folded into a small table), so rendering never
//! allocates per request and the series cannot grow without bound.
//!
//! Adding a source is one line where it happens:
//! `metrics::ingest(IngestKind::Incoming, status)`,
//! `metrics::feed_request(status, cache_hit)`.
//! Gauges (queue depths, open circuits) are read at render time from the live state.

use std::fmt::Write as _;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Which inbound face answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestKind {
    /// Huginn's `/users/{user}/web_requests/{agent}/{secret}`.
    Huginn,
    /// `/webhook/{token}` (incoming webhooks).
    Incoming,
}

impl IngestKind {
    const ALL: [IngestKind; 2] = [IngestKind::Huginn, IngestKind::Incoming];

    fn label(self) -> &'static str {
        match self {
            IngestKind::Huginn => "huginn",
            IngestKind::Incoming => "incoming",
        }
    }
}

/// What one delivery attempt ended as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Failed; another attempt is scheduled.
    Retrying,
    /// Failed for good (dead letter).
    Dead,
    /// The outcome could not be committed; the delivery stays due and is sent again.
    Unrecorded,
}

impl DeliveryOutcome {
    const ALL: [DeliveryOutcome; 4] = [
        DeliveryOutcome::Delivered,
        DeliveryOutcome::Retrying,
        DeliveryOutcome::Dead,
        DeliveryOutcome::Unrecorded,
    ];

    fn label(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retrying => "retrying",
            DeliveryOutcome::Dead => "dead",
            DeliveryOutcome::Unrecorded => "unrecorded",
        }
    }
}

/// Status codes counted one by one; anything else falls into its class ("4xx").
const STATUSES: [u16; 16] = [
    200, 201, 202, 204, 301, 302, 304, 400, 401, 403, 404, 405, 413, 415, 429, 503,
];
/// Slots per kind: the listed codes, then the classes 1xx..5xx, then "other".
const STATUS_SLOTS: usize = STATUSES.len() + 6;

fn status_slot(status: u16) -> usize {
    match STATUSES.iter().position(|s| *s == status) {
        Some(i) => i,
        None => match status {
            100..=599 => STATUSES.len() + usize::from(status / 100) - 1,
            _ => STATUS_SLOTS - 1,
        },
    }
}

fn status_label(slot: usize) -> String {
    match STATUSES.get(slot) {
        Some(s) => s.to_string(),
        None if slot < STATUS_SLOTS - 1 => format!("{}xx", slot - STATUSES.len() + 1),
        None => "other".into(),
    }
}

/// A histogram with fixed upper bounds. Values are recorded in integer units
/// (microseconds, items) so the sum stays an atomic integer.
pub struct Histogram {
    bounds: &'static [u64],
    buckets: Vec<AtomicU64>,
    sum: AtomicU64,
    count: AtomicU64,
    /// Divides the stored units for display (1e6 for microseconds -> seconds).
    scale: f64,
}

impl Histogram {
    fn new(bounds: &'static [u64], scale: f64) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
            scale,
        }
    }

    pub fn observe(&self, value: u64) {
        // Non-cumulative buckets: one add here, the running sum is taken when rendering.
        if let Some(i) = self.bounds.iter().position(|b| value <= *b)
            && let Some(b) = self.buckets.get(i)
        {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut running = 0u64;
        for (bound, b) in self.bounds.iter().zip(&self.buckets) {
            running += b.load(Ordering::Relaxed);
            let le = *bound as f64 / self.scale;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {running}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum.load(Ordering::Relaxed) as f64 / self.scale;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

const BATCH_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];
const MICROS_BOUNDS: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];

/// Every counter of the process.
pub struct Metrics {
    ingest: Vec<AtomicU64>,
    events_committed: AtomicU64,
    writer_retries: AtomicU64,
    writer_failures: AtomicU64,
    batch_size: Histogram,
    commit_seconds: Histogram,
    deliveries: Vec<AtomicU64>,
    feed_requests: Vec<AtomicU64>,
    feed_cache_hits: AtomicU64,
    emissions_refused: Vec<AtomicU64>,
}

/// Why agents' emitted events were not kept (the fan-out bounds), as metric labels.
pub const REFUSAL_REASONS: [&str; 3] = ["root_budget", "agent_rate", "user_rate"];

impl Metrics {
    fn new() -> Metrics {
        let zeros = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Metrics {
            ingest: zeros(IngestKind::ALL.len() * STATUS_SLOTS),
            events_committed: AtomicU64::new(0),
            writer_retries: AtomicU64::new(0),
            writer_failures: AtomicU64::new(0),
            batch_size: Histogram::new(BATCH_BOUNDS, 1.0),
            commit_seconds: Histogram::new(MICROS_BOUNDS, 1e6),
            deliveries: zeros(DeliveryOutcome::ALL.len()),
            feed_requests: zeros(STATUS_SLOTS),
            feed_cache_hits: AtomicU64::new(0),
            emissions_refused: zeros(REFUSAL_REASONS.len()),
        }
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

fn add(slots: &[AtomicU64], i: usize, n: u64) {
    if let Some(c) = slots.get(i) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// One inbound request answered with `status`.
pub fn ingest(kind: IngestKind, status: u16) {
    let k = IngestKind::ALL.iter().position(|x| *x == kind).unwrap_or(0);
    add(&METRICS.ingest, k * STATUS_SLOTS + status_slot(status), 1);
}

/// One committed batch of the writer: its size, how long it took, events it inserted.
pub fn writer_batch(size: usize, took: Duration, events: usize) {
    METRICS.batch_size.observe(size as u64);
    METRICS.commit_seconds.observe(took.as_micros() as u64);
    METRICS
        .events_committed
        .fetch_add(events as u64, Ordering::Relaxed);
}

/// A writer batch ran without savepoints, met a failing write, and was run again with
/// a savepoint per write.
pub fn writer_retry() {
    METRICS.writer_retries.fetch_add(1, Ordering::Relaxed);
}

/// A writer batch did not commit (every write in it was answered with an error).
pub fn writer_failure() {
    METRICS.writer_failures.fetch_add(1, Ordering::Relaxed);
}

/// One delivery attempt finished as `outcome`.
pub fn delivery(outcome: DeliveryOutcome) {
    let i = DeliveryOutcome::ALL
        .iter()
        .position(|x| *x == outcome)
        .unwrap_or(0);
    add(&METRICS.deliveries, i, 1);
}

/// An event an agent emitted was dropped by a fan-out bound (`reason` is one of
/// [`REFUSAL_REASONS`]).
pub fn emission_refused(reason: &str) {
    let i = REFUSAL_REASONS
        .iter()
        .position(|r| *r == reason)
        .unwrap_or(0);
    add(&METRICS.emissions_refused, i, 1);
}

/// A feed was served from its cached render (no read, no render).
pub fn feed_cache_hit() {
    METRICS.feed_cache_hits.fetch_add(1, Ordering::Relaxed);
}

/// One feed GET answered with `status`; `cache_hit` when the body came from the cache
/// (or a 304 was answered from the cached ETag).
pub fn feed_request(status: u16, cache_hit: bool) {
    add(&METRICS.feed_requests, status_slot(status), 1);
    if cache_hit {
        METRICS.feed_cache_hits.fetch_add(1, Ordering::Relaxed);
    }
}

/// Values read from the live hub when rendering.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub writer_queue: usize,
    pub agent_backlog: usize,
    pub deliveries_queued: usize,
    pub deliveries_in_flight: usize,
    pub circuits_open: usize,
    pub agents: usize,
    pub subscriptions: usize,
    pub uptime_seconds: f64,
}

fn counter_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
}

/// A counter without labels: its header and its one sample.
fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    counter_header(out, name, help);
    let _ = writeln!(out, "{name} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// The Prometheus text exposition (format 0.0.4) of every metric.
// One idea: the Prometheus exposition text, one metric family after another in the order
// /metrics prints them.
pub fn render(g: &Gauges) -> String {
    let m = &*METRICS;
    let mut out = String::with_capacity(8 * 1024);
    counter_header(
        &mut out,
        "muninn_ingest_requests_total",
        "Inbound requests answered, by endpoint kind and status.",
    );
    for (k, kind) in IngestKind::ALL.iter().enumerate() {
        for slot in 0..STATUS_SLOTS {
            let v = m
                .ingest
                .get(k * STATUS_SLOTS + slot)
                .map_or(0, |c| c.load(Ordering::Relaxed));
            // Always show the success series so rates start at 0, others once seen.
            if v > 0 || STATUSES.get(slot) == Some(&201) {
                let _ = writeln!(
                    out,
                    "muninn_ingest_requests_total{{kind=\"{}\",status=\"{}\"}} {v}",
                    kind.label(),
                    status_label(slot)
                );
            }
        }
    }
    counter(
        &mut out,
        "muninn_events_committed_total",
        "Events committed to the database (ingested, emitted by agents, system events).",
        m.events_committed.load(Ordering::Relaxed),
    );
    m.batch_size.render(
        &mut out,
        "muninn_writer_batch_size",
        "Writes committed together in one transaction by the group-commit writer.",
    );
    m.commit_seconds.render(
        &mut out,
        "muninn_writer_commit_seconds",
        "Time to run and commit one writer batch.",
    );
    counter(
        &mut out,
        "muninn_writer_retried_batches_total",
        "Batches run again with a savepoint per write because one of their writes failed.",
        m.writer_retries.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "muninn_writer_failed_batches_total",
        "Batches that did not commit: a full disk, a read-only or deleted database (see /healthz).",
        m.writer_failures.load(Ordering::Relaxed),
    );
    counter_header(
        &mut out,
        "muninn_deliveries_total",
        "Delivery attempts finished, by outcome.",
    );
    for (i, o) in DeliveryOutcome::ALL.iter().enumerate() {
        let v = m.deliveries.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "muninn_deliveries_total{{outcome=\"{}\"}} {v}",
            o.label()
        );
    }
    counter_header(
        &mut out,
        "muninn_agent_emissions_refused_total",
        "Events agents emitted that a fan-out bound dropped: the root event's propagation budget, or the agent's or user's emission rate.",
    );
    for (i, reason) in REFUSAL_REASONS.iter().enumerate() {
        let v = m
            .emissions_refused
            .get(i)
            .map_or(0, |c| c.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "muninn_agent_emissions_refused_total{{reason=\"{reason}\"}} {v}"
        );
    }
    counter_header(
        &mut out,
        "muninn_feed_requests_total",
        "Feed GETs answered, by status.",
    );
    for slot in 0..STATUS_SLOTS {
        let v = m
            .feed_requests
            .get(slot)
            .map_or(0, |c| c.load(Ordering::Relaxed));
        if v > 0 || STATUSES.get(slot) == Some(&200) {
            let _ = writeln!(
                out,
                "muninn_feed_requests_total{{status=\"{}\"}} {v}",
                status_label(slot)
            );
        }
    }
    counter(
        &mut out,
        "muninn_feed_cache_hits_total",
        "Feed GETs answered from the rendered-feed cache.",
        m.feed_cache_hits.load(Ordering::Relaxed),
    );
    gauge(
        &mut out,
        "muninn_writer_queue_depth",
        "Writes waiting for the group-commit writer.",
        g.writer_queue,
    );
    gauge(
        &mut out,
        "muninn_agent_backlog",
        "Events pushed to agents and not handled yet.",
        g.agent_backlog,
    );
    gauge(
        &mut out,
        "muninn_deliveries_queued",
        "Due deliveries held in the subscriptions' in-memory windows.",
        g.deliveries_queued,
    );
    gauge(
        &mut out,
        "muninn_deliveries_in_flight",
        "Delivery attempts being sent or recorded now.",
        g.deliveries_in_flight,
    );
    gauge(
        &mut out,
        "muninn_circuits_open",
        "Subscriptions whose circuit breaker is open or half-open.",
        g.circuits_open,
    );
    gauge(&mut out, "muninn_agents", "Agents loaded.", g.agents);
    gauge(
        &mut out,
        "muninn_subscriptions",
        "Subscriptions (outgoing webhooks) loaded.",
        g.subscriptions,
    );
    gauge(
        &mut out,
        "muninn_uptime_seconds",
        "Seconds since the hub started.",
        format!("{:.3}", g.uptime_seconds),
    );
    super::process_metrics::render_build_info(&mut out);
    super::process_metrics::render(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_fold_into_slots_and_back() {
        assert_eq!(status_label(status_slot(201)), "201");
        assert_eq!(status_label(status_slot(418)), "4xx");
        assert_eq!(status_label(status_slot(502)), "5xx");
        assert_eq!(status_label(status_slot(99)), "other");
        assert_eq!(status_label(status_slot(700)), "other");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new(&[1, 10, 100], 1.0);
        for v in [1, 5, 50, 500] {
            h.observe(v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"100\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_sum 556\nx_count 4\n"), "{out}");
    }

    #[test]
    fn rendering_names_every_family_with_the_prefix() {
        ingest(IngestKind::Incoming, 202);
        delivery(DeliveryOutcome::Dead);
        feed_request(304, true);
        let text = render(&Gauges {
            circuits_open: 2,
            ..Gauges::default()
        });
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            // The process series keep the names every exporter gives them.
            assert!(
                line.starts_with("muninn_") || line.starts_with("process_"),
                "{line}"
            );
            assert_eq!(line.split(' ').count(), 2, "{line}");
        }
        assert!(text.contains("muninn_ingest_requests_total{kind=\"incoming\",status=\"202\"}"));
        assert!(text.contains("muninn_ingest_requests_total{kind=\"huginn\",status=\"201\"}"));
        assert!(text.contains("muninn_feed_requests_total{status=\"304\"}"));
        assert!(text.contains("muninn_circuits_open 2\n"));
        assert!(text.contains("# TYPE muninn_writer_commit_seconds histogram"));
        assert!(text.contains("# TYPE muninn_writer_retried_batches_total counter"));
        assert!(text.contains("# TYPE muninn_writer_failed_batches_total counter"));
    }
}
