//! [`FanoutQueue`] on in-process workers: what hubbub-local and the tests run instead of
//! SQS and the `fanout-worker` Lambda. Same jobs, same [`run_job`], same retry rule; the
//! workers are tokio tasks, at most [`LocalFanoutQueue::workers`] at once, as reserved
//! concurrency bounds the Lambda.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore};

use super::{FanoutJob, FanoutQueue, QueueError, retry_delay, run_job};
use crate::fanout::FanoutReport;
use crate::gateway::ConnectionGateway;
use crate::store::ConnectionStore;

/// What one worker slot did, for the benchmark and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WorkerStats {
    pub jobs: usize,
    pub posts: usize,
    /// Time spent running jobs.
    pub busy: Duration,
}

struct Inner {
    connections: Arc<dyn ConnectionStore>,
    gateway: Arc<dyn ConnectionGateway>,
    permits: Semaphore,
    /// Free worker slot ids; a task holding a permit always finds one.
    slots: Mutex<Vec<usize>>,
    stats: Mutex<Vec<WorkerStats>>,
    totals: Mutex<FanoutReport>,
    /// Jobs enqueued and not finished (delayed retries included).
    pending: AtomicUsize,
    idle: Notify,
}

/// In-process fan-out workers.
#[derive(Clone)]
pub struct LocalFanoutQueue {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LocalFanoutQueue {
    /// `workers` jobs run at once.
    pub fn new(
        connections: Arc<dyn ConnectionStore>,
        gateway: Arc<dyn ConnectionGateway>,
        workers: usize,
    ) -> Self {
        let workers = workers.max(1);
        Self {
            inner: Arc::new(Inner {
                connections,
                gateway,
                permits: Semaphore::new(workers),
                slots: Mutex::new((0..workers).collect()),
                stats: Mutex::new(vec![WorkerStats::default(); workers]),
                totals: Mutex::new(FanoutReport::default()),
                pending: AtomicUsize::new(0),
                idle: Notify::new(),
            }),
        }
    }

    /// The most jobs that run at once.
    pub fn workers(&self) -> usize {
        lock(&self.inner.stats).len()
    }

    /// Waits until every enqueued job (and its retries) has run.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.inner.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Per worker slot: jobs, posts and busy time so far.
    pub fn stats(&self) -> Vec<WorkerStats> {
        lock(&self.inner.stats).clone()
    }

    /// What every job so far did, together.
    pub fn totals(&self) -> FanoutReport {
        *lock(&self.inner.totals)
    }

    fn spawn(&self, job: FanoutJob, delay: Duration) {
        self.inner.pending.fetch_add(1, Ordering::AcqRel);
        let this = self.clone();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            this.run(job).await;
            if this.inner.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                this.inner.idle.notify_waiters();
            }
        });
    }

    async fn run(&self, job: FanoutJob) {
        let inner = &self.inner;
        let Ok(_permit) = inner.permits.acquire().await else {
            return;
        };
        let slot = lock(&inner.slots).pop().unwrap_or(0);
        let started = Instant::now();
        let posts = job.connections.len();
        let outcome = run_job(inner.connections.as_ref(), inner.gateway.as_ref(), job).await;
        {
            let mut stats = lock(&inner.stats);
            if let Some(s) = stats.get_mut(slot) {
                s.jobs += 1;
                s.posts += posts;
                s.busy += started.elapsed();
            }
        }
        lock(&inner.slots).push(slot);
        let mut report = outcome.report;
        if let Some(retry) = outcome.retry {
            // Counted again when the retry runs.
            report.queued -= retry.connections.len();
            let delay = retry_delay(retry.attempt);
            self.spawn(retry, delay);
        }
        lock(&inner.totals).add(report);
    }
}

#[async_trait]
impl FanoutQueue for LocalFanoutQueue {
    async fn enqueue(&self, jobs: Vec<FanoutJob>) -> Result<(), QueueError> {
        for job in jobs {
            self.spawn(job, Duration::ZERO);
        }
        Ok(())
    }

    async fn enqueue_delayed(&self, job: FanoutJob, delay: Duration) -> Result<(), QueueError> {
        self.spawn(job, delay);
        Ok(())
    }
}
