//! [`FanoutQueue`] on in-process workers: what hubbub-local and the tests run instead of
//! SQS and the `fanout-worker` Lambda. Same jobs, same [`run_job`], same retry rule; the
//! workers are tokio tasks, at most [`LocalFanoutQueue::workers`] at once, as reserved
//! concurrency bounds the Lambda.
//!
//! Jobs wait in lanes, one per (room, chunk place): a lane is run by one worker at a time,
//! so a connection gets a room's frames in the order they were enqueued, and the jobs that
//! piled up in a lane while its previous round was posted go out together as one coalesced
//! round ([`super::coalesce`]); a lane starts a round at most every [`ROUND_INTERVAL`].
//! Different lanes (other rooms, other chunks of a large room) run in parallel.
//!
//! The backlog is bounded ([`MAX_BACKLOG`]): `enqueue` waits while it is full, which holds
//! the calling route's invocation slot, as a Lambda's concurrency would push back.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore};

use super::coalesce::{coalesce, round_len};
use super::{FanoutJob, FanoutQueue, QueueError, retry_delay, run_job};
use crate::fanout::FanoutReport;
use crate::gateway::ConnectionGateway;
use crate::protocol::RoomId;
use crate::store::MembershipStore;

/// Jobs waiting (not yet taken by a worker) at most. A job is up to [`super::CHUNK_SIZE`]
/// connection ids (~40 KB) plus its frame, so this bounds the queue to tens of MB however
/// fast messages arrive; beyond it, senders wait.
pub const MAX_BACKLOG: usize = 1024;

/// The shortest time between the starts of two rounds of one lane. After a round the lane
/// rests the remainder of this interval, so whatever arrives meanwhile goes out in one frame
/// per recipient instead of a frame per message. A room's first message after a quiet spell
/// (no round in the last interval) goes out at once; in a busy room (more than 40 messages a
/// second) every round carries several messages. 25 ms adds at most that to a message's
/// delivery latency and caps a room at 40 frames a second per recipient, whatever the
/// message rate.
pub const ROUND_INTERVAL: Duration = Duration::from_millis(25);

/// What one worker slot did, for the benchmark and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WorkerStats {
    /// Jobs taken from the queue (a coalesced round counts each job it merged).
    pub jobs: usize,
    pub posts: usize,
    /// Time spent running jobs.
    pub busy: Duration,
}

/// A lane: the jobs of one room's chunk place, posted in order by one worker at a time.
type LaneKey = (String, RoomId, u32);

/// A waiting job, and whether it holds a backlog permit (retries do not: they were
/// admitted once already).
struct Waiting {
    job: FanoutJob,
    permit: bool,
}

#[derive(Default)]
struct Lanes {
    waiting: HashMap<LaneKey, VecDeque<Waiting>>,
    /// Lanes with waiting jobs and no worker, in the order they became ready.
    ready: VecDeque<LaneKey>,
    /// Lanes a worker is running now.
    running: HashSet<LaneKey>,
    /// Worker slots not running.
    free_slots: Vec<usize>,
}

impl Lanes {
    /// Takes the next round of `key`'s jobs (as many as coalesce into one frame) and marks
    /// the lane running.
    fn take_round(&mut self, key: &LaneKey) -> Vec<Waiting> {
        self.running.insert(key.clone());
        let Some(lane) = self.waiting.get_mut(key) else {
            return Vec::new();
        };
        let n = round_len(lane.iter().map(|w| &w.job));
        lane.drain(..n).collect()
    }

    /// A lane's round (and rest) is over: ready again if jobs wait, forgotten otherwise.
    fn release(&mut self, key: &LaneKey) {
        self.running.remove(key);
        if self.waiting.get(key).is_some_and(|l| !l.is_empty()) {
            self.ready.push_back(key.clone());
        } else {
            self.waiting.remove(key);
        }
    }
}

struct Inner {
    connections: Arc<dyn MembershipStore>,
    gateway: Arc<dyn ConnectionGateway>,
    lanes: Mutex<Lanes>,
    backlog: Semaphore,
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
    /// `workers` lanes run at once.
    pub fn new(
        connections: Arc<dyn MembershipStore>,
        gateway: Arc<dyn ConnectionGateway>,
        workers: usize,
    ) -> Self {
        let workers = workers.max(1);
        Self {
            inner: Arc::new(Inner {
                connections,
                gateway,
                lanes: Mutex::new(Lanes {
                    free_slots: (0..workers).rev().collect(),
                    ..Lanes::default()
                }),
                backlog: Semaphore::new(MAX_BACKLOG),
                stats: Mutex::new(vec![WorkerStats::default(); workers]),
                totals: Mutex::new(FanoutReport::default()),
                pending: AtomicUsize::new(0),
                idle: Notify::new(),
            }),
        }
    }

    /// The most lanes that run at once.
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

    /// Jobs waiting for a worker now.
    pub fn backlog(&self) -> usize {
        MAX_BACKLOG - self.inner.backlog.available_permits()
    }

    /// Queues a job in its lane and starts a worker if one is free.
    fn push(&self, job: FanoutJob, permit: bool) {
        let key = (job.endpoint.clone(), job.room.clone(), job.chunk);
        let mut lanes = lock(&self.inner.lanes);
        let lane = lanes.waiting.entry(key.clone()).or_default();
        let was_idle = lane.is_empty();
        lane.push_back(Waiting { job, permit });
        // A lane with jobs is either ready or being run; a running lane is re-queued by its
        // worker when the round ends, so only a lane that was empty becomes ready here.
        if was_idle && !lanes.running.contains(&key) {
            lanes.ready.push_back(key);
        }
        self.start_workers(&mut lanes);
    }

    fn start_workers(&self, lanes: &mut Lanes) {
        while !lanes.ready.is_empty() {
            let Some(slot) = lanes.free_slots.pop() else {
                return;
            };
            let Some(key) = lanes.ready.pop_front() else {
                lanes.free_slots.push(slot);
                return;
            };
            let this = self.clone();
            let round = lanes.take_round(&key);
            tokio::spawn(async move { this.work(slot, key, round).await });
        }
    }

    /// One worker: runs rounds of its lane, then of whichever lane is ready, until none is.
    async fn work(self, slot: usize, mut key: LaneKey, mut round: Vec<Waiting>) {
        loop {
            let started = Instant::now();
            self.run_round(slot, round).await;
            let mut lanes = lock(&self.inner.lanes);
            let since = started.elapsed();
            if since < ROUND_INTERVAL {
                // The lane rests out the interval (still marked running, so `push` leaves
                // it alone): what arrives meanwhile goes out together in its next round.
                // Whether or not jobs are waiting now: at a steady 100 messages a second
                // each round ends before the next message arrives, and a lane that became
                // idle at once would post every message on its own.
                self.ready_later(key.clone(), ROUND_INTERVAL - since);
            } else {
                lanes.release(&key);
            }
            match lanes.ready.pop_front() {
                Some(next) => {
                    round = lanes.take_round(&next);
                    key = next;
                }
                None => {
                    lanes.free_slots.push(slot);
                    return;
                }
            }
        }
    }

    /// Runs one round's jobs, coalesced; re-enqueues what is worth retrying.
    async fn run_round(&self, slot: usize, round: Vec<Waiting>) {
        let inner = &self.inner;
        let taken = round.len();
        let permits = round.iter().filter(|w| w.permit).count();
        inner.backlog.add_permits(permits);
        let started = Instant::now();
        let mut posts = 0;
        let mut report = FanoutReport::default();
        for job in coalesce(round.into_iter().map(|w| w.job).collect()) {
            posts += job.connections.len();
            let outcome = run_job(inner.connections.as_ref(), inner.gateway.as_ref(), job).await;
            let mut r = outcome.report;
            if let Some(retry) = outcome.retry {
                // Counted again when the retry runs.
                r.queued -= retry.connections.len();
                let delay = retry_delay(retry.attempt);
                self.push_later(retry, delay);
            }
            report.add(r);
        }
        {
            let mut stats = lock(&inner.stats);
            if let Some(s) = stats.get_mut(slot) {
                s.jobs += taken;
                s.posts += posts;
                s.busy += started.elapsed();
            }
        }
        lock(&inner.totals).add(report);
        self.pending_done(taken);
    }

    /// Ends a lane's rest after `delay`.
    fn ready_later(&self, key: LaneKey, delay: Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut lanes = lock(&this.inner.lanes);
            lanes.release(&key);
            this.start_workers(&mut lanes);
        });
    }

    /// Queues `job` after `delay`, outside the backlog bound (a retry was admitted once).
    fn push_later(&self, job: FanoutJob, delay: Duration) {
        self.pending_add(1);
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            this.push(job, false);
        });
    }

    fn pending_add(&self, n: usize) {
        self.inner.pending.fetch_add(n, Ordering::AcqRel);
    }

    fn pending_done(&self, n: usize) {
        if self.inner.pending.fetch_sub(n, Ordering::AcqRel) == n {
            self.inner.idle.notify_waiters();
        }
    }
}

#[async_trait]
impl FanoutQueue for LocalFanoutQueue {
    async fn enqueue(&self, jobs: Vec<FanoutJob>) -> Result<(), QueueError> {
        for job in jobs {
            // Waits while the backlog is full; the permit is returned when a worker takes
            // the job. The semaphore is never closed.
            let permit = self
                .inner
                .backlog
                .acquire()
                .await
                .map_err(|e| QueueError::Send(Box::new(e)))?;
            permit.forget();
            self.pending_add(1);
            self.push(job, true);
        }
        Ok(())
    }

    async fn enqueue_delayed(&self, job: FanoutJob, delay: Duration) -> Result<(), QueueError> {
        self.push_later(job, delay);
        Ok(())
    }
}
