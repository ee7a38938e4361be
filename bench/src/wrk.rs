//! wrk (https://github.com/wg/wrk) as an independent load generator: the same body,
//! connections and duration as the harness's own generator, one wrk thread (as ours
//! is one thread), latency percentiles from `--latency`. wrk is not a dependency of
//! the build: when it is not installed the rows say so (`apt-get install wrk`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::ingest::Measured;

/// Whether `wrk` can be run.
pub fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok_and(|o| !o.stdout.is_empty() || !o.stderr.is_empty())
}

/// POSTs `body` to `path` for `duration` over `connections` keep-alive connections.
pub fn run(
    addr: SocketAddr,
    path: &str,
    body: &[u8],
    connections: usize,
    duration: Duration,
    scratch: &Path,
) -> Result<Measured> {
    let body_file = scratch.join("wrk-body.json");
    std::fs::write(&body_file, body)?;
    let script = scratch.join("wrk-post.lua");
    std::fs::write(
        &script,
        format!(
            "local f = io.open({}, \"rb\")\nwrk.method = \"POST\"\nwrk.body = f:read(\"*a\")\nf:close()\nwrk.headers[\"Content-Type\"] = \"application/json\"\n{DONE}",
            lua_string(&body_file.to_string_lossy())
        ),
    )?;
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}")])
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--latency")
        .arg("-s")
        .arg(&script)
        .arg(format!("http://{addr}{path}"))
        .output()
        .context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&text)
}

/// wrk's `--latency` stops at the 99th percentile: the script prints the rest of
/// the tail in the same units (microseconds, as `Nus`).
const DONE: &str = "done = function(summary, latency, requests)\n  io.write(string.format(\"99.9%%  %dus\\n\", latency:percentile(99.9)))\n  io.write(string.format(\"max  %dus\\n\", latency.max))\nend\n";

fn lua_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Reads wrk's report: the requests and seconds, the non-2xx/3xx answers and socket
/// errors (failed), and the 50th and 99th latency percentiles.
pub fn parse(report: &str) -> Result<Measured> {
    let mut requests = None;
    let mut seconds = None;
    let mut failed = 0u64;
    let mut p50 = f64::NAN;
    let mut p99 = f64::NAN;
    let mut p999 = f64::NAN;
    let mut max = f64::NAN;
    for line in report.lines().map(str::trim) {
        if let Some((n, rest)) = line.split_once(" requests in ") {
            requests = n.trim().parse::<u64>().ok();
            seconds = rest
                .split(',')
                .next()
                .and_then(|s| duration_ms(s.trim()))
                .map(|ms| ms / 1000.0);
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            failed += n.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            failed += errors
                .split(',')
                .filter_map(|e| e.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = duration_ms(v.trim()).unwrap_or(f64::NAN);
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = duration_ms(v.trim()).unwrap_or(f64::NAN);
        } else if let Some(v) = line.strip_prefix("99.9%") {
            p999 = duration_ms(v.trim()).unwrap_or(f64::NAN);
        } else if let Some(v) = line.strip_prefix("max ") {
            max = duration_ms(v.trim()).unwrap_or(f64::NAN);
        }
    }
    let (Some(requests), Some(seconds)) = (requests, seconds) else {
        bail!("wrk's report has no request count: {report}");
    };
    Ok(Measured {
        rps: requests.saturating_sub(failed) as f64 / seconds.max(1e-9),
        p50_ms: p50,
        p99_ms: p99,
        p999_ms: p999,
        max_ms: max,
        failed,
        slow: String::new(),
    })
}

/// wrk's durations: `812.00us`, `1.25ms`, `10.00s`, `2.00m`.
fn duration_ms(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:40123/users/1/web_requests/1/s
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.31us    1.02ms  31.20ms   95.12%
    Req/Sec    40.12k     2.01k   44.00k    71.00%
  Latency Distribution
     50%  640.00us
     75%  800.00us
     90%    1.10ms
     99%   10.25ms
  400123 requests in 10.00s, 50.12MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 20
Requests/sec:  40012.30
Transfer/sec:      5.01MB
99.9%  25012us
max  31200us
";

    #[test]
    fn a_wrk_report_is_read() {
        let m = parse(REPORT).unwrap();
        assert_eq!(m.failed, 23);
        assert!((m.rps - 40010.0).abs() < 0.01, "{}", m.rps);
        assert!((m.p50_ms - 0.64).abs() < 1e-9);
        assert!((m.p99_ms - 10.25).abs() < 1e-9);
        assert!((m.p999_ms - 25.012).abs() < 1e-9);
        assert!((m.max_ms - 31.2).abs() < 1e-9);
        assert!(parse("nothing").is_err());
    }
}
