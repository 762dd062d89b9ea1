//! [`FanoutQueue`] on in-process workers: what hubbub-local and the tests run instead of
//! SQS and the `fanout-worker` Lambda. Same jobs, same [`run_job`], same retry rule; the
//! workers are tokio tasks, at most [`LocalFanoutQueue::workers`] at once, as reserved
//! concurrency bounds the Lambda.
//!
//! Jobs wait in lanes, one per (room, chunk place, part): a job's recipients are spread over
//! [`LANES_PER_CHUNK`] parts by a hash of their connection id, so a connection is always in
//! the same lane of a room's chunk place. A lane is run by one worker at a time, so a
//! connection gets a room's frames in the order they were enqueued, and the jobs that piled
//! up in a lane while its previous round was posted go out together as one coalesced round
//! ([`super::coalesce`]); a busy lane starts a round every [`ROUND_INTERVAL`], at its own
//! phase of that interval ([`Phase`]), so a busy room's parts post in turn rather than all
//! at once. Different lanes (other rooms, chunks, parts) run in parallel.
//!
//! The backlog is bounded ([`MAX_BACKLOG`]): `enqueue` waits while it is full, which holds
//! the calling route's invocation slot, as a Lambda's concurrency would push back.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
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

/// The time between the starts of two rounds of a busy lane. After a round the lane rests
/// until its next start ([`Phase::next_round`]: the point of its phase nearest to one
/// interval after the round's start, so never less than half an interval), and whatever
/// arrives meanwhile goes out in one frame per recipient instead of a frame per message. A
/// room's first message after a quiet spell goes out at once; in a busy room (more than 40
/// messages a second) every round carries several messages. 25 ms adds at most that (plus
/// half of it once, while a lane falls into its phase) to a message's delivery latency and
/// holds a busy room at 40 frames a second per recipient, whatever the message rate.
pub const ROUND_INTERVAL: Duration = Duration::from_millis(25);

/// Lanes a chunk's recipients are spread over. One lane's round wakes all of its
/// recipients' connections at once; a 1,000-member room in one lane put 1,000 socket writes
/// (and, on one machine, the clients' reads) into the same few milliseconds every interval,
/// and every sender's ack and every later recipient queued behind that burst. Eight parts at
/// phases an eighth of an interval apart turn it into eight bursts of ~125; more parts would
/// only add jobs per message (each part is a job of its own) for bursts that are already
/// short.
pub const LANES_PER_CHUNK: u32 = 8;

/// What one worker slot did, for the benchmark and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WorkerStats {
    /// Jobs taken from the queue (a coalesced round counts each job it merged).
    pub jobs: usize,
    pub posts: usize,
    /// Time spent running jobs.
    pub busy: Duration,
}

/// A lane: the jobs of one part of one room's chunk place (endpoint, room, chunk, part),
/// posted in order by one worker at a time.
type LaneKey = (String, RoomId, u32, u32);

/// The part of a chunk's lanes `connection_id` is in: the same for every job, so its frames
/// stay in order.
fn part_of(connection_id: &str) -> u32 {
    let mut h = DefaultHasher::new();
    connection_id.hash(&mut h);
    // The remainder is below LANES_PER_CHUNK, so it fits.
    u32::try_from(h.finish() % u64::from(LANES_PER_CHUNK)).unwrap_or_default()
}

/// `job` split into its parts' jobs, with their parts (parts no recipient is in are left out).
fn split(job: FanoutJob) -> Vec<(u32, FanoutJob)> {
    let mut parts: Vec<Vec<String>> = vec![Vec::new(); LANES_PER_CHUNK as usize];
    let FanoutJob {
        endpoint,
        room,
        frame,
        connections,
        attempt,
        seq,
        chunk,
    } = job;
    for id in connections {
        parts[part_of(&id) as usize].push(id);
    }
    (0..LANES_PER_CHUNK)
        .zip(parts)
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(part, connections)| {
            let job = FanoutJob {
                endpoint: endpoint.clone(),
                room: room.clone(),
                frame: frame.clone(),
                connections,
                attempt,
                seq,
                chunk,
            };
            (part, job)
        })
        .collect()
}

/// When a busy lane starts its rounds: every [`ROUND_INTERVAL`] at its own offset into
/// the interval. A chunk's parts are an equal share of the interval apart; where a room's
/// chunk place starts is drawn from a hash of it, so the lanes of several busy rooms spread
/// over the interval too.
struct Phase {
    offset: Duration,
}

impl Phase {
    fn of(key: &LaneKey) -> Self {
        let (endpoint, room, chunk, part) = key;
        let mut h = DefaultHasher::new();
        (endpoint, room, chunk).hash(&mut h);
        let interval = interval_micros();
        let share = interval / u64::from(LANES_PER_CHUNK);
        Self {
            offset: Duration::from_micros(
                (h.finish() % interval + u64::from(*part) * share) % interval,
            ),
        }
    }

    /// The lane's next round after one that started at `started` and ended at `ended`: of
    /// the lane's points (`epoch` + offset + n intervals), the one nearest to `started` + one
    /// interval; if that has passed already (the round was slowed, e.g. behind the writes it
    /// caused), the lane's next point, so that it stays in its turn and a round it started
    /// at once would not carry a lone message; but a round that took longer than an interval
    /// (the lane is saturated: what waits has piled up anyway) is followed at once.
    fn next_round(&self, epoch: Instant, started: Instant, ended: Instant) -> Instant {
        let target = started + ROUND_INTERVAL;
        let interval = interval_micros();
        let past = self.past(epoch, target);
        let nearest = if past <= interval / 2 {
            target - Duration::from_micros(past)
        } else {
            target + Duration::from_micros(interval - past)
        };
        if nearest > ended || ended.saturating_duration_since(started) >= ROUND_INTERVAL {
            nearest
        } else {
            ended + Duration::from_micros(interval - self.past(epoch, ended))
        }
    }

    /// How far `t` is past the lane's last point, in µs (below one interval).
    fn past(&self, epoch: Instant, t: Instant) -> u64 {
        let interval = interval_micros();
        let since =
            u64::try_from(t.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX);
        let offset = u64::try_from(self.offset.as_micros()).unwrap_or_default();
        (since % interval + interval - offset) % interval
    }
}

fn interval_micros() -> u64 {
    u64::try_from(ROUND_INTERVAL.as_micros()).unwrap_or(u64::MAX)
}

/// A waiting job (one part of an enqueued job, or several merged into one round), with what
/// it holds: backlog permits (retries hold none: they were admitted once already), jobs taken
/// (one part of each enqueued job counts it) and parts pending.
struct Waiting {
    job: FanoutJob,
    permits: usize,
    jobs: usize,
    parts: usize,
}

impl Waiting {
    /// Takes `other` (a sibling part of the same job: same frame, disjoint recipients) into
    /// this one round.
    fn absorb(&mut self, other: Waiting) {
        self.job.connections.extend(other.job.connections);
        self.job.attempt = self.job.attempt.max(other.job.attempt);
        self.permits += other.permits;
        self.jobs += other.jobs;
        self.parts += other.parts;
    }
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
    /// the lane running, with the lanes whose rounds joined it.
    ///
    /// A round of one job also takes the ready sibling lanes (the chunk place's other parts)
    /// whose next job has the same frame, as one job: a one-off fan-out to a huge room
    /// (every part ready at once with one job) then posts chunks of [`super::CHUNK_SIZE`]
    /// rather than eight times as many small jobs, each ending with its posts in flight
    /// draining (measured: 100,000 members in 4.8 s instead of 3.0 s). The parts' recipients
    /// are disjoint, so the merged job still posts each once; each lane then rests to its
    /// own phase, so a busy room's parts still post in turn.
    fn take_round(&mut self, key: &LaneKey) -> (Vec<LaneKey>, Vec<Waiting>) {
        self.running.insert(key.clone());
        let mut keys = vec![key.clone()];
        let Some(lane) = self.waiting.get_mut(key) else {
            return (keys, Vec::new());
        };
        let n = round_len(lane.iter().map(|w| &w.job));
        let mut round: Vec<Waiting> = lane.drain(..n).collect();
        if let [only] = round.as_mut_slice() {
            let siblings: Vec<LaneKey> = self
                .ready
                .iter()
                .filter(|k| {
                    (&k.0, &k.1, k.2) == (&key.0, &key.1, key.2)
                        && self
                            .waiting
                            .get(*k)
                            .and_then(VecDeque::front)
                            .is_some_and(|w| w.job.frame == only.job.frame)
                })
                .cloned()
                .collect();
            self.ready.retain(|k| !siblings.contains(k));
            for k in siblings {
                if let Some(w) = self.waiting.get_mut(&k).and_then(VecDeque::pop_front) {
                    only.absorb(w);
                }
                self.running.insert(k.clone());
                keys.push(k);
            }
        }
        (keys, round)
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
    /// Parts of jobs enqueued and not finished (delayed retries included).
    pending: AtomicUsize,
    idle: Notify,
    /// Where the lanes' phases count from.
    epoch: Instant,
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
                epoch: Instant::now(),
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

    /// Queues a job's parts in their lanes and starts workers if any are free. The caller
    /// counted the job as pending once; each part is pending on its own.
    fn push(&self, job: FanoutJob, permit: bool) {
        let parts = split(job);
        if parts.is_empty() {
            if permit {
                self.inner.backlog.add_permits(1);
            }
            self.pending_done(1);
            return;
        }
        self.pending_add(parts.len() - 1);
        let mut lanes = lock(&self.inner.lanes);
        for (i, (part, job)) in parts.into_iter().enumerate() {
            let key = (job.endpoint.clone(), job.room.clone(), job.chunk, part);
            let lane = lanes.waiting.entry(key.clone()).or_default();
            let was_idle = lane.is_empty();
            // The job's permit and its count go with its first part.
            lane.push_back(Waiting {
                job,
                permits: usize::from(permit && i == 0),
                jobs: usize::from(i == 0),
                parts: 1,
            });
            // A lane with jobs is either ready or being run; a running lane is re-queued by
            // its worker when the round ends, so only a lane that was empty becomes ready here.
            if was_idle && !lanes.running.contains(&key) {
                lanes.ready.push_back(key);
            }
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
            let (keys, round) = lanes.take_round(&key);
            tokio::spawn(async move { this.work(slot, keys, round).await });
        }
    }

    /// One worker: runs rounds of its lane, then of whichever lane is ready, until none is.
    async fn work(self, slot: usize, mut keys: Vec<LaneKey>, mut round: Vec<Waiting>) {
        loop {
            let started = Instant::now();
            self.run_round(slot, round).await;
            let mut lanes = lock(&self.inner.lanes);
            let now = Instant::now();
            for key in keys {
                let next = Phase::of(&key).next_round(self.inner.epoch, started, now);
                if next > now {
                    // The lane rests until its next round (still marked running, so `push`
                    // leaves it alone): what arrives meanwhile goes out together then.
                    // Whether or not jobs are waiting now: at a steady 100 messages a second
                    // each round ends before the next message arrives, and a lane that became
                    // idle at once would post every message on its own.
                    self.ready_later(key, next - now);
                } else {
                    lanes.release(&key);
                }
            }
            match lanes.ready.pop_front() {
                Some(next) => {
                    (keys, round) = lanes.take_round(&next);
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
        let taken = round.iter().map(|w| w.parts).sum();
        let jobs = round.iter().map(|w| w.jobs).sum::<usize>();
        let permits = round.iter().map(|w| w.permits).sum();
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
                s.jobs += jobs;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn job(ids: &[String]) -> FanoutJob {
        FanoutJob {
            endpoint: "http://e/s".into(),
            room: RoomId::parse("r").expect("room"),
            frame: r#"{"type":"pong"}"#.into(),
            connections: ids.to_vec(),
            attempt: 2,
            seq: Some(7),
            chunk: 3,
        }
    }

    #[test]
    fn a_job_splits_into_parts_that_keep_each_connection_in_one_lane() {
        let ids: Vec<String> = (0..1000).map(|i| format!("conn-{i}=")).collect();
        let parts = split(job(&ids));
        assert_eq!(
            parts.len(),
            LANES_PER_CHUNK as usize,
            "1,000 ids fill every part"
        );
        let mut seen: Vec<String> = Vec::new();
        for (part, p) in &parts {
            assert_eq!((p.attempt, p.seq, p.chunk), (2, Some(7), 3));
            assert!(
                p.connections.len() > 60,
                "roughly even: {}",
                p.connections.len()
            );
            for id in &p.connections {
                assert_eq!(part_of(id), *part);
            }
            seen.extend(p.connections.iter().cloned());
        }
        seen.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(seen, want, "every recipient in exactly one part");
        // The same connection lands in the same part in a later job with other members.
        let later = split(job(&ids[..3]));
        for (part, p) in later {
            assert!(p.connections.iter().all(|id| part_of(id) == part));
        }
        assert!(split(job(&[])).is_empty());
    }

    #[test]
    fn a_busy_lane_rounds_once_an_interval_at_its_own_phase() {
        let room = RoomId::parse("r").expect("room");
        let key = |part| ("e".to_owned(), room.clone(), 0, part);
        let epoch = Instant::now();
        let offsets: Vec<Duration> = (0..LANES_PER_CHUNK)
            .map(|p| Phase::of(&key(p)).offset)
            .collect();
        let share = ROUND_INTERVAL / LANES_PER_CHUNK;
        for (p, o) in offsets.iter().enumerate() {
            assert!(*o < ROUND_INTERVAL);
            let next = offsets[(p + 1) % offsets.len()];
            let gap = (next + ROUND_INTERVAL - *o).as_micros() % ROUND_INTERVAL.as_micros();
            assert_eq!(gap, share.as_micros(), "parts an equal share apart");
        }
        let phase = Phase::of(&key(5));
        // A first round at an arbitrary time: the next falls on the lane's phase, at least
        // half and at most one and a half intervals later.
        let started = epoch + Duration::from_micros(123_457);
        let next = phase.next_round(epoch, started, started + Duration::from_millis(1));
        let gap = next - started;
        assert!(
            gap >= ROUND_INTERVAL / 2 && gap <= ROUND_INTERVAL * 3 / 2,
            "{gap:?}"
        );
        let on_phase = |t: Instant| (t - epoch).as_micros() % ROUND_INTERVAL.as_micros();
        assert_eq!(on_phase(next), phase.offset.as_micros());
        // From then on, exactly one interval apart.
        let quick = Duration::from_millis(2);
        assert_eq!(
            phase.next_round(epoch, next, next + quick),
            next + ROUND_INTERVAL
        );
        // A round started off its phase (0.3 of an interval past a point) whose nearest next
        // point (0.7 of an interval later) passed while it ran, shorter than an interval:
        // the lane waits for its point after that rather than starting at once.
        let off = next + ROUND_INTERVAL * 3 / 10;
        let after = phase.next_round(epoch, off, off + ROUND_INTERVAL * 8 / 10);
        assert_eq!(
            after,
            next + ROUND_INTERVAL * 2,
            "the next point after it ended"
        );
        // A round longer than an interval: the next may start at once.
        let long = off + ROUND_INTERVAL * 3;
        assert!(phase.next_round(epoch, off, long) <= long);
    }
}
