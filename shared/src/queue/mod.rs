//! Large rooms across workers: the `FanoutQueue` port, the job a worker runs, and the
//! producer side that splits a room into jobs.
//!
//! A fan-out to a room above [`LARGE_ROOM_THRESHOLD`] members is not done by the route
//! that triggered it: the route reads the members page by page and enqueues one
//! [`FanoutJob`] per page of up to [`CHUNK_SIZE`] connections; workers post the chunks in
//! parallel. On AWS the queue is SQS and the workers are the `fanout-worker` Lambda
//! ([`sqs`]); hubbub-local and tests run the very same jobs on in-process workers
//! ([`local`]).
//!
//! Exactly once: a job is never retried as a whole, because some of its posts may have
//! succeeded. A worker re-enqueues, with a delay, only the recipients whose posts certainly
//! failed (throttled or refused after the gateway's own retries); a post whose outcome is
//! unknown is left to catch-up by `seq`. A worker near its deadline stops starting posts
//! ([`run_job_until`]) and enqueues the recipients it did not reach, rather than time out
//! and have the queue redeliver the whole batch.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::fanout::{self, FanoutReport, MEMBER_PAGE_SIZE};
use crate::gateway::{ConnectionGateway, Endpoint};
use crate::presence::PresenceChange;
use crate::protocol::{RoomId, ServerFrame};
use crate::store::MembershipStore;

pub mod coalesce;
pub mod local;
pub mod sqs;

/// Rooms with more members than this hand their fan-out to workers. One member page: a
/// room that fits in one page is posted inline in a few round trips (200 posts at 32 in
/// flight), which is cheaper and faster than a queue hop; beyond it, the route would spend
/// its (and its sender's) time posting, so workers take over.
pub const LARGE_ROOM_THRESHOLD: usize = MEMBER_PAGE_SIZE as usize;
/// Connections per job. A worker posts 1,000 recipients in well under a second at
/// [`fanout::FANOUT_CONCURRENCY`], far inside its timeout (a job cut short by a timeout
/// would be redelivered whole); the job stays ~40 KB, far below SQS's 256 KB message limit.
pub const CHUNK_SIZE: u32 = 1000;
/// Jobs being enqueued at once while [`deliver`] reads the next member pages. Reading a page
/// and enqueueing a job are each a round trip (DynamoDB, SQS); with enqueues in flight during
/// the reads, a large room's hand-off takes about as long as reading its pages rather than
/// reading plus enqueueing. Four keep up with the reads and bound the jobs held beyond the
/// page being read (each ~20-40 KB).
pub const ENQUEUE_CONCURRENCY: usize = 4;
/// Times a chunk's certainly-failed recipients are re-enqueued before they are left to
/// catch-up: enough to ride out a throttling burst, not enough to pile up retries.
pub const MAX_JOB_ATTEMPTS: u32 = 3;
/// Delay before a re-enqueued chunk runs (multiplied by its attempt): API Gateway's
/// throttling is a token bucket, refilled within a second or two.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Failures of the fan-out queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("could not enqueue fan-out jobs")]
    Send(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    #[error("a fan-out job is malformed")]
    Malformed(#[source] serde_json::Error),
}

/// One chunk of a large room's fan-out: post `frame` to each of `connections`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutJob {
    /// The stage's management API.
    pub endpoint: String,
    /// For logs and gone-connection clean-up.
    pub room: RoomId,
    /// The serialised frame, posted as is.
    pub frame: String,
    pub connections: Vec<String>,
    /// 1 for a fresh chunk; higher for re-enqueued recipients.
    pub attempt: u32,
    /// Set when `frame` is one chat message's `message` frame (this `seq`): jobs of a room
    /// that wait together may then be merged into one frame per recipient ([`coalesce`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// The chunk's place in its fan-out (0, 1, ...). Successive messages' chunks with the
    /// same place usually name the same members, so in-process workers queue them in one
    /// lane, where they merge and are posted in order.
    #[serde(default)]
    pub chunk: u32,
}

impl FanoutJob {
    /// A chunk's first attempt: chunk number `chunk` of a fan-out of `frame`, which is the
    /// `message` frame of `seq` when `seq` is set.
    pub fn first(
        endpoint: &Endpoint,
        room: &RoomId,
        frame: &str,
        seq: Option<i64>,
        chunk: u32,
        connections: Vec<String>,
    ) -> Self {
        Self {
            endpoint: endpoint.as_str().to_owned(),
            room: room.clone(),
            frame: frame.to_owned(),
            connections,
            attempt: 1,
            seq,
            chunk,
        }
    }

    /// The job as a queue message body.
    pub fn to_json(&self) -> Result<String, QueueError> {
        serde_json::to_string(&WorkerMessageRef::Fanout(self)).map_err(QueueError::Malformed)
    }

    /// A job from a queue message body.
    pub fn from_json(body: &str) -> Result<Self, QueueError> {
        match WorkerMessage::from_json(body)? {
            WorkerMessage::Fanout(job) => Ok(job),
            WorkerMessage::Presence(_) => Err(QueueError::Malformed(serde::de::Error::custom(
                "a presence change, not a fan-out job",
            ))),
        }
    }
}

/// What the worker's queues carry, tagged with `kind`: one function serves both queues.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum WorkerMessage {
    /// A chunk of a large room's fan-out.
    Fanout(FanoutJob),
    /// A join or leave to announce with its window (see [`crate::presence`]).
    Presence(PresenceChange),
}

impl WorkerMessage {
    /// A message from a queue message body.
    pub fn from_json(body: &str) -> Result<Self, QueueError> {
        serde_json::from_str(body).map_err(QueueError::Malformed)
    }
}

/// [`WorkerMessage`] by reference, for serialising without a copy.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub(crate) enum WorkerMessageRef<'a> {
    Fanout(&'a FanoutJob),
    Presence(&'a PresenceChange),
}

/// Where large-room fan-out jobs go.
#[async_trait]
pub trait FanoutQueue: Send + Sync {
    /// Enqueues jobs to run as soon as a worker is free.
    async fn enqueue(&self, jobs: Vec<FanoutJob>) -> Result<(), QueueError>;

    /// Enqueues one job to run after `delay` (a retry).
    async fn enqueue_delayed(&self, job: FanoutJob, delay: Duration) -> Result<(), QueueError>;
}

/// What running one job did.
#[derive(Debug, Default)]
pub struct JobOutcome {
    pub report: FanoutReport,
    /// The certainly-failed recipients, to re-enqueue after a delay (`None` when there are
    /// none or the job used its last attempt).
    pub retry: Option<FanoutJob>,
    /// The recipients never posted to because the stop time came first, as a job of the
    /// same attempt, to enqueue now (`None` when every recipient was posted to).
    pub rest: Option<FanoutJob>,
}

/// Runs one job: posts the chunk, removes gone connections, and says what to retry.
pub async fn run_job(
    connections: &dyn MembershipStore,
    gateway: &dyn ConnectionGateway,
    job: FanoutJob,
) -> JobOutcome {
    run_job_until(connections, gateway, job, None).await
}

/// [`run_job`] that starts no post once `stop` has come (a worker's deadline): the
/// recipients not reached are handed back in [`JobOutcome::rest`], never posted twice.
pub async fn run_job_until(
    connections: &dyn MembershipStore,
    gateway: &dyn ConnectionGateway,
    job: FanoutJob,
    stop: Option<Instant>,
) -> JobOutcome {
    let endpoint = Endpoint::for_request("", "", Some(&job.endpoint));
    let data = Bytes::from(job.frame.clone());
    let outcome = fanout::post_chunk_until(
        connections,
        gateway,
        &endpoint,
        job.connections,
        &data,
        stop,
    )
    .await;
    let rest = (!outcome.unsent.is_empty()).then(|| FanoutJob {
        endpoint: job.endpoint.clone(),
        room: job.room.clone(),
        frame: job.frame.clone(),
        connections: outcome.unsent,
        attempt: job.attempt,
        seq: job.seq,
        chunk: job.chunk,
    });
    let mut report = outcome.report;
    let retry = if outcome.retryable.is_empty() {
        None
    } else if job.attempt >= MAX_JOB_ATTEMPTS {
        tracing::warn!(room = %job.room, recipients = outcome.retryable.len(), "fan-out retries exhausted; recipients catch up by seq");
        None
    } else {
        // Counted as queued, not failed, until the retry has run.
        report.failed -= outcome.retryable.len();
        report.queued += outcome.retryable.len();
        Some(FanoutJob {
            endpoint: job.endpoint,
            room: job.room,
            frame: job.frame,
            connections: outcome.retryable,
            attempt: job.attempt + 1,
            seq: job.seq,
            chunk: job.chunk,
        })
    };
    if let Some(sample) = &outcome.first_error {
        tracing::warn!(failed = report.failed, unknown = report.unknown, sample_error = %sample, "fan-out chunk had failures");
    }
    JobOutcome {
        report,
        retry,
        rest,
    }
}

/// The delay before attempt `attempt` of a chunk runs.
pub fn retry_delay(attempt: u32) -> Duration {
    RETRY_DELAY.saturating_mul(attempt.saturating_sub(1).max(1))
}

/// Fans `frame` out to `room` except `except`: inline when the room fits in one member
/// page, else as jobs on `queue`, one per page of [`CHUNK_SIZE`] members, enqueued as the
/// pages are read ([`ENQUEUE_CONCURRENCY`] at once, while the next pages are read) so workers
/// start on the first chunk while later pages are still being read. A `message` frame's jobs
/// carry its `seq`, so that a busy room's jobs coalesce. On an error, the jobs already
/// handed to the queue are waited for before it is returned: a hand-off that stops half-way
/// leaves whole jobs behind, never ones whose enqueue nobody saw end.
pub async fn deliver(
    connections: &dyn MembershipStore,
    gateway: &dyn ConnectionGateway,
    queue: &dyn FanoutQueue,
    endpoint: &Endpoint,
    room: &RoomId,
    frame: &ServerFrame,
    except: Option<&str>,
) -> Result<FanoutReport, DeliverError> {
    let text = frame.to_json();
    let first = connections
        .room_member_ids(room, None, MEMBER_PAGE_SIZE)
        .await?;
    if first.next.is_none() {
        let ids = fanout::recipients(first, except);
        let data = Bytes::from(text);
        let outcome = fanout::post_chunk(connections, gateway, endpoint, ids, &data).await;
        return Ok(outcome.report);
    }
    let seq = match frame {
        ServerFrame::Message(m) => Some(m.seq),
        _ => None,
    };
    let mut chunk = 0;
    let mut job = |ids: Vec<String>| {
        let job = FanoutJob::first(endpoint, room, &text, seq, chunk, ids);
        chunk += 1;
        job
    };
    let mut report = FanoutReport::default();
    let mut cursor = first.next.clone();
    let ids = fanout::recipients(first, except);
    report.queued += ids.len();
    let mut sending = FuturesUnordered::new();
    sending.push(queue.enqueue(vec![job(ids)]));
    let handed_off = async {
        while let Some(c) = cursor.take() {
            let read = connections.room_member_ids(room, Some(&c), CHUNK_SIZE);
            let page = while_sending(read, &mut sending).await?;
            cursor = page.next.clone();
            let ids = fanout::recipients(page, except);
            if ids.is_empty() {
                continue;
            }
            while sending.len() >= ENQUEUE_CONCURRENCY {
                if let Some(sent) = sending.next().await {
                    sent?;
                }
            }
            report.queued += ids.len();
            sending.push(queue.enqueue(vec![job(ids)]));
        }
        Ok::<_, DeliverError>(())
    }
    .await;
    let mut sent = Ok(());
    while let Some(r) = sending.next().await {
        if sent.is_ok() {
            sent = r;
        }
    }
    handed_off?;
    sent?;
    Ok(report)
}

/// Awaits `read` while driving the enqueues in flight; the first enqueue that fails ends it.
async fn while_sending<T, F>(
    read: impl Future<Output = Result<T, StoreError>>,
    sending: &mut FuturesUnordered<F>,
) -> Result<T, DeliverError>
where
    F: Future<Output = Result<(), QueueError>>,
{
    let mut read = std::pin::pin!(read);
    loop {
        tokio::select! {
            page = &mut read => return Ok(page?),
            Some(sent) = sending.next(), if !sending.is_empty() => sent?,
        }
    }
}

/// Why a large-room fan-out could not be handed off completely.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("could not read the room's members")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}
