//! Times in feeds: parsing what a template gives as `pubDate` (or a `time` sort key),
//! and the two output forms — RFC 2822 in RSS, RFC 3339 (Huginn's JSON form) in JSON.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Utc};

/// Parses the common forms of a date: RFC 2822, RFC 3339, `YYYY-MM-DD HH:MM:SS[ ±zone]`,
/// `YYYY-MM-DD`. Times without a zone are UTC. `None` when nothing fits, and for a year
/// outside 0..=9999, which RFC 2822 cannot write (a template's `+20000-01-01` is then
/// unparseable, as Huginn treats what it cannot use).
pub fn parse(text: &str) -> Option<DateTime<FixedOffset>> {
    parse_any(text).filter(|t| (0..=9999).contains(&t.year()))
}

fn parse_any(text: &str) -> Option<DateTime<FixedOffset>> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    for f in [
        "%Y-%m-%d %H:%M:%S %z",
        "%Y-%m-%d %H:%M:%S%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f %z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t);
        }
    }
    let s_utc = s
        .strip_suffix(" UTC")
        .or_else(|| s.strip_suffix('Z'))
        .unwrap_or(s);
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s_utc, f) {
            return Some(t.and_utc().fixed_offset());
        }
    }
    NaiveDate::parse_from_str(s_utc, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().fixed_offset())
}

/// `Sun, 22 Nov 2026 14:00:00 +0000`, `Mon, 07 Dec 2026 ...`: Ruby's `Time#rfc2822`,
/// which Huginn's feeds use, writes the day with two digits. Written with a format (not
/// `to_rfc2822`, which panics on a year RFC 2822 cannot hold).
pub fn rfc2822(t: &DateTime<FixedOffset>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S %z").to_string()
}

/// Huginn's JSON time (`2026-11-22T14:00:00.000Z` in UTC), which is RFC 3339.
pub fn json_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let want = "2014-11-05T16:47:49+05:30";
        for s in [
            "Wed, 05 Nov 2014 16:47:49 +0530",
            "2014-11-05T16:47:49+05:30",
            "2014-11-05 16:47:49 +0530",
        ] {
            assert_eq!(
                parse(s).map(|t| t.to_rfc3339()).as_deref(),
                Some(want),
                "{s}"
            );
        }
        assert_eq!(
            parse("2014-11-05 11:17:49").map(|t| rfc2822(&t)).as_deref(),
            Some("Wed, 05 Nov 2014 11:17:49 +0000")
        );
        assert!(parse("2014-11-05").is_some());
        assert!(parse("2014-11-05T11:17:49Z").is_some());
        assert!(parse("not a date").is_none());
        assert!(parse("+20000-01-01").is_none());
        assert!(parse("-0001-01-01T00:00:00Z").is_none());
        assert!(parse("").is_none());
    }
}
