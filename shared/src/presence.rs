//! Presence without N²: joins and leaves are coalesced per room over a short window and
//! announced in one `presence` frame per room per window.
//!
//! Announcing every join to every member costs N²/2 posts for a room of N joiners (a
//! 1,000-member room: 500,000 posts, 50 s of the account's whole 10,000 requests/s quota).
//! Instead the routes publish each change to a [`PresenceSink`]; once per window the
//! changes of each room are folded into one frame (`joined`, `left`, `count`) and fanned out
//! once. Above [`PRESENCE_DETAIL_LIMIT`] members the frame carries only the occupancy
//! `count`: listing who joined a huge room is noise, and clients that want names page
//! through `members`.
//!
//! On AWS the sink is an SQS queue whose event source mapping batches a window of changes
//! into one invocation of the worker ([`flush`] per room); hubbub-local and the tests run
//! [`LocalPresence`], the same fold and flush on a timer in-process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::chain;
use crate::fanout::{self, FanoutReport};
use crate::gateway::{ConnectionGateway, Endpoint};
use crate::protocol::{PresenceState, RoomId, ServerFrame, UserRef};
use crate::queue::{CHUNK_SIZE, DeliverError, FanoutJob, FanoutQueue, LARGE_ROOM_THRESHOLD};
use crate::store::MembershipStore;

/// Rooms with more members than this get occupancy counts only, no names: a frame listing
/// a window's joiners stays small and readable up to here.
pub const PRESENCE_DETAIL_LIMIT: usize = 100;
/// How long changes are gathered before a room's frame goes out: long enough that a burst
/// of joins (a class starting, a reconnect storm) becomes a handful of frames, short
/// enough to feel live. SQS's batching window has whole-second granularity, so the
/// template uses the same 1 s.
pub const PRESENCE_WINDOW: Duration = Duration::from_secs(1);

/// One join or leave, as published by a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceChange {
    /// The stage's management API.
    pub endpoint: String,
    pub room: RoomId,
    pub user: UserRef,
    pub state: PresenceState,
}

/// Where routes publish presence changes.
#[async_trait]
pub trait PresenceSink: Send + Sync {
    /// Publishes one change; it is announced with the others of its window.
    async fn publish(&self, change: PresenceChange) -> Result<(), crate::queue::QueueError>;
}

/// A window's changes of one room, folded: a join and a leave of the same user within the
/// window cancel out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomChanges {
    pub joined: Vec<UserRef>,
    pub left: Vec<UserRef>,
}

impl RoomChanges {
    fn apply(&mut self, user: UserRef, state: PresenceState) {
        let (add, cancel) = match state {
            PresenceState::Joined => (&mut self.joined, &mut self.left),
            PresenceState::Left => (&mut self.left, &mut self.joined),
        };
        if let Some(i) = cancel.iter().position(|u| u.id == user.id) {
            cancel.remove(i);
        } else if !add.iter().any(|u| u.id == user.id) {
            add.push(user);
        }
    }

    /// Whether nothing is left to announce.
    pub fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.left.is_empty()
    }
}

/// Groups changes by (endpoint, room), in arrival order within each room.
pub fn fold(changes: Vec<PresenceChange>) -> HashMap<(String, RoomId), RoomChanges> {
    let mut rooms: HashMap<(String, RoomId), RoomChanges> = HashMap::new();
    for c in changes {
        rooms
            .entry((c.endpoint, c.room))
            .or_default()
            .apply(c.user, c.state);
    }
    rooms
}

/// Announces one room's folded changes to every member of the room: inline when the room
/// fits in one member page, else as fan-out jobs on `queue` (when there is one).
pub async fn flush(
    connections: &dyn MembershipStore,
    gateway: &dyn ConnectionGateway,
    queue: Option<&dyn FanoutQueue>,
    endpoint: &Endpoint,
    room: &RoomId,
    changes: RoomChanges,
) -> Result<FanoutReport, DeliverError> {
    if changes.is_empty() {
        return Ok(FanoutReport::default());
    }
    // The count goes in the frame, so every member is read before the first post.
    let mut members = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = connections
            .room_member_ids(room, cursor.as_deref(), CHUNK_SIZE)
            .await?;
        members.extend(page.connection_ids);
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let count = members.len();
    let detail = count <= PRESENCE_DETAIL_LIMIT;
    let frame = ServerFrame::Presence {
        room: room.clone(),
        joined: if detail { changes.joined } else { Vec::new() },
        left: if detail { changes.left } else { Vec::new() },
        count,
    };
    let frame = frame.to_json();
    match queue {
        Some(q) if count > LARGE_ROOM_THRESHOLD => {
            let jobs: Vec<FanoutJob> = members
                .chunks(CHUNK_SIZE as usize)
                .zip(0..)
                .map(|(ids, chunk)| {
                    FanoutJob::first(endpoint, room, &frame, None, chunk, ids.to_vec())
                })
                .collect();
            q.enqueue(jobs).await?;
            Ok(FanoutReport {
                queued: count,
                ..FanoutReport::default()
            })
        }
        _ => {
            let data = Bytes::from(frame);
            let outcome = fanout::post_chunk(connections, gateway, endpoint, members, &data).await;
            Ok(outcome.report)
        }
    }
}

/// Flushes every room of a batch of changes, one room after another, logging each.
pub async fn flush_all(
    connections: &dyn MembershipStore,
    gateway: &dyn ConnectionGateway,
    queue: Option<&dyn FanoutQueue>,
    changes: Vec<PresenceChange>,
) {
    for ((endpoint, room), folded) in fold(changes) {
        let (joined, left) = (folded.joined.len(), folded.left.len());
        let ep = Endpoint::for_request("", "", Some(&endpoint));
        match flush(connections, gateway, queue, &ep, &room, folded).await {
            Ok(r) => tracing::info!(
                %room, joined, left, delivered = r.delivered, queued = r.queued, gone = r.gone,
                failed = r.failed, unknown = r.unknown, "presence announced"
            ),
            Err(e) => tracing::error!(%room, error = %chain(&e), "presence not announced"),
        }
    }
}

/// In-process presence: changes gathered for [`PRESENCE_WINDOW`] (or the window given),
/// then flushed room by room. What hubbub-local and tests run instead of SQS + the worker.
#[derive(Clone)]
pub struct LocalPresence {
    pending: Arc<Mutex<Vec<PresenceChange>>>,
}

impl LocalPresence {
    /// Starts the flusher; it runs until the runtime shuts down.
    pub fn start(
        connections: Arc<dyn MembershipStore>,
        gateway: Arc<dyn ConnectionGateway>,
        queue: Option<Arc<dyn FanoutQueue>>,
        window: Duration,
    ) -> Self {
        let pending: Arc<Mutex<Vec<PresenceChange>>> = Arc::default();
        let batch = pending.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(window);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let changes = std::mem::take(
                    &mut *batch
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                if !changes.is_empty() {
                    flush_all(
                        connections.as_ref(),
                        gateway.as_ref(),
                        queue.as_deref(),
                        changes,
                    )
                    .await;
                }
            }
        });
        Self { pending }
    }
}

#[async_trait]
impl PresenceSink for LocalPresence {
    async fn publish(&self, change: PresenceChange) -> Result<(), crate::queue::QueueError> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(change);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(room: &str, user: &str, state: PresenceState) -> PresenceChange {
        PresenceChange {
            endpoint: "http://x/prod".into(),
            room: RoomId::parse(room).expect("room"),
            user: UserRef {
                id: format!("u-{user}"),
                name: user.into(),
            },
            state,
        }
    }

    #[test]
    fn a_window_folds_to_one_entry_per_room_and_cancels_join_then_leave() {
        use PresenceState::{Joined, Left};
        let folded = fold(vec![
            change("a", "ann", Joined),
            change("a", "bob", Joined),
            change("b", "ann", Joined),
            change("a", "bob", Left),
            change("a", "cat", Left),
            change("a", "ann", Joined),
        ]);
        assert_eq!(folded.len(), 2);
        let a = &folded[&(
            "http://x/prod".to_owned(),
            RoomId::parse("a").expect("room"),
        )];
        let names = |v: &[UserRef]| v.iter().map(|u| u.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&a.joined), vec!["ann"]);
        assert_eq!(names(&a.left), vec!["cat"]);
    }
}
