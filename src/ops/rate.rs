//! The one token bucket of the hub: inbound endpoints (`rate_limit` per minute), the
//! fan-out limits and outgoing subscriptions (`rate_limit` over a period) all spend
//! tokens from it. A leaf: it knows only clocks.

use std::time::{Duration, Instant};

/// `n` tokens of burst, refilled evenly over `period`. Zero tokens means no limit.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    tokens: f64,
    /// Tokens per second; zero for a bucket that never limits.
    rate: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(n: u32, period: Duration, now: Instant) -> TokenBucket {
        let capacity = f64::from(n);
        TokenBucket {
            capacity,
            tokens: capacity,
            rate: if n == 0 {
                0.0
            } else {
                // A zero period would divide by zero: a millisecond is the shortest.
                capacity / period.as_secs_f64().max(0.001)
            },
            last: now,
        }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        if self.rate == 0.0 {
            return Ok(());
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// A bucket counted per minute whose wait is told in whole seconds (what a
/// `Retry-After` header says); `0` per minute never limits.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    bucket: TokenBucket,
    pub per_minute: u32,
}

impl RateLimiter {
    pub fn new(per_minute: u32, now: Instant) -> Self {
        RateLimiter {
            bucket: TokenBucket::new(per_minute, Duration::from_secs(60), now),
            per_minute,
        }
    }

    /// Takes one token, or says how many whole seconds until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), u64> {
        self.bucket
            .take(now)
            .map_err(|wait| wait.as_secs_f64().ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_minute_bucket_refills_and_says_seconds() {
        let t0 = Instant::now();
        let mut b = RateLimiter::new(2, t0);
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        assert_eq!(b.take(t0), Err(30));
        assert_eq!(b.take(t0 + Duration::from_secs(29)), Err(1));
        let mut open = RateLimiter::new(0, t0);
        assert!((0..1000).all(|_| open.take(t0).is_ok()));
    }

    #[test]
    fn period_bucket_says_how_long_to_wait() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1, Duration::from_secs(1), t0);
        assert!(b.take(t0).is_ok());
        let wait = b.take(t0).unwrap_err();
        assert!(wait > Duration::from_millis(990) && wait <= Duration::from_secs(1));
        assert!(b.take(t0 + Duration::from_millis(500)).is_err());
        assert!(b.take(t0 + Duration::from_millis(1001)).is_ok());
    }
}
