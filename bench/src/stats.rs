//! Latency recording: an HDR histogram of microseconds (1 µs to 60 s, 3 significant digits).

use anyhow::{Result, anyhow};
use hdrhistogram::Histogram;
use std::time::Duration;

pub struct Latencies(Histogram<u64>);

impl Latencies {
    pub fn new() -> Result<Latencies> {
        Histogram::new_with_bounds(1, 60_000_000, 3)
            .map(Latencies)
            .map_err(|e| anyhow!("histogram: {e}"))
    }

    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.0.saturating_record(us);
    }

    pub fn add(&mut self, other: &Latencies) -> Result<()> {
        self.0.add(&other.0).map_err(|e| anyhow!("histogram: {e}"))
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The latency at quantile `q` (0.5 for the median), in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }
}
