//! The retry policy: what an attempt's outcome means, and when to try again.
//! 2xx succeeds; connection errors, timeouts, 408, 425, 429, 5xx and 3xx (redirects are
//! not followed) are retried; other 4xx are final; 410 is final and disables the
//! subscription. A `Retry-After` is honoured up to a cap and does not spend a retry.

use std::time::Duration;

use rand::Rng;

/// Standard Webhooks' example schedule after the first attempt: 5 s, 5 min, 30 min,
/// 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
pub const STANDARD_SCHEDULE_MS: [u64; 9] = [
    5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 50_400_000, 72_000_000,
    86_400_000,
];

/// The longest a `Retry-After` may hold a delivery back, unless the policy's own
/// maximum delay is longer.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// `base` doubling per failure up to `max`, for `retries` retries.
    Exponential {
        base_ms: u64,
        max_ms: u64,
        retries: u32,
    },
    /// One delay per retry.
    Fixed(Vec<u64>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub schedule: Schedule,
}

/// What one attempt's response means.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Delivered,
    /// Try again; `retry_after` when the receiver said when.
    Retry {
        retry_after: Option<Duration>,
    },
    /// Never again (other 4xx).
    Final,
    /// 410: never again, and stop sending to this subscription.
    Gone,
}

pub fn classify(status: Option<u16>, retry_after: Option<Duration>) -> Verdict {
    match status {
        None => Verdict::Retry { retry_after: None },
        Some(s) if (200..300).contains(&s) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        Some(408 | 425 | 429) | Some(500..=599) => Verdict::Retry { retry_after },
        Some(s) if (300..400).contains(&s) => Verdict::Retry { retry_after: None },
        Some(_) => Verdict::Final,
    }
}

impl RetryPolicy {
    /// How many retries follow the first attempt.
    pub fn retries(&self) -> u32 {
        match &self.schedule {
            Schedule::Exponential { retries, .. } => *retries,
            Schedule::Fixed(v) => v.len() as u32,
        }
    }

    /// The delay before retry number `n` (1-based), with ±10 % jitter; `None` when the
    /// retries are spent.
    pub fn delay(&self, n: u32) -> Option<Duration> {
        if n == 0 || n > self.retries() {
            return None;
        }
        let ms = match &self.schedule {
            Schedule::Exponential {
                base_ms, max_ms, ..
            } => {
                let factor = 1u64.checked_shl(n - 1).unwrap_or(u64::MAX);
                base_ms.saturating_mul(factor).min(*max_ms)
            }
            Schedule::Fixed(v) => *v.get(n as usize - 1)?,
        };
        Some(jitter(ms))
    }

    /// How long to honour a `Retry-After`.
    pub fn cap_retry_after(&self, d: Duration) -> Duration {
        let own_max = match &self.schedule {
            Schedule::Exponential { max_ms, .. } => Duration::from_millis(*max_ms),
            Schedule::Fixed(v) => Duration::from_millis(v.iter().copied().max().unwrap_or(0)),
        };
        d.min(RETRY_AFTER_CAP.max(own_max))
    }
}

fn jitter(ms: u64) -> Duration {
    if ms < 10 {
        return Duration::from_millis(ms);
    }
    let spread = ms / 10;
    Duration::from_millis(ms - spread + rand::rng().random_range(0..=2 * spread))
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = (when.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds();
    Some(Duration::from_millis(ms.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_with_jitter_up_to_the_max() {
        let p = RetryPolicy {
            schedule: Schedule::Exponential {
                base_ms: 60_000,
                max_ms: 200_000,
                retries: 3,
            },
        };
        let within = |d: Duration, ms: u64| {
            let d = d.as_millis() as u64;
            d >= ms - ms / 10 && d <= ms + ms / 10
        };
        assert!(within(p.delay(1).unwrap(), 60_000));
        assert!(within(p.delay(2).unwrap(), 120_000));
        assert!(within(p.delay(3).unwrap(), 200_000));
        assert_eq!(p.delay(4), None);
    }

    #[test]
    fn outcomes() {
        assert_eq!(classify(Some(204), None), Verdict::Delivered);
        assert_eq!(classify(Some(404), None), Verdict::Final);
        assert_eq!(classify(Some(410), None), Verdict::Gone);
        assert_eq!(
            classify(Some(302), None),
            Verdict::Retry { retry_after: None }
        );
        assert_eq!(classify(None, None), Verdict::Retry { retry_after: None });
        let ra = Some(Duration::from_secs(3));
        assert_eq!(classify(Some(429), ra), Verdict::Retry { retry_after: ra });
        assert_eq!(classify(Some(503), ra), Verdict::Retry { retry_after: ra });
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
