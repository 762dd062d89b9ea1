//! Fan-out: deliver one frame to every live connection of a room.
//!
//! Members are read page by page (a Query on the room, never a scan); each page is posted with
//! bounded concurrency; a recipient that answers 410 Gone is removed from the store. The frame
//! is serialised once for the whole room.

use futures::StreamExt;

use crate::error::{GatewayError, StoreError, chain};
use crate::gateway::{ConnectionGateway, Endpoint};
use crate::protocol::{RoomId, ServerFrame};
use crate::store::ConnectionStore;

/// Posts in flight at once. Each post is one HTTPS request to the management API; 32 keeps a
/// room of a thousand members to a few dozen round-trip times, while staying far below the
/// account's shared 10,000 requests/s API Gateway quota even with many senders, and within
/// what a small (512 MB, fractional vCPU) Lambda can drive without TLS work starving it.
pub const FANOUT_CONCURRENCY: usize = 32;

/// Members read per store page. Larger than the concurrency so posting never waits on a page
/// boundary for long, small enough that one DynamoDB page stays far below its 1 MB cap.
pub const MEMBER_PAGE_SIZE: u32 = 200;

/// What a fan-out did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanoutReport {
    /// Posts that succeeded.
    pub delivered: usize,
    /// Recipients that were gone (and were removed).
    pub gone: usize,
    /// Posts that failed otherwise (the message stays in history for catch-up).
    pub failed: usize,
}

/// Sends `frame` to every member of `room` except the connection `except`.
///
/// Fails only when the member list cannot be read; delivery failures are counted, logged and
/// left to history catch-up, because the message is already committed.
pub async fn broadcast(
    connections: &dyn ConnectionStore,
    gateway: &dyn ConnectionGateway,
    endpoint: &Endpoint,
    room: &RoomId,
    frame: &ServerFrame,
    except: Option<&str>,
) -> Result<FanoutReport, StoreError> {
    let data = frame.to_json().into_bytes();
    let mut report = FanoutReport::default();
    let mut cursor: Option<String> = None;
    loop {
        let page = connections
            .room_members(room, cursor.as_deref(), MEMBER_PAGE_SIZE)
            .await?;
        let outcomes: Vec<(String, Result<(), GatewayError>)> = futures::stream::iter(
            page.members
                .into_iter()
                .filter(|m| Some(m.connection_id.as_str()) != except),
        )
        .map(|m| {
            let data = &data;
            async move {
                let r = gateway.post(endpoint, &m.connection_id, data).await;
                (m.connection_id, r)
            }
        })
        .buffer_unordered(FANOUT_CONCURRENCY)
        .collect()
        .await;
        for (connection_id, outcome) in outcomes {
            match outcome {
                Ok(()) => report.delivered += 1,
                Err(GatewayError::Gone) => {
                    report.gone += 1;
                    tracing::info!(connection_id, %room, "recipient gone; removing it");
                    if let Err(e) = connections.remove_connection(&connection_id).await {
                        // The TTL removes it eventually; the next fan-out retries.
                        tracing::warn!(connection_id, error = %chain(&e), "could not remove gone connection");
                    }
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(connection_id, %room, error = %chain(&e), "delivery failed");
                }
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(report)
}
