//! The request budget and the rate cap every probe request passes through.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Mutex as AsyncMutex;

use crate::target::Budget;

/// Counts requests against `max_requests` and spaces them at least
/// `1 / max_rps` apart, so no one-second window holds more than `max_rps`.
#[derive(Debug)]
pub struct Governor {
    budget: Budget,
    interval: Duration,
    /// When the last request was let through; held across the wait so two
    /// requests can never be released closer than `interval`.
    last: AsyncMutex<Option<Instant>>,
    sent: Mutex<Vec<Instant>>,
}

/// The budget is spent: the check that wanted this request cannot decide.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("request budget of {max_requests} requests is exhausted")]
pub struct BudgetExhausted {
    pub max_requests: u64,
}

impl Governor {
    pub fn new(budget: Budget) -> Self {
        let interval = Duration::from_secs_f64(1.0 / f64::from(budget.max_rps.max(1)));
        Governor {
            budget,
            interval,
            last: AsyncMutex::new(None),
            sent: Mutex::new(Vec::new()),
        }
    }

    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Waits for the next slot and counts the request, or refuses it when
    /// the budget is spent.
    pub async fn admit(&self) -> Result<(), BudgetExhausted> {
        let mut last = self.last.lock().await;
        if self.sent_count() as u64 >= self.budget.max_requests {
            return Err(BudgetExhausted {
                max_requests: self.budget.max_requests,
            });
        }
        if let Some(previous) = *last {
            let next = previous + self.interval;
            let now = Instant::now();
            if next > now {
                tokio::time::sleep(next - now).await;
            }
        }
        let now = Instant::now();
        *last = Some(now);
        self.sent.lock().expect("send log poisoned").push(now);
        Ok(())
    }

    pub fn sent_count(&self) -> usize {
        self.sent.lock().expect("send log poisoned").len()
    }

    /// The most requests released within any one-second window.
    pub fn peak_per_second(&self) -> usize {
        let sent = self.sent.lock().expect("send log poisoned");
        let mut peak = 0;
        let mut start = 0;
        for (end, t) in sent.iter().enumerate() {
            while *t - sent[start] >= Duration::from_secs(1) {
                start += 1;
            }
            peak = peak.max(end - start + 1);
        }
        peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn budget_is_never_exceeded_and_rate_is_capped() {
        let governor = Governor::new(Budget {
            max_requests: 25,
            max_rps: 20,
            max_body_bytes: 8 * 1024 * 1024,
            max_kept_bytes: None,
        });
        let mut admitted = 0;
        for _ in 0..30 {
            if governor.admit().await.is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 25);
        assert_eq!(governor.sent_count(), 25);
        assert!(
            governor.peak_per_second() <= 20,
            "{}",
            governor.peak_per_second()
        );
    }
}
