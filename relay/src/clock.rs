//! Time, injected: every decision the relay makes by the calendar (acceptance times, expiry,
//! purge, certificate expiry in the key directory) asks a [`Clock`], so tests can run days in
//! milliseconds with a [`TestClock`]. Timeouts and rate limits measure elapsed time with the
//! monotonic clock and stay outside it.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use prost_types::Timestamp;

/// Where the relay reads the time of day.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Now.
    fn now(&self) -> SystemTime;

    /// Now, as a protobuf timestamp.
    fn timestamp(&self) -> Timestamp {
        Timestamp::from(self.now())
    }

    /// Now, in whole seconds since the Unix epoch.
    fn unix_seconds(&self) -> i64 {
        unix_seconds(self.now())
    }
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that stands still until told to move (tests). Clones share the time.
#[derive(Debug, Clone)]
pub struct TestClock(Arc<Mutex<SystemTime>>);

impl TestClock {
    /// A clock showing the real time now.
    pub fn new() -> Self {
        TestClock(Arc::new(Mutex::new(SystemTime::now())))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `t` in whole seconds since the Unix epoch (negative before it).
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// A protobuf timestamp in whole seconds since the Unix epoch (0 if absent).
pub fn seconds_of(t: Option<&Timestamp>) -> i64 {
    t.map(|t| t.seconds).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_clock_moves_only_when_told() {
        let c = TestClock::new();
        let t0 = c.now();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.now(), t0);
        let shared = c.clone();
        shared.advance(Duration::from_secs(5 * 24 * 3600));
        assert_eq!(c.unix_seconds(), unix_seconds(t0) + 5 * 24 * 3600);
    }
}
