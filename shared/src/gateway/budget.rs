//! The instance's share of the account's `@connections` quota: a token bucket that every
//! management call (retries included) draws from before it is sent.
//!
//! All of an account's Management API calls in a region share one quota: 10,000 requests/s
//! with a burst of 5,000 by default. Nothing coordinates Lambda execution environments, so
//! each keeps to a fixed share of its own, `HUBBUB_POST_RATE_PER_SEC` calls a second with
//! bursts of `HUBBUB_POST_BURST`. The arithmetic (README, "Delivery"): the sustained volume
//! comes from the fan-out worker (large rooms), whose instances are bounded by its reserved
//! concurrency, so its share is the quota divided by that concurrency: 10,000 / 20 = 500/s,
//! and 5,000 / 20 = 250 for the burst. A call that would exceed the share waits for its
//! token instead of being sent and throttled: a 429 costs a round trip and a retry, a wait
//! costs neither.
//!
//! The bucket is a GCRA (a token bucket kept as one timestamp): each call reserves the next
//! slot at once and sleeps until it, so waiting calls go out in order, evenly spaced, with no
//! thundering herd when tokens come back.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{ConfigError, Lookup, number, vars};

/// API Gateway's default account quota on `@connections` calls, requests per second.
pub const ACCOUNT_RATE_PER_SEC: u64 = 10_000;
/// API Gateway's default account burst.
pub const ACCOUNT_BURST: u64 = 5_000;

/// One instance's share of the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetConfig {
    /// Calls per second, sustained.
    pub rate_per_sec: u32,
    /// Calls that may go out at once after a quiet spell.
    pub burst: u32,
}

impl BudgetConfig {
    /// Reads the optional `HUBBUB_POST_RATE_PER_SEC` (1..=10,000: one instance can never use
    /// more than the whole account's quota) and `HUBBUB_POST_BURST` (1..=5,000, the account's
    /// burst; default half a second of the rate, the account's own burst-to-rate ratio).
    /// `None` when the rate is unset: calls are not paced (API Gateway's 429s still are
    /// retried, within the retry rule).
    pub fn from_lookup(get: Lookup<'_>) -> Result<Option<Self>, ConfigError> {
        if get(vars::POST_RATE_PER_SEC).is_none() {
            if get(vars::POST_BURST).is_some() {
                return Err(ConfigError::Invalid {
                    var: vars::POST_BURST,
                    reason: format!("needs {} as well", vars::POST_RATE_PER_SEC),
                });
            }
            return Ok(None);
        }
        let rate = number(get, vars::POST_RATE_PER_SEC, 0, 1, ACCOUNT_RATE_PER_SEC)?;
        let burst = number(get, vars::POST_BURST, (rate / 2).max(1), 1, ACCOUNT_BURST)?;
        // Both are within u32 by the ranges above.
        Ok(Some(Self {
            rate_per_sec: u32::try_from(rate).unwrap_or(u32::MAX),
            burst: u32::try_from(burst).unwrap_or(u32::MAX),
        }))
    }

    /// `rate_per_sec` with the default burst (half a second of it, at least 1).
    pub fn with_rate(rate_per_sec: u32) -> Self {
        Self {
            rate_per_sec: rate_per_sec.max(1),
            burst: (rate_per_sec / 2).max(1),
        }
    }
}

/// The token bucket of one instance.
#[derive(Debug)]
pub struct PostBudget {
    config: BudgetConfig,
    /// Time between two calls at the sustained rate.
    interval: Duration,
    /// How far ahead of the schedule calls may run: `burst - 1` intervals.
    tolerance: Duration,
    /// The theoretical arrival time of the next call (GCRA's TAT); `None` before the first.
    /// A std Mutex: held for a few arithmetic operations, never across an `.await`.
    next: Mutex<Option<Instant>>,
}

impl PostBudget {
    pub fn new(config: BudgetConfig) -> Self {
        let rate = config.rate_per_sec.max(1);
        let interval = Duration::from_secs(1) / rate;
        Self {
            config,
            interval,
            tolerance: interval * config.burst.max(1).saturating_sub(1),
            next: Mutex::new(None),
        }
    }

    /// The configuration it was made with.
    pub fn config(&self) -> BudgetConfig {
        self.config
    }

    /// Waits until one more call fits the budget, and takes its token. Dropping the future
    /// while it waits gives the reserved slot up to nobody: the budget errs on the side of
    /// fewer calls.
    pub async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Reserves the next slot at `now`; how long until it comes.
    fn reserve(&self, now: Instant) -> Duration {
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tat = next.map_or(now, |t| t.max(now));
        let allowed_at = tat.checked_sub(self.tolerance).unwrap_or(now);
        *next = Some(tat + self.interval);
        allowed_at.saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::lookup;

    #[test]
    fn budget_is_read_from_the_environment_or_absent() {
        assert_eq!(BudgetConfig::from_lookup(&lookup(&[])).unwrap(), None);
        assert_eq!(
            BudgetConfig::from_lookup(&lookup(&[("HUBBUB_POST_RATE_PER_SEC", "500")])).unwrap(),
            Some(BudgetConfig {
                rate_per_sec: 500,
                burst: 250
            })
        );
        assert_eq!(
            BudgetConfig::from_lookup(&lookup(&[
                ("HUBBUB_POST_RATE_PER_SEC", "1"),
                ("HUBBUB_POST_BURST", "7")
            ]))
            .unwrap(),
            Some(BudgetConfig {
                rate_per_sec: 1,
                burst: 7
            })
        );
        for bad in [
            &[("HUBBUB_POST_RATE_PER_SEC", "0")][..],
            &[("HUBBUB_POST_RATE_PER_SEC", "10001")],
            &[("HUBBUB_POST_RATE_PER_SEC", "fast")],
            &[
                ("HUBBUB_POST_RATE_PER_SEC", "100"),
                ("HUBBUB_POST_BURST", "0"),
            ],
            &[
                ("HUBBUB_POST_RATE_PER_SEC", "100"),
                ("HUBBUB_POST_BURST", "5001"),
            ],
            &[("HUBBUB_POST_BURST", "10")],
        ] {
            assert!(BudgetConfig::from_lookup(&lookup(bad)).is_err(), "{bad:?}");
        }
    }

    /// The burst goes out at once, then calls are spaced at the rate: 1,000 calls at 100/s
    /// with a burst of 10 take (1,000 - 10) / 100 = 9.9 s, never less. (The clock is
    /// explicit: `reserve` is the whole arithmetic, `acquire` only sleeps its answer.)
    #[test]
    fn budget_lets_the_burst_through_then_paces_at_the_rate() {
        let budget = PostBudget::new(BudgetConfig {
            rate_per_sec: 100,
            burst: 10,
        });
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        for _ in 0..10 {
            assert_eq!(
                budget.reserve(t0),
                Duration::ZERO,
                "the burst does not wait"
            );
        }
        assert_eq!(budget.reserve(t0), ms(10), "then one interval");
        // Callers that wait out their turn and come back get the next slots in order.
        let mut now = t0 + ms(10);
        for _ in 11..1000 {
            now += budget.reserve(now);
        }
        assert_eq!(now - t0, ms(9900));

        // After a quiet spell the bucket is full again, but never holds more than the burst.
        let rested = now + Duration::from_secs(60);
        let waits: Vec<Duration> = (0..12).map(|_| budget.reserve(rested)).collect();
        assert_eq!(&waits[..10], &[Duration::ZERO; 10]);
        assert_eq!(&waits[10..], &[ms(10), ms(20)]);

        // A burst of 1 spaces every call.
        let strict = PostBudget::new(BudgetConfig {
            rate_per_sec: 4,
            burst: 1,
        });
        let waits: Vec<Duration> = (0..3).map(|_| strict.reserve(t0)).collect();
        assert_eq!(waits, [Duration::ZERO, ms(250), ms(500)]);
    }

    /// Concurrent callers share one bucket: 10 tasks taking 5 tokens each at 1,000/s with a
    /// burst of 1 take at least 49 intervals in all, on the real clock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn budget_is_shared_by_concurrent_callers() {
        let budget = Arc::new(PostBudget::new(BudgetConfig {
            rate_per_sec: 1000,
            burst: 1,
        }));
        let start = std::time::Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let b = budget.clone();
                tokio::spawn(async move {
                    for _ in 0..5 {
                        b.acquire().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(49), "{elapsed:?}");
        // Generous: only a stalled machine takes this long, while an unshared bucket per
        // task would have finished in 4 ms.
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    }
}
