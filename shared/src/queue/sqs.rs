//! [`FanoutQueue`] on Amazon SQS: the route enqueues jobs, the `fanout-worker` Lambda
//! consumes them (an event source mapping with partial-batch failure reporting, a
//! dead-letter queue, reserved concurrency; see template.yaml).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use super::{FanoutJob, FanoutQueue, QueueError, WorkerMessageRef};
use crate::presence::{PresenceChange, PresenceSink};

/// SQS takes at most 10 messages per `SendMessageBatch`.
const SQS_BATCH: usize = 10;
/// And at most this many bytes of bodies in one: the limit of a queue created with SQS's
/// default maximum message size (256 KiB; larger sizes are a queue's opt-in), which the
/// template's queues keep. Ten chunk jobs of a very large room's presence come near it.
const SQS_BATCH_BYTES: usize = 256 * 1024;
/// SQS's longest message delay (15 minutes).
const SQS_MAX_DELAY: Duration = Duration::from_secs(900);

/// The SQS adapter.
pub struct SqsFanoutQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsFanoutQueue {
    /// A queue adapter for `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

fn send_error(e: impl std::error::Error + Send + Sync + 'static) -> QueueError {
    QueueError::Send(Box::new(e))
}

#[async_trait]
impl FanoutQueue for SqsFanoutQueue {
    async fn enqueue(&self, jobs: Vec<FanoutJob>) -> Result<(), QueueError> {
        let bodies = jobs
            .iter()
            .map(FanoutJob::to_json)
            .collect::<Result<Vec<_>, _>>()?;
        for batch in batches(&bodies) {
            let mut entries = Vec::with_capacity(batch.len());
            for (i, body) in batch.iter().enumerate() {
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body.as_str())
                        .build()
                        .map_err(send_error)?,
                );
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(send_error)?;
            if let Some(f) = out.failed().first() {
                return Err(QueueError::Send(
                    format!(
                        "SQS refused {} of {} jobs: {}",
                        out.failed().len(),
                        batch.len(),
                        f.code()
                    )
                    .into(),
                ));
            }
        }
        Ok(())
    }

    async fn enqueue_delayed(&self, job: FanoutJob, delay: Duration) -> Result<(), QueueError> {
        let secs = i32::try_from(delay.min(SQS_MAX_DELAY).as_secs()).unwrap_or(0);
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(job.to_json()?)
            .delay_seconds(secs)
            .send()
            .await
            .map_err(send_error)?;
        Ok(())
    }
}

/// `bodies` cut, in order, into runs that one `SendMessageBatch` takes: at most
/// [`SQS_BATCH`] bodies and [`SQS_BATCH_BYTES`] bytes each (a body larger than that alone
/// goes alone, and SQS answers for it).
fn batches(bodies: &[String]) -> Vec<&[String]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, body) in bodies.iter().enumerate() {
        if i > start && (i - start == SQS_BATCH || bytes + body.len() > SQS_BATCH_BYTES) {
            out.push(&bodies[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        out.push(&bodies[start..]);
    }
    out
}

/// [`PresenceSink`] on Amazon SQS: the worker's event source mapping gathers a window of
/// changes (its batching window) into one invocation, which announces them per room.
pub struct SqsPresenceSink {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsPresenceSink {
    /// A sink publishing to `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl PresenceSink for SqsPresenceSink {
    async fn publish(&self, change: PresenceChange) -> Result<(), QueueError> {
        let body = serde_json::to_string(&WorkerMessageRef::Presence(&change))
            .map_err(QueueError::Malformed)?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(send_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(bodies: &[String]) -> Vec<Vec<usize>> {
        batches(bodies)
            .iter()
            .map(|b| b.iter().map(String::len).collect())
            .collect()
    }

    #[test]
    fn batches_hold_at_most_ten_bodies_and_the_byte_limit_in_order() {
        let small: Vec<String> = (0..23).map(|i| i.to_string()).collect();
        assert_eq!(
            batches(&small).iter().map(|b| b.len()).collect::<Vec<_>>(),
            [10, 10, 3]
        );
        let third = "x".repeat(SQS_BATCH_BYTES / 3);
        let big = vec![
            third.clone(),
            third.clone(),
            third.clone(),
            "y".into(),
            third,
        ];
        let n = SQS_BATCH_BYTES / 3;
        assert_eq!(sizes(&big), [vec![n, n, n, 1], vec![n]]);
        let huge = vec!["z".repeat(SQS_BATCH_BYTES + 1), "a".into()];
        assert_eq!(sizes(&huge), [vec![SQS_BATCH_BYTES + 1], vec![1]]);
        assert!(batches(&[]).is_empty());
    }
}
