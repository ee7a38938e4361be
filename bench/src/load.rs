//! A minimal HTTP/1.1 load generator over raw keep-alive TCP connections. It is
//! single-threaded and allocation-light, so on a 2-core box it leaves most of the CPU to
//! the server under test, and it measures latency per request (send to last byte).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP connection that reads responses framed by Content-Length.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends one request and reads its response: status, body, whether the server
    /// will close the connection.
    pub async fn roundtrip(&mut self, request: &[u8]) -> Result<(u16, Vec<u8>, bool)> {
        self.stream.write_all(request).await?;
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).context("response head")?;
                let status: u16 = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .context("status line")?;
                let mut len = 0usize;
                let mut close = false;
                for line in head.lines().skip(1) {
                    let (name, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.trim();
                    if name.eq_ignore_ascii_case("content-length") {
                        len = value.parse().context("content-length")?;
                    } else if name.eq_ignore_ascii_case("connection") {
                        close = value.eq_ignore_ascii_case("close");
                    } else if name.eq_ignore_ascii_case("transfer-encoding") {
                        bail!("chunked responses are not supported by this client");
                    }
                }
                let total = end + 4 + len;
                while self.buf.len() < total {
                    self.fill().await?;
                }
                let body = self.buf[end + 4..total].to_vec();
                self.buf.drain(..total);
                return Ok((status, body, close));
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed by the server");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Builds a request's bytes.
pub fn request(method: &str, path: &str, token: Option<&str>, body: Option<&[u8]>) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if let Some(t) = token {
        r.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or_default();
    if method != "GET" {
        r.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A request slower than this is noted with the moment it was sent, so a tail can be
/// lined up with what the server did at that moment (its checkpoints, its batches).
pub const SLOW_US: u64 = 5_000;
/// At most this many slow requests are noted per run.
const SLOW_KEPT: usize = 100_000;

/// What a load run saw.
#[derive(Debug, Clone)]
pub struct Stats {
    pub ok: u64,
    pub failed: u64,
    pub elapsed: Duration,
    /// The 2xx answers' latencies in microseconds (1 µs to 60 s, 3 significant
    /// digits): the whole distribution, not a sample.
    pub latencies: Histogram<u64>,
    /// The slow 2xx answers: (milliseconds from the run's start to the send, latency
    /// in microseconds).
    pub slow: Vec<(u32, u32)>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            ok: 0,
            failed: 0,
            elapsed: Duration::ZERO,
            latencies: latency_histogram(),
            slow: Vec::new(),
        }
    }
}

/// An empty latency histogram in microseconds, 1 µs to 60 s.
pub fn latency_histogram() -> Histogram<u64> {
    // Fails only for bounds a constant cannot have (low 0, high < 2 x low, > 5 digits).
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|e| unreachable!("constant histogram bounds: {e}"))
}

impl Stats {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The q-quantile of the latencies, in milliseconds; NaN without any.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.max() as f64 / 1000.0
    }

    /// The slow requests by the second of the run they were sent in: `(second,
    /// count, worst ms)`, for the seconds that had any.
    pub fn slow_by_second(&self) -> Vec<(u32, usize, f64)> {
        let mut out: Vec<(u32, usize, f64)> = Vec::new();
        for &(at_ms, us) in &self.slow {
            let s = at_ms / 1000;
            let ms = f64::from(us) / 1000.0;
            match out.iter_mut().find(|(sec, _, _)| *sec == s) {
                Some(e) => {
                    e.1 += 1;
                    e.2 = e.2.max(ms);
                }
                None => out.push((s, 1, ms)),
            }
        }
        out.sort_by_key(|e| e.0);
        out
    }
}

pub fn quantile_ms(values_us: &[u32], q: f64) -> f64 {
    if values_us.is_empty() {
        return f64::NAN;
    }
    let mut v = values_us.to_vec();
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    f64::from(v[i.min(v.len() - 1)]) / 1000.0
}

/// Runs `connections` keep-alive connections against `addr` until `duration` passed or
/// `max` requests were sent. `make(n)` builds request number n; `on_ok(n)` is called
/// for each 2xx. Only 2xx answers count as `ok`.
pub async fn run(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    max: Option<u64>,
    make: Rc<dyn Fn(u64) -> Vec<u8>>,
    on_ok: Rc<dyn Fn(u64)>,
    pause: Duration,
) -> Stats {
    let stats = Rc::new(RefCell::new(Stats::default()));
    let next = Rc::new(std::cell::Cell::new(0u64));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (stats, next, make, on_ok) = (stats.clone(), next.clone(), make.clone(), on_ok.clone());
        tasks.push(actix_rt::spawn(async move {
            let mut conn: Option<Conn> = None;
            while Instant::now() < deadline {
                let n = next.get();
                if max.is_some_and(|m| n >= m) {
                    break;
                }
                next.set(n + 1);
                let req = make(n);
                if conn.is_none() {
                    conn = Conn::open(addr).await.ok();
                }
                let Some(c) = conn.as_mut() else {
                    stats.borrow_mut().failed += 1;
                    actix_rt::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let t = Instant::now();
                match c.roundtrip(&req).await {
                    Ok((status, _, close)) => {
                        let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                        let mut s = stats.borrow_mut();
                        if (200..300).contains(&status) {
                            s.ok += 1;
                            s.latencies.saturating_record(u64::from(us).max(1));
                            if u64::from(us) >= SLOW_US && s.slow.len() < SLOW_KEPT {
                                let at = t.duration_since(started).as_millis() as u32;
                                s.slow.push((at, us));
                            }
                            drop(s);
                            on_ok(n);
                        } else {
                            s.failed += 1;
                        }
                        if close {
                            conn = None;
                        }
                    }
                    Err(_) => {
                        stats.borrow_mut().failed += 1;
                        conn = None;
                    }
                }
                if !pause.is_zero() {
                    actix_rt::time::sleep(pause).await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut s = stats.borrow().clone();
    s.elapsed = started.elapsed();
    s
}
