//! How muninn writes time: UTC, RFC 3339 with milliseconds, in the API, the stream and
//! the console's statistics. A leaf, so every subsystem writes timestamps one way.

use chrono::NaiveDateTime;

/// RFC 3339 in UTC with milliseconds, as every timestamp in the API is written.
pub fn ts(t: NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn ts_opt(t: Option<NaiveDateTime>) -> Option<String> {
    t.map(ts)
}

/// The current time, written as [`ts`] writes a stored one.
pub fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_utc_with_milliseconds() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z")
            .map(|d| d.naive_utc())
            .unwrap();
        assert_eq!(ts(t), "2026-01-02T03:04:05.678Z");
        assert_eq!(ts_opt(None), None);
        assert!(now_text().ends_with('Z'));
    }
}
