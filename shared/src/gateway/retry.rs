//! The retry rule of every management call, whatever carries it (the SigV4 client on AWS and
//! against hubbub-local's HTTP API, hubbub-local's in-process posts): one rule, one loop.
//!
//! - An attempt that certainly did not take effect (429 throttled, 500 or 503, a connection
//!   that could not be opened) is retried after a backoff with full jitter, at most
//!   [`MAX_ATTEMPTS`] attempts in all.
//! - An attempt whose outcome is unknown (no answer in time, a connection lost after the
//!   request was written, a 502 or 504 from something between us and the API) is final:
//!   repeating it could deliver a frame twice. The recipient fills the gap from `history`.
//! - 410 Gone and every other refusal are final.
//! - Every attempt, retries included, first takes a token from the instance's
//!   [`PostBudget`] when it has one: a retry is a call like any other on the account's quota.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, RngExt};

use super::budget::PostBudget;
use crate::error::GatewayError;

/// Attempts per call for answers that certainly were not delivered. Three spread over a few
/// hundred ms ride out API Gateway's token-bucket throttling without letting one recipient
/// hold a fan-out slot for long; a recipient still refused after that is left to catch-up
/// (or, in a worker's chunk, re-enqueued with a delay of seconds).
pub const MAX_ATTEMPTS: u32 = 3;
/// The first backoff's ceiling, doubled per attempt: API Gateway refills its buckets
/// continuously, so tens of ms already find tokens again after a short burst.
pub const BACKOFF_BASE: Duration = Duration::from_millis(50);
/// The largest ceiling whatever the attempt: one wait never exceeds a second, so a policy
/// with more attempts still cannot stall a fan-out slot for long. (At [`MAX_ATTEMPTS`] the
/// ceilings are 50 and 100 ms; the cap bounds other policies.)
pub const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// How many attempts, and how long to wait between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: MAX_ATTEMPTS,
            base: BACKOFF_BASE,
            cap: BACKOFF_CAP,
        }
    }
}

impl RetryPolicy {
    /// The longest wait after failed attempt `attempt` (1 for the first):
    /// `base * 2^(attempt - 1)`, at most `cap`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base.saturating_mul(1 << doublings).min(self.cap)
    }

    /// Full jitter: a wait drawn uniformly from `[0, ceiling(attempt)]`, so that the
    /// recipients of one throttled fan-out do not all retry in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.backoff_with(attempt, &mut rand::rng())
    }

    /// [`RetryPolicy::backoff`] with a given random source.
    pub fn backoff_with<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let ceiling = u64::try_from(self.ceiling(attempt).as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rng.random_range(0..=ceiling))
    }
}

/// How one attempt ended.
#[derive(Debug)]
pub enum Attempt<T> {
    Done(T),
    /// Certainly not delivered: worth another attempt.
    Retry(GatewayError),
    /// Final: unknown outcome, gone, or a refusal a retry cannot fix.
    Fail(GatewayError),
}

/// What an error status of the management API means for call `op`.
pub fn refused<T>(op: &'static str, status: u16) -> Attempt<T> {
    match status {
        410 => Attempt::Fail(GatewayError::Gone),
        429 | 500 | 503 => Attempt::Retry(GatewayError::Rejected { op, status }),
        // A gateway or proxy between the caller and the API gave up waiting: the request may
        // have been forwarded and carried out.
        502 | 504 => Attempt::Fail(GatewayError::Unknown { op }),
        _ => Attempt::Fail(GatewayError::Rejected { op, status }),
    }
}

/// The retry loop: a [`RetryPolicy`] and the instance's [`PostBudget`], if any.
#[derive(Debug, Clone, Default)]
pub struct Retrier {
    pub policy: RetryPolicy,
    pub budget: Option<Arc<PostBudget>>,
}

impl Retrier {
    pub fn new(policy: RetryPolicy, budget: Option<Arc<PostBudget>>) -> Self {
        Self { policy, budget }
    }

    /// Runs `attempt` until it is done or fails for good, under the module's rule.
    pub async fn run<T, F, Fut>(&self, op: &'static str, mut attempt: F) -> Result<T, GatewayError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let mut n = 1;
        loop {
            if let Some(budget) = &self.budget {
                budget.acquire().await;
            }
            match attempt().await {
                Attempt::Done(t) => return Ok(t),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(e) if n >= self.policy.max_attempts => return Err(e),
                Attempt::Retry(e) => {
                    let wait = self.policy.backoff(n);
                    tracing::debug!(op, attempt = n, error = %e, wait_ms = wait.as_millis() as u64, "management call not delivered; retrying");
                    tokio::time::sleep(wait).await;
                    n += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use tokio::time::Instant;

    use super::*;
    use crate::gateway::budget::BudgetConfig;

    #[test]
    fn backoff_ceilings_double_from_the_base_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(1), Duration::from_millis(50));
        assert_eq!(p.ceiling(2), Duration::from_millis(100));
        assert_eq!(p.ceiling(3), Duration::from_millis(200));
        assert_eq!(p.ceiling(5), Duration::from_millis(800));
        assert_eq!(p.ceiling(6), BACKOFF_CAP);
        assert_eq!(p.ceiling(u32::MAX), BACKOFF_CAP, "no overflow");
        assert_eq!(p.ceiling(0), p.ceiling(1));
    }

    #[test]
    fn backoff_is_full_jitter_within_the_ceiling() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 1..=8 {
            let ceiling = p.ceiling(attempt);
            let waits: Vec<Duration> = (0..2000)
                .map(|_| p.backoff_with(attempt, &mut rng))
                .collect();
            assert!(waits.iter().all(|w| *w <= ceiling), "attempt {attempt}");
            // Full jitter: the whole range is used, from near zero to near the ceiling,
            // about evenly (mean near half the ceiling).
            let min = waits.iter().min().copied().unwrap_or_default();
            let max = waits.iter().max().copied().unwrap_or_default();
            assert!(min < ceiling / 20, "attempt {attempt}: min {min:?}");
            assert!(max > ceiling * 19 / 20, "attempt {attempt}: max {max:?}");
            let mean = waits.iter().sum::<Duration>() / 2000;
            assert!(
                mean > ceiling * 4 / 10 && mean < ceiling * 6 / 10,
                "attempt {attempt}: mean {mean:?} of {ceiling:?}"
            );
        }
        // The thread's own random source jitters too.
        let samples: std::collections::HashSet<Duration> = (0..50).map(|_| p.backoff(3)).collect();
        assert!(samples.len() > 5, "{samples:?}");
    }

    #[test]
    fn statuses_are_retried_only_when_certainly_not_delivered() {
        for s in [429, 500, 503] {
            assert!(matches!(refused::<()>("post", s), Attempt::Retry(_)), "{s}");
        }
        assert!(matches!(
            refused::<()>("post", 410),
            Attempt::Fail(GatewayError::Gone)
        ));
        for s in [502, 504] {
            assert!(
                matches!(
                    refused::<()>("post", s),
                    Attempt::Fail(GatewayError::Unknown { .. })
                ),
                "{s}"
            );
        }
        for s in [400, 403, 413, 501] {
            assert!(
                matches!(
                    refused::<()>("post", s),
                    Attempt::Fail(GatewayError::Rejected { status, .. }) if status == s
                ),
                "{s}"
            );
        }
    }

    /// Outcomes in order, then success.
    async fn run_with(
        retrier: &Retrier,
        outcomes: &[Option<u16>],
    ) -> (Result<u32, GatewayError>, u32) {
        let calls = AtomicU32::new(0);
        let r = retrier
            .run("post", || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                let outcome = outcomes.get(n as usize).copied().flatten();
                async move {
                    match outcome {
                        Some(0) => Attempt::Fail(GatewayError::Unknown { op: "post" }),
                        Some(status) => refused("post", status),
                        None => Attempt::Done(n + 1),
                    }
                }
            })
            .await;
        (r, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn retrier_retries_certain_failures_up_to_the_bound_and_nothing_else() {
        let r = Retrier::default();
        let (ok, calls) = run_with(&r, &[Some(429), Some(503)]).await;
        assert_eq!((ok.ok(), calls), (Some(3), 3), "delivered on the third");
        let (err, calls) = run_with(&r, &[Some(500); 10]).await;
        assert!(matches!(
            err,
            Err(GatewayError::Rejected { status: 500, .. })
        ));
        assert_eq!(calls, MAX_ATTEMPTS, "bounded");
        // Unknown outcome (0 here) and Gone: one attempt, never repeated.
        let (err, calls) = run_with(&r, &[Some(429), Some(0), None]).await;
        assert!(matches!(err, Err(GatewayError::Unknown { .. })));
        assert_eq!(calls, 2);
        let (err, calls) = run_with(&r, &[Some(410), None]).await;
        assert!(matches!(err, Err(GatewayError::Gone)));
        assert_eq!(calls, 1);
    }

    /// Retries draw from the budget: at 10 calls/s and a burst of 1, a call refused twice
    /// takes three tokens, the last one 200 ms after the first (real time: the lower bounds
    /// are what matters, and they hold on any machine).
    #[tokio::test]
    async fn retries_draw_from_the_budget() {
        let budget = Arc::new(PostBudget::new(BudgetConfig {
            rate_per_sec: 10,
            burst: 1,
        }));
        let r = Retrier::new(
            RetryPolicy {
                base: Duration::ZERO,
                ..RetryPolicy::default()
            },
            Some(budget.clone()),
        );
        let start = Instant::now();
        let (ok, calls) = run_with(&r, &[Some(429), Some(500)]).await;
        assert_eq!((ok.ok(), calls), (Some(3), 3));
        let after_call = start.elapsed();
        assert!(after_call >= Duration::from_millis(200), "{after_call:?}");
        // The next call, whoever makes it, waits its turn behind them.
        budget.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "{:?}",
            start.elapsed()
        );
        // Without a budget the same call does not wait (zero backoff here).
        let free = Retrier::new(r.policy, None);
        let start = Instant::now();
        let _ = run_with(&free, &[Some(429), Some(500)]).await;
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "{:?}",
            start.elapsed()
        );
    }
}
