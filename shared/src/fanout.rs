//! Fan-out: deliver one frame to every live connection of a room.
//!
//! Members are read page by page (a Query on the room, never a scan) while the posts of
//! earlier pages are in flight, so posting never stalls on a page boundary. The frame is
//! serialised once for the whole room and shared by every post. Recipients that answer
//! 410 Gone are removed after the posts, together, and the whole fan-out logs one line.
//!
//! [`post_chunk`] is the same engine over an explicit list of connection ids: what a
//! fan-out worker runs for one chunk of a large room. [`post_chunk_until`] also stops
//! starting posts at a given time (a worker's deadline) and hands back the recipients it
//! never posted to, so that they can be passed on instead of being posted twice.

use std::time::Instant;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::error::{GatewayError, StoreError, chain};
use crate::gateway::{ConnectionGateway, Endpoint};
use crate::protocol::{RoomId, ServerFrame};
use crate::store::{MemberIdPage, MembershipStore};

/// Posts in flight at once per fan-out. Each post is one HTTPS request to the management
/// API; 32 keeps a room of a thousand members to a few dozen round-trip times, while a small
/// (512 MB, a third of a vCPU) Lambda can still drive them: beyond this the CPU, not the
/// network round trip, bounds the rate, and more sockets only add TLS handshakes.
pub const FANOUT_CONCURRENCY: usize = 32;

/// Members read per store page. Larger than the concurrency so a page lasts several
/// round trips while the next one is read; small enough that one DynamoDB page stays far
/// below its 1 MB cap.
pub const MEMBER_PAGE_SIZE: u32 = 200;

/// Gone connections removed at once after a fan-out: store writes are cheap next to posts,
/// and a handful in parallel clears a burst of stale members without flooding the table.
const GONE_REMOVAL_CONCURRENCY: usize = 8;

/// What a fan-out did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanoutReport {
    /// Posts that succeeded.
    pub delivered: usize,
    /// Recipients that were gone (and were removed).
    pub gone: usize,
    /// Posts that certainly failed (throttled or refused after retries, unreachable): the
    /// recipient catches up by `seq`.
    pub failed: usize,
    /// Posts whose outcome is unknown (timed out): never retried, so never duplicated.
    pub unknown: usize,
    /// Recipients handed to fan-out workers (large rooms) or re-enqueued for a retry.
    pub queued: usize,
}

impl FanoutReport {
    /// Adds another report's counts.
    pub fn add(&mut self, other: FanoutReport) {
        self.delivered += other.delivered;
        self.gone += other.gone;
        self.failed += other.failed;
        self.unknown += other.unknown;
        self.queued += other.queued;
    }
}

/// The outcome of posting to a set of recipients: the counts and who was gone.
#[derive(Debug, Default)]
pub struct ChunkOutcome {
    pub report: FanoutReport,
    /// Connections that answered 410, to remove from the store ([`post_chunk`] removes
    /// them itself and leaves this empty).
    pub gone: Vec<String>,
    /// Connections whose post certainly did not arrive (throttled or refused after the
    /// gateway's retries, unreachable): safe to try again later.
    pub retryable: Vec<String>,
    /// Connections never posted to because the stop time came first: certainly not
    /// delivered, and not yet attempted.
    pub unsent: Vec<String>,
    /// The first failure, kept as a sample for the fan-out's single log line.
    pub first_error: Option<String>,
}

impl ChunkOutcome {
    fn record(&mut self, connection_id: String, outcome: Result<(), GatewayError>) {
        match outcome {
            Ok(()) => self.report.delivered += 1,
            Err(GatewayError::Gone) => {
                self.report.gone += 1;
                self.gone.push(connection_id);
            }
            Err(e) => {
                match &e {
                    GatewayError::Unknown { .. } => self.report.unknown += 1,
                    GatewayError::Rejected {
                        status: 429 | 500 | 503,
                        ..
                    }
                    | GatewayError::Failed { .. } => {
                        self.report.failed += 1;
                        self.retryable.push(connection_id);
                    }
                    _ => self.report.failed += 1,
                }
                if self.first_error.is_none() {
                    self.first_error = Some(chain(&e));
                }
            }
        }
    }
}

/// Posts `data` to every connection of `recipients`, [`FANOUT_CONCURRENCY`] at a time.
pub async fn post_all<S>(
    gateway: &dyn ConnectionGateway,
    endpoint: &Endpoint,
    recipients: S,
    data: &Bytes,
) -> ChunkOutcome
where
    S: Stream<Item = String>,
{
    recipients
        .map(|id| async move {
            let r = gateway.post(endpoint, &id, data).await;
            (id, r)
        })
        .buffer_unordered(FANOUT_CONCURRENCY)
        .fold(ChunkOutcome::default(), |mut acc, (id, r)| async move {
            acc.record(id, r);
            acc
        })
        .await
}

/// Posts `data` to an explicit chunk of connections (an inline fan-out, or a fan-out
/// worker's job), then removes the ones that answered 410 Gone.
pub async fn post_chunk(
    connections: &dyn MembershipStore,
    gateway: &dyn ConnectionGateway,
    endpoint: &Endpoint,
    connection_ids: Vec<String>,
    data: &Bytes,
) -> ChunkOutcome {
    post_chunk_until(connections, gateway, endpoint, connection_ids, data, None).await
}

/// [`post_chunk`] that starts no post once `stop` has come: the recipients not yet posted to
/// are left in [`ChunkOutcome::unsent`]. Posts already started finish (with their retries),
/// so the caller's `stop` must leave room for them.
pub async fn post_chunk_until(
    connections: &dyn MembershipStore,
    gateway: &dyn ConnectionGateway,
    endpoint: &Endpoint,
    connection_ids: Vec<String>,
    data: &Bytes,
    stop: Option<Instant>,
) -> ChunkOutcome {
    let mut ids = connection_ids.into_iter();
    // The clock is read before a recipient is taken, so none is taken and then dropped.
    let before_stop = std::iter::from_fn(|| {
        if stop.is_some_and(|s| Instant::now() >= s) {
            None
        } else {
            ids.next()
        }
    });
    let mut outcome = post_all(gateway, endpoint, futures::stream::iter(before_stop), data).await;
    outcome.unsent = ids.collect();
    outcome.report.queued += outcome.unsent.len();
    remove_gone(connections, std::mem::take(&mut outcome.gone)).await;
    outcome
}

/// Removes connections that answered 410 (their TTL would, later). A failure is logged: the
/// next fan-out meets the same connection and tries again.
pub async fn remove_gone(connections: &dyn MembershipStore, gone: Vec<String>) {
    let failures = futures::stream::iter(gone)
        .map(|id| async move { connections.remove_connection(&id).await.err() })
        .buffer_unordered(GONE_REMOVAL_CONCURRENCY)
        .filter_map(|e| async move { e })
        .collect::<Vec<_>>()
        .await;
    if let Some(e) = failures.first() {
        tracing::warn!(failed = failures.len(), error = %chain(e), "could not remove gone connections");
    }
}

/// The connection ids of a member page, without the sender's connection `except`.
pub fn recipients(page: MemberIdPage, except: Option<&str>) -> Vec<String> {
    let mut ids = page.connection_ids;
    if let Some(except) = except {
        ids.retain(|id| id != except);
    }
    ids
}

/// The room's members except `except`, read page by page as the consumer asks for more.
/// A failed page read ends the stream and is left in `error`.
fn members<'a>(
    connections: &'a dyn MembershipStore,
    room: &'a RoomId,
    except: Option<&'a str>,
    error: &'a std::sync::Mutex<Option<StoreError>>,
) -> impl Stream<Item = String> + 'a {
    // State: Some(cursor) while pages remain; the first page has no cursor.
    futures::stream::unfold(Some(None::<String>), move |state| async move {
        let cursor = state?;
        match connections
            .room_member_ids(room, cursor.as_deref(), MEMBER_PAGE_SIZE)
            .await
        {
            Ok(page) => {
                let next = page.next.clone();
                Some((
                    futures::stream::iter(recipients(page, except)),
                    next.map(Some),
                ))
            }
            Err(e) => {
                *error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                None
            }
        }
    })
    .flatten()
}

/// Sends `frame` to every member of `room` except the connection `except`.
///
/// Fails only when the member list cannot be read (posts already under way finish first);
/// delivery failures are counted and left to history catch-up, because what triggered the
/// fan-out has already happened.
pub async fn broadcast(
    connections: &dyn MembershipStore,
    gateway: &dyn ConnectionGateway,
    endpoint: &Endpoint,
    room: &RoomId,
    frame: &ServerFrame,
    except: Option<&str>,
) -> Result<FanoutReport, StoreError> {
    let data = Bytes::from(frame.to_json());
    let error = std::sync::Mutex::new(None);
    let outcome = post_all(
        gateway,
        endpoint,
        members(connections, room, except, &error),
        &data,
    )
    .await;
    if let Some(sample) = &outcome.first_error {
        tracing::warn!(
            %room, failed = outcome.report.failed, unknown = outcome.report.unknown,
            sample_error = %sample, "some deliveries failed; recipients catch up by seq"
        );
    }
    remove_gone(connections, outcome.gone).await;
    match error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        Some(e) => Err(e),
        None => Ok(outcome.report),
    }
}

/// Sends `frame` to the room's members except `except` only when the room fits in one
/// member page; `None` (nothing sent) for a larger room. For ephemeral frames such as
/// typing, which are worth a post per member in a conversation but are noise, and a quota
/// drain, in a large audience.
pub async fn broadcast_if_small(
    connections: &dyn MembershipStore,
    gateway: &dyn ConnectionGateway,
    endpoint: &Endpoint,
    room: &RoomId,
    frame: &ServerFrame,
    except: Option<&str>,
) -> Result<Option<FanoutReport>, StoreError> {
    broadcast_if_within(
        connections,
        gateway,
        endpoint,
        room,
        frame,
        except,
        MEMBER_PAGE_SIZE,
    )
    .await
}

/// [`broadcast_if_small`] for rooms of at most `max` connections (at most one member page).
pub async fn broadcast_if_within(
    connections: &dyn MembershipStore,
    gateway: &dyn ConnectionGateway,
    endpoint: &Endpoint,
    room: &RoomId,
    frame: &ServerFrame,
    except: Option<&str>,
    max: u32,
) -> Result<Option<FanoutReport>, StoreError> {
    let page = connections
        .room_member_ids(room, None, max.min(MEMBER_PAGE_SIZE))
        .await?;
    if page.next.is_some() {
        return Ok(None);
    }
    let ids = recipients(page, except);
    let data = Bytes::from(frame.to_json());
    let outcome = post_chunk(connections, gateway, endpoint, ids, &data).await;
    Ok(Some(outcome.report))
}
