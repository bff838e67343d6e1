//! Per-principal rate limits: token buckets kept in memory, one per principal and limit.
//!
//! Buckets are created on a principal's first request; principals exist only with a certificate
//! from the configured CA, so the map is bounded by the PKI. A bucket that is full again is
//! dropped on the next sweep, so idle principals cost nothing.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use silta_certs::Principal;

/// A token bucket per principal: `burst` requests at once, refilled at `per_second`.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<Principal, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Buckets kept before idle ones are swept out.
const SWEEP_AT: usize = 1024;

impl RateLimiter {
    /// `per_second` refill rate and `burst` capacity (both at least 1 after validation).
    pub fn new(per_second: f64, burst: u64) -> Self {
        RateLimiter {
            per_second: per_second.max(f64::MIN_POSITIVE),
            burst: burst.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `principal` at `now`, or says how long until one is there.
    pub fn take(&self, principal: &Principal, now: Instant) -> Result<(), Duration> {
        self.take_n(principal, 1.0, now)
    }

    /// Takes `cost` tokens (at most the burst) for `principal` at `now`, or says how long until
    /// they are there.
    pub fn take_n(&self, principal: &Principal, cost: f64, now: Instant) -> Result<(), Duration> {
        let cost = cost.min(self.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= SWEEP_AT {
            let (rate, burst) = (self.per_second, self.burst);
            buckets
                .retain(|_, b| b.tokens + rate * now.duration_since(b.last).as_secs_f64() < burst);
        }
        let b = buckets.entry(principal.clone()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        b.last = now;
        if b.tokens >= cost {
            b.tokens -= cost;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((cost - b.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate_then_refill() {
        let limiter = RateLimiter::new(10.0, 3);
        let p: Principal = "centre/a".parse().unwrap();
        let q: Principal = "centre/b".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.take(&p, t0).unwrap();
        }
        let wait = limiter.take(&p, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // Another principal is not affected.
        limiter.take(&q, t0).unwrap();
        // After 100 ms one more token is there, and only one.
        let t1 = t0 + Duration::from_millis(100);
        limiter.take(&p, t1).unwrap();
        assert!(limiter.take(&p, t1).is_err());
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            limiter.take(&p, t2).unwrap();
        }
        assert!(limiter.take(&p, t2).is_err());
    }
}
