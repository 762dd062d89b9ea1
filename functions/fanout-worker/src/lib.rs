//! The fan-out worker: consumes the SQS jobs that large rooms' fan-outs are split into
//! (see [`hubbub_core::queue`]) and posts each chunk; and, from the presence queue, the
//! joins and leaves of a batching window, announced once per room
//! (see [`hubbub_core::presence`]).
//!
//! Failure reporting keeps delivery exactly once. A job that ran is never reported as a
//! batch item failure, because SQS would then redeliver it whole and recipients already
//! posted would get the frame twice; its certainly-failed recipients are re-enqueued as a
//! new, delayed job instead. Only a job that could not run at all (a malformed body) is
//! reported, so that after the queue's `maxReceiveCount` it lands in the dead-letter queue
//! for inspection.
//!
//! For the same reason an invocation must never time out: Lambda would fail the whole batch
//! and SQS would redeliver every job of it, posted or not. Posting stops at a time given by
//! the caller ([`stop_posting_at`]: the invocation's deadline less [`DEADLINE_MARGIN`]); the
//! recipients not reached by then (a slow Management API, a small post budget) are
//! enqueued again as new jobs, posted to by a later invocation, once.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hubbub_core::aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use hubbub_core::config::{ConfigError, FromLookup, LiveConfig, Lookup, vars};
use hubbub_core::error::chain;
use hubbub_core::gateway::ConnectionGateway;
use hubbub_core::presence;
use hubbub_core::queue::coalesce::coalesce;
use hubbub_core::queue::{FanoutJob, FanoutQueue, WorkerMessage, retry_delay, run_job_until};
use hubbub_core::store::MembershipStore;

/// The configuration this function reads at init: the connections table (to remove gone
/// connections), the management API, and its own queue (for retries), which it requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub live: LiveConfig,
    pub queue_url: String,
}

impl FromLookup for Config {
    fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let live = LiveConfig::from_lookup(get)?;
        let queue_url = live
            .gateway
            .fanout_queue_url
            .clone()
            .ok_or(ConfigError::Missing {
                var: vars::FANOUT_QUEUE_URL,
                hint: "the worker re-enqueues failed recipients on its own queue",
            })?;
        Ok(Self { live, queue_url })
    }
}

/// How long before the invocation's deadline the worker stops starting posts. The posts
/// already started must finish first: each has up to 3 attempts of at most 1.5 s plus their
/// backoff (under 5 s in all, `gateway::retry`), then the gone connections are removed and
/// the unreached recipients enqueued (two store or queue calls). 8 s covers that with room
/// to spare and still leaves 22 s of the 30 s timeout for posting.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(8);

/// When to stop starting posts, given the invocation's deadline in Unix ms (Lambda's
/// `Context::deadline`).
pub fn stop_posting_at(deadline_unix_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let left = Duration::from_millis(deadline_unix_ms.saturating_sub(now_ms));
    Instant::now() + left.saturating_sub(DEADLINE_MARGIN)
}

/// What the worker needs.
#[derive(Clone)]
pub struct WorkerDeps {
    pub connections: Arc<dyn MembershipStore>,
    pub gateway: Arc<dyn ConnectionGateway>,
    pub queue: Arc<dyn FanoutQueue>,
}

/// Runs a batch of jobs, one after another: a worker has a fraction of a vCPU, and each job
/// already keeps [`hubbub_core::fanout::FANOUT_CONCURRENCY`] posts in flight. Jobs of one
/// room in the batch are coalesced first ([`hubbub_core::queue::coalesce`]): when a busy
/// room's jobs queue up, each recipient gets one frame for all of its messages. The batch's
/// presence changes are announced together, one frame per room.
///
/// No post starts after `stop` (see the module docs): jobs not started by then and the
/// unreached recipients of the job under way are enqueued again, as they are.
pub async fn handle(deps: &WorkerDeps, ev: SqsEvent, stop: Option<Instant>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let mut presence = Vec::new();
    let mut jobs = Vec::new();
    for record in ev.records {
        let message_id = record.message_id.unwrap_or_default();
        match record.body.as_deref().map(WorkerMessage::from_json) {
            Some(Ok(WorkerMessage::Fanout(job))) => jobs.push(job),
            Some(Ok(WorkerMessage::Presence(change))) => presence.push(change),
            Some(Err(e)) => {
                tracing::error!(message_id, error = %chain(&e), "malformed fan-out job");
                response.add_failure(message_id);
            }
            None => {
                tracing::error!(message_id, "fan-out job without a body");
                response.add_failure(message_id);
            }
        }
    }
    let received = jobs.len();
    let jobs = coalesce(jobs);
    if jobs.len() < received {
        tracing::info!(
            received,
            posted_as = jobs.len(),
            "coalesced a busy room's jobs"
        );
    }
    for job in jobs {
        let (room, attempt, recipients) = (job.room.clone(), job.attempt, job.connections.len());
        if stop.is_some_and(|s| Instant::now() >= s) {
            tracing::warn!(%room, recipients, "deadline near: job passed on unstarted");
            pass_on(deps, job).await;
            continue;
        }
        let started = Instant::now();
        let outcome =
            run_job_until(deps.connections.as_ref(), deps.gateway.as_ref(), job, stop).await;
        let r = outcome.report;
        tracing::info!(
            %room, attempt, recipients, delivered = r.delivered, gone = r.gone,
            failed = r.failed, unknown = r.unknown, retrying = r.queued,
            elapsed_ms = started.elapsed().as_millis() as u64, "fan-out chunk done"
        );
        if let Some(retry) = outcome.retry {
            let delay = retry_delay(retry.attempt);
            if let Err(e) = deps.queue.enqueue_delayed(retry, delay).await {
                // Reporting the record as failed would repost the whole chunk; these
                // recipients catch up by seq instead.
                tracing::error!(%room, error = %chain(&e), "could not re-enqueue failed recipients");
            }
        }
        if let Some(rest) = outcome.rest {
            tracing::warn!(%room, recipients = rest.connections.len(), "deadline near: unreached recipients passed on");
            pass_on(deps, rest).await;
        }
    }
    if !presence.is_empty() {
        // Announced at most once: a failure is logged, not reported, as presence is
        // advisory and a redelivered window would announce its changes twice.
        presence::flush_all(
            deps.connections.as_ref(),
            deps.gateway.as_ref(),
            Some(deps.queue.as_ref()),
            presence,
        )
        .await;
    }
    response
}

/// Enqueues a job none of whose recipients was posted to, to run again at once. A failure is
/// logged, not reported: reporting the record would repost what already went out, so these
/// recipients catch up by seq instead.
async fn pass_on(deps: &WorkerDeps, job: FanoutJob) {
    let room = job.room.clone();
    if let Err(e) = deps.queue.enqueue(vec![job]).await {
        tracing::error!(%room, error = %chain(&e), "could not pass unreached recipients on");
    }
}
