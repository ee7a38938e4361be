//! The process series every Prometheus exporter offers (`process_resident_memory_bytes`,
//! `process_cpu_seconds_total`, `process_open_fds`, `process_start_time_seconds`, ...)
//! read from `/proc/self` on Linux, and `muninn_build_info`. Elsewhere, or when a
//! `/proc` file cannot be read, the series it would give is left out rather than
//! reported as a made-up 0.

use std::fmt::Write as _;

/// `/proc` reports CPU times and start time in USER_HZ ticks, which the kernel fixes at
/// 100 for user space on every architecture Linux runs muninn on (no libc call needed).
const TICKS_PER_SECOND: f64 = 100.0;

/// `muninn_build_info{version="..."} 1`: the version, as a label, for dashboards and
/// alerts on mixed fleets.
pub fn render_build_info(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP muninn_build_info The running muninn's version.\n\
         # TYPE muninn_build_info gauge\n\
         muninn_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
}

/// Appends the process series that can be read on this system.
pub fn render(out: &mut String) {
    let Some(p) = ProcessStats::read() else {
        return;
    };
    let mut series = |name: &str, kind: &str, help: &str, value: Option<String>| {
        if let Some(v) = value {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
    };
    series(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        p.cpu_seconds.map(|s| format!("{s:.2}")),
    );
    series(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        p.resident_bytes.map(|b| b.to_string()),
    );
    series(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        p.virtual_bytes.map(|b| b.to_string()),
    );
    series(
        "process_open_fds",
        "gauge",
        "Number of open file descriptors.",
        p.open_fds.map(|n| n.to_string()),
    );
    series(
        "process_max_fds",
        "gauge",
        "Maximum number of open file descriptors.",
        p.max_fds.map(|n| n.to_string()),
    );
    series(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        p.start_time_seconds.map(|s| format!("{s:.2}")),
    );
}

#[derive(Debug, Default, PartialEq)]
struct ProcessStats {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<u64>,
    virtual_bytes: Option<u64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
    start_time_seconds: Option<f64>,
}

impl ProcessStats {
    #[cfg(target_os = "linux")]
    fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let boot = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        // Bounded by the process's own descriptor limit.
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        Some(parse(&stat, &status, &limits, &boot, open_fds))
    }

    #[cfg(not(target_os = "linux"))]
    fn read() -> Option<ProcessStats> {
        None
    }
}

/// Reads the stats out of the text of `/proc/self/stat`, `/proc/self/status`,
/// `/proc/self/limits` and `/proc/stat`.
fn parse(
    stat: &str,
    status: &str,
    limits: &str,
    boot: &str,
    open_fds: Option<u64>,
) -> ProcessStats {
    // The command name (field 2) is in parentheses and may hold spaces or ')': the
    // fields that follow start after the last ')'. Field 3 (state) is index 0 here.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> Option<f64> { fields.get(n.checked_sub(3)?)?.parse().ok() };
    let cpu_seconds = match (field(14), field(15)) {
        (Some(u), Some(s)) => Some((u + s) / TICKS_PER_SECOND),
        _ => None,
    };
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        let n: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        n.checked_mul(1024)
    };
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok());
    let boot_time: Option<f64> = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok());
    let start_time_seconds = match (boot_time, field(22)) {
        (Some(b), Some(ticks)) => Some(b + ticks / TICKS_PER_SECOND),
        _ => None,
    };
    ProcessStats {
        cpu_seconds,
        resident_bytes: kib("VmRSS:"),
        virtual_bytes: kib("VmSize:"),
        open_fds,
        max_fds,
        start_time_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_texts_are_read_field_by_field() {
        // A command name with a space and a ')' must not shift the fields.
        let stat = "4242 (my ) hub) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    250 130 0 0 20 0 9 0 123456 1000000 5000 18446744073709551615";
        let status = "Name:\tmuninn\nVmSize:\t  204800 kB\nVmRSS:\t    5120 kB\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        let boot = "cpu  1 2 3\nbtime 1765000000\nprocesses 99\n";
        let p = parse(stat, status, limits, boot, Some(12));
        assert_eq!(
            p,
            ProcessStats {
                cpu_seconds: Some(3.8),
                resident_bytes: Some(5120 * 1024),
                virtual_bytes: Some(204800 * 1024),
                open_fds: Some(12),
                max_fds: Some(1024),
                start_time_seconds: Some(1765000000.0 + 1234.56),
            }
        );
    }

    #[test]
    fn unreadable_texts_leave_the_series_out() {
        let p = parse("garbage", "", "", "", None);
        assert_eq!(p, ProcessStats::default());
        let mut out = String::new();
        render_build_info(&mut out);
        assert!(
            out.ends_with(&format!(
                "muninn_build_info{{version=\"{}\"}} 1\n",
                env!("CARGO_PKG_VERSION")
            )),
            "{out}"
        );
    }
}
