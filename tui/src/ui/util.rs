//! Small formatting helpers shared by the screens.

use chrono::{DateTime, Utc};

/// "12s", "5m", "3h", "2d" since `t` (RFC 3339); "-" when absent or unreadable.
pub fn ago(now: DateTime<Utc>, t: Option<&str>) -> String {
    let Some(t) = t.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) else {
        return "-".into();
    };
    age((now - t.with_timezone(&Utc)).num_seconds())
}

/// "12s", "5m", "3h", "2d" for an age in seconds.
pub fn age(s: i64) -> String {
    let s = s.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The time of day of an RFC 3339 time, "HH:MM:SS".
pub fn clock(t: &str) -> String {
    DateTime::parse_from_rfc3339(t)
        .map(|t| t.with_timezone(&Utc).format("%H:%M:%S").to_string())
        .unwrap_or_else(|_| "--:--:--".into())
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {s}s")
    }
}

/// Cuts `s` to `max` characters, ending with "…" when cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// One line: newlines and tabs become spaces.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Header names whose values are credentials (the hub masks them too).
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "cookie"
        || [
            "token",
            "secret",
            "api-key",
            "apikey",
            "signature",
            "password",
        ]
        .iter()
        .any(|w| n.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(ago(now, Some("2026-11-22T11:58:00.000Z")), "2m");
        assert_eq!(ago(now, None), "-");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(duration(3725), "1h 2m");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert!(is_secret_header("X-Webhook-Signature"));
        assert!(!is_secret_header("Content-Type"));
    }
}
