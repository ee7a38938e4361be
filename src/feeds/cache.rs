//! A rendered feed as it is cached and served: the body, its ETag (a hash of the
//! body, so equal bodies share it), Last-Modified (when it was rendered), and the
//! evaluation of conditional requests (`If-None-Match`, then `If-Modified-Since`, as
//! RFC 9110 orders them).

use actix_web::web::Bytes;
use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Bytes,
    pub content_type: String,
    /// Quoted strong validator, e.g. `"3f2a..."`.
    pub etag: String,
    pub last_modified: DateTime<Utc>,
    /// After this time an event shown has expired: render again.
    pub stale_at: Option<NaiveDateTime>,
    pub max_age_seconds: u64,
    /// The agent's `response_headers`.
    pub extra_headers: Vec<(String, String)>,
}

impl Rendered {
    pub fn new(
        body: Vec<u8>,
        content_type: String,
        built_at: DateTime<Utc>,
        stale_at: Option<NaiveDateTime>,
        max_age_seconds: u64,
        extra_headers: Vec<(String, String)>,
    ) -> Rendered {
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", hex::encode(&digest[..16]));
        Rendered {
            body: Bytes::from(body),
            content_type,
            etag,
            last_modified: built_at.trunc_subsecs(0),
            stale_at,
            max_age_seconds,
            extra_headers,
        }
    }

    pub fn is_fresh(&self, now: NaiveDateTime) -> bool {
        self.stale_at.is_none_or(|t| now < t)
    }

    /// `Last-Modified` in the IMF-fixdate form HTTP uses.
    pub fn last_modified_http(&self) -> String {
        self.last_modified
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string()
    }

    /// True when the client's copy is current and a 304 is the answer.
    pub fn not_modified(
        &self,
        if_none_match: Option<&str>,
        if_modified_since: Option<&str>,
    ) -> bool {
        if let Some(inm) = if_none_match {
            // Weak comparison (RFC 9110 13.1.2): W/ prefixes are ignored.
            let ours = self.etag.trim_start_matches("W/");
            return inm
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours);
        }
        if let Some(ims) = if_modified_since
            && let Ok(t) = DateTime::parse_from_rfc2822(ims.trim())
        {
            return self.last_modified <= t.with_timezone(&Utc);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Rendered {
        let at = DateTime::parse_from_rfc3339("2026-11-22T14:00:00.700Z")
            .unwrap()
            .with_timezone(&Utc);
        Rendered::new(b"body".to_vec(), "text/plain".into(), at, None, 60, vec![])
    }

    #[test]
    fn etag_is_a_quoted_hash_of_the_body() {
        let a = r();
        assert_eq!(a.etag.len(), 34);
        assert!(a.etag.starts_with('"') && a.etag.ends_with('"'));
        let other = Rendered::new(
            b"body2".to_vec(),
            "text/plain".into(),
            a.last_modified,
            None,
            60,
            vec![],
        );
        assert_ne!(a.etag, other.etag);
    }

    #[test]
    fn conditional_requests() {
        let a = r();
        assert_eq!(a.last_modified_http(), "Sun, 22 Nov 2026 14:00:00 GMT");
        assert!(a.not_modified(Some(&a.etag), None));
        assert!(a.not_modified(Some(&format!("\"x\", W/{}", a.etag)), None));
        assert!(a.not_modified(Some("*"), None));
        assert!(!a.not_modified(Some("\"x\""), None));
        // If-None-Match wins over If-Modified-Since.
        assert!(!a.not_modified(Some("\"x\""), Some("Sun, 22 Nov 2026 15:00:00 GMT")));
        assert!(a.not_modified(None, Some("Sun, 22 Nov 2026 14:00:00 GMT")));
        assert!(!a.not_modified(None, Some("Sun, 22 Nov 2026 13:59:59 GMT")));
        assert!(!a.not_modified(None, Some("yesterday")));
        assert!(!a.not_modified(None, None));
    }

    #[test]
    fn freshness_follows_the_first_expiry() {
        let mut a = r();
        let now = Utc::now().naive_utc();
        assert!(a.is_fresh(now));
        a.stale_at = Some(now);
        assert!(!a.is_fresh(now));
    }
}
