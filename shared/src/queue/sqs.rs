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
        for batch in jobs.chunks(SQS_BATCH) {
            let mut entries = Vec::with_capacity(batch.len());
            for (i, job) in batch.iter().enumerate() {
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(job.to_json()?)
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
