//! The ingest matrix: each body (see `bodies`) driven by each load generator (the
//! harness's own, and wrk when it is installed) against the hub with
//! `synchronous=FULL` and `NORMAL`, each hub run followed at once by the reference it
//! is compared with (the durable ceiling, the framework ceiling), with the same body,
//! the same generator, the same connections and duration. On a shared machine the
//! background load changes from one run to the next, less so between neighbours, so
//! each ratio is taken within a round and the rows show the median of the rounds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use anyhow::Result;

use crate::bodies::Body;
use crate::load::{self, Stats, request};
use crate::{Row, row};

/// What one load run saw, whichever generator measured it.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// 2xx answers per second.
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub failed: u64,
    /// Where the slow requests were (own generator only): for each second of the run
    /// that had requests over 5 ms, `second:count(worst ms)`.
    pub slow: String,
}

impl From<&Stats> for Measured {
    fn from(s: &Stats) -> Self {
        let slow: Vec<String> = s
            .slow_by_second()
            .iter()
            .map(|(sec, n, worst)| format!("{sec}:{n}({worst:.0})"))
            .collect();
        Measured {
            rps: s.rps(),
            p50_ms: s.quantile_ms(0.5),
            p99_ms: s.quantile_ms(0.99),
            p999_ms: s.quantile_ms(0.999),
            max_ms: s.max_ms(),
            failed: s.failed,
            slow: slow.join(" "),
        }
    }
}

impl Measured {
    /// The progress line's latency part: the tail in detail.
    pub fn tail(&self) -> String {
        let mut t = format!(
            "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.1} ms",
            self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms
        );
        if !self.slow.is_empty() {
            t.push_str(&format!("; > 5 ms by second: {}", self.slow));
        }
        t
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generator {
    Own,
    Wrk,
}

impl Generator {
    fn name(self) -> &'static str {
        match self {
            Generator::Own => "muninn-bench",
            Generator::Wrk => "wrk",
        }
    }
}

/// One load run of `duration` (after a 1 s warm-up) posting `body` to `path`.
pub async fn measure(
    generator: Generator,
    addr: SocketAddr,
    path: &str,
    body: &[u8],
    connections: usize,
    duration: Duration,
    scratch: &std::path::Path,
) -> Result<Measured> {
    match generator {
        Generator::Own => {
            let req = request("POST", path, None, Some(body));
            let make: Rc<dyn Fn(u64) -> Vec<u8>> = Rc::new(move |_| req.clone());
            let none: Rc<dyn Fn(u64)> = Rc::new(|_| {});
            let warm = Duration::from_secs(1);
            load::run(
                addr,
                connections,
                warm,
                None,
                make.clone(),
                none.clone(),
                Duration::ZERO,
            )
            .await;
            let s = load::run(
                addr,
                connections,
                duration,
                None,
                make,
                none,
                Duration::ZERO,
            )
            .await;
            Ok(Measured::from(&s))
        }
        Generator::Wrk => {
            crate::wrk::run(
                addr,
                path,
                body,
                connections,
                Duration::from_secs(1),
                scratch,
            )?;
            crate::wrk::run(addr, path, body, connections, duration, scratch)
        }
    }
}

/// The runs of the matrix, by (body index, generator, target).
#[derive(Default)]
pub struct Matrix {
    runs: HashMap<(usize, Generator, String), Vec<Measured>>,
    /// The hub's peak RSS over its FULL runs, in MiB.
    pub peak_rss_full: f64,
}

/// The two comparisons: the hub with this `synchronous`, the reference, the target ratio.
const PAIRS: [(&str, &str, f64); 2] = [("full", "durable", 85.0), ("normal", "framework", 55.0)];

/// The durable ceiling with SQLite's automatic checkpoints on its writer thread, as
/// muninn had them (`--inline-checkpoint-reference`).
const INLINE: &str = "durable-inline";

/// The hubs measured: the one under test and, for an A/B comparison, a second
/// binary (`--compare`) run right after it with the same body and generator.
pub fn hubs<'a>(
    bin: &'a std::path::Path,
    compare: Option<&'a std::path::Path>,
) -> Vec<(&'a std::path::Path, &'static str)> {
    let mut v = vec![(bin, "")];
    if let Some(b) = compare {
        v.push((b, " (compare)"));
    }
    v
}

pub async fn run(
    hubs: &[(&std::path::Path, &'static str)],
    bodies: &[Body],
    generators: &[Generator],
    rounds: usize,
    connections: usize,
    duration: Duration,
    inline_reference: bool,
) -> Result<Matrix> {
    let mut m = Matrix::default();
    for round in 0..rounds.max(1) {
        println!("round {}", round + 1);
        for (b, body) in bodies.iter().enumerate() {
            for &g in generators {
                for (sync, reference, _) in PAIRS {
                    for &(bin, which) in hubs {
                        let dir = tempfile::tempdir()?;
                        let hub = crate::start_hub(bin, dir.path(), sync)?;
                        let path = crate::webhook_agent(hub.addr).await?;
                        let got = measure(
                            g,
                            hub.addr,
                            &path,
                            &body.bytes,
                            connections,
                            duration,
                            dir.path(),
                        )
                        .await?;
                        if sync == "full" && which.is_empty() {
                            m.peak_rss_full = m.peak_rss_full.max(hub.rss_mib().0);
                        }
                        drop(hub);
                        println!(
                            "  {} {} hub{which} {sync}: {:.0} req/s, {}",
                            body.label,
                            g.name(),
                            got.rps,
                            got.tail()
                        );
                        m.runs
                            .entry((b, g, format!("{sync}{which}")))
                            .or_default()
                            .push(got);
                    }

                    let mut references = vec![reference];
                    if inline_reference && reference == "durable" {
                        references.push(INLINE);
                    }
                    for reference in references {
                        let dir = tempfile::tempdir()?;
                        let r = crate::start_reference(reference, "full", dir.path())?;
                        let got = measure(
                            g,
                            r.addr,
                            "/ingest",
                            &body.bytes,
                            connections,
                            duration,
                            dir.path(),
                        )
                        .await?;
                        println!(
                            "  {} {} {reference}: {:.0} req/s, {}",
                            body.label,
                            g.name(),
                            got.rps,
                            got.tail()
                        );
                        m.runs
                            .entry((b, g, reference.to_string()))
                            .or_default()
                            .push(got);
                    }
                }
            }
        }
    }
    Ok(m)
}

impl Matrix {
    /// The median round's rate of the hub (the one under test) with `synchronous` =
    /// `sync`, body `b` and generator `g`.
    pub fn median_rps(&self, b: usize, g: Generator, sync: &str) -> Option<f64> {
        let runs = self.runs.get(&(b, g, sync.to_string()))?;
        Some(median_run(runs).rps)
    }

    /// One row per body, generator and comparison: the hub's median round, the
    /// reference's, and the median of the rounds' own ratios.
    pub fn rows(
        &self,
        rows: &mut Vec<Row>,
        bodies: &[Body],
        generators: &[Generator],
        hubs: &[(&std::path::Path, &'static str)],
    ) {
        for (b, body) in bodies.iter().enumerate() {
            for &g in generators {
                for ((sync, reference, target), &(_, which)) in PAIRS
                    .into_iter()
                    .flat_map(|p| hubs.iter().map(move |h| (p, h)))
                {
                    let (Some(hub), Some(refs)) = (
                        self.runs.get(&(b, g, format!("{sync}{which}"))),
                        self.runs.get(&(b, g, reference.to_string())),
                    ) else {
                        continue;
                    };
                    let ratios: Vec<f64> = hub
                        .iter()
                        .zip(refs)
                        .map(|(h, r)| 100.0 * h.rps / r.rps)
                        .collect();
                    let (h, r) = (median_run(hub), median_run(refs));
                    let shown: Vec<String> = ratios.iter().map(|x| format!("{x:.0} %")).collect();
                    row(
                        rows,
                        &format!(
                            "ingest {}{which}, {}, {}",
                            sync.to_uppercase(),
                            body.label,
                            g.name()
                        ),
                        format!("{:.0} req/s", h.rps),
                        format!(
                            "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, {} failed; {reference} ceiling {:.0} req/s, p99 {:.2} ms; ratio {:.0} % (rounds: {}; target >= {target:.0} %); p99 {:.1}x the reference's (target <= 2x)",
                            h.p50_ms,
                            h.p99_ms,
                            h.p999_ms,
                            h.failed,
                            r.rps,
                            r.p99_ms,
                            crate::median_of(&ratios),
                            shown.join(", "),
                            h.p99_ms / r.p99_ms
                        ),
                    );
                    if let (Some(inline), true) = (
                        self.runs.get(&(b, g, INLINE.to_string())),
                        reference == "durable" && which.is_empty(),
                    ) {
                        let i = median_run(inline);
                        let rates: Vec<f64> = inline
                            .iter()
                            .zip(refs)
                            .map(|(i, r)| 100.0 * i.rps / r.rps)
                            .collect();
                        row(
                            rows,
                            &format!(
                                "durable ceiling with checkpoints on its writer thread, {}, {}",
                                body.label,
                                g.name()
                            ),
                            format!("{:.0} req/s", i.rps),
                            format!(
                                "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; against off-thread checkpoints (the durable ceiling): rate {:.0} %, p99 {:.2} ms vs {:.2} ms",
                                i.p50_ms,
                                i.p99_ms,
                                i.p999_ms,
                                crate::median_of(&rates),
                                i.p99_ms,
                                r.p99_ms
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// The run with the median rate.
fn median_run(runs: &[Measured]) -> Measured {
    let mut v = runs.to_vec();
    v.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    v.get(v.len() / 2).cloned().unwrap_or_default()
}
