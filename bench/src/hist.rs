//! Latency histograms: HDR, microsecond resolution, read out in milliseconds.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Largest latency recorded exactly (60 s); longer ones are clamped to it.
const MAX_US: u64 = 60_000_000;

/// A latency histogram in microseconds (3 significant digits).
#[derive(Clone, Debug)]
pub struct Latency(Histogram<u64>);

/// The percentiles every outcome reports, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest value.
    pub max_ms: f64,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        Latency(Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds"))
    }

    /// Records one latency (below 1 µs counts as 1 µs, above 60 s as 60 s).
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros())
            .unwrap_or(MAX_US)
            .clamp(1, MAX_US);
        self.0.saturating_record(us);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latency) {
        self.0.add(&other.0).expect("same bounds");
    }

    /// How many values were recorded.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value at quantile `q` (0..=1) in milliseconds; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    /// p50, p99, p99.9 and max in milliseconds.
    pub fn percentiles(&self) -> Percentiles {
        if self.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50_ms: self.quantile_ms(0.5),
            p99_ms: self.quantile_ms(0.99),
            p999_ms: self.quantile_ms(0.999),
            max_ms: self.0.max() as f64 / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        // 1..=1000 ms, one each: p50 = 500 ms, p99 = 990 ms, p99.9 = 999 ms, max = 1000 ms,
        // within the histogram's 3 significant digits.
        let mut h = Latency::new();
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        let p = h.percentiles();
        let close = |a: f64, b: f64| (a - b).abs() <= b * 0.001 + 1e-9;
        assert!(close(p.p50_ms, 500.0), "{p:?}");
        assert!(close(p.p99_ms, 990.0), "{p:?}");
        assert!(close(p.p999_ms, 999.0), "{p:?}");
        assert!(close(p.max_ms, 1000.0), "{p:?}");
        assert_eq!(h.len(), 1000);
    }

    #[test]
    fn merge_adds_and_extremes_clamp() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        a.record(Duration::from_nanos(10)); // below 1 µs: 1 µs
        b.record(Duration::from_secs(3600)); // above 60 s: 60 s
        a.merge(&b);
        assert_eq!(a.len(), 2);
        assert_eq!(a.quantile_ms(0.0), 0.001);
        assert!((a.percentiles().max_ms - 60_000.0).abs() < 60.0);
        assert_eq!(Latency::new().percentiles(), Percentiles::default());
    }
}
