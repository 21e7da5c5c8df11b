//! Rate limits driven by the injected clock.

use serde::{Deserialize, Serialize};

/// A token bucket: `burst` messages at once, refilled at `per_second`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenBucket {
    tokens: f64,
    last_ms: u64,
}

impl TokenBucket {
    pub fn full(burst: u32, now_ms: u64) -> Self {
        Self {
            tokens: f64::from(burst),
            last_ms: now_ms,
        }
    }

    /// Take one token; false when the bucket is empty.
    pub fn take(&mut self, burst: u32, per_second: u32, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * f64::from(per_second)).min(f64::from(burst));
        self.last_ms = now_ms.max(self.last_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Failures within a sliding window (password guesses).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FailureWindow {
    at_ms: Vec<u64>,
}

impl FailureWindow {
    pub fn blocked(&mut self, max: u32, window_ms: u64, now_ms: u64) -> bool {
        self.at_ms.retain(|&t| now_ms.saturating_sub(t) < window_ms);
        self.at_ms.len() >= max as usize
    }

    pub fn record(&mut self, now_ms: u64) {
        self.at_ms.push(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refills() {
        let mut b = TokenBucket::full(3, 0);
        assert!((0..3).all(|_| b.take(3, 2, 0)));
        assert!(!b.take(3, 2, 0));
        assert!(b.take(3, 2, 500));
        assert!(!b.take(3, 2, 500));
    }

    #[test]
    fn window_forgets_old_failures() {
        let mut w = FailureWindow::default();
        (0..3).for_each(|i| w.record(i));
        assert!(w.blocked(3, 1000, 10));
        assert!(!w.blocked(3, 1000, 1002));
    }
}
