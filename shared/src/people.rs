//! Room membership and read state as live connections see them, shared by the WebSocket
//! `markRead` route and the HTTP API (`PUT /rooms/{room}/read`, member removal, direct rooms):
//!
//! - direct room ids ([`direct_room_id`]): `dm-` and 40 hex digits of a hash of the two user
//!   ids, so that both people, and two concurrent opens, name the same room; the prefix is
//!   kept for direct rooms ([`is_direct_id`]), so nobody can take a pair's id first;
//! - [`Notifier`]: a moved read mark goes to the user's other connections (`read`) and, in
//!   rooms with read receipts of at most [`RECEIPTS_ROOM_MAX`] connections, to the room
//!   (`receipt`); a removed member's connections leave the room at once (`removed`); a new
//!   member's connections learn of the room (`added`).
//!
//! Every live effect here is best-effort and logged: the stored change has been made, and a
//! client catches up from `GET /rooms`.

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::error::{StoreError, chain};
use crate::fanout;
use crate::gateway::{ConnectionGateway, Endpoint};
use crate::presence::{self, PresenceChange};
use crate::protocol::{PresenceState, ProtocolError, RoomId, ServerFrame, UserRef};
use crate::store::{MembershipStore, ReadMark};

/// The prefix of every direct room id, and of no other room's.
pub const DIRECT_PREFIX: &str = "dm-";

/// Hex digits of the pair's hash in a direct room id: 160 bits, so no two pairs share an id
/// in practice, and the id (43 characters) fits `ROOM_ID_MAX`.
const DIRECT_HASH_HEX: usize = 40;

/// Rooms with read receipts relay each moved mark live to every connection only up to this
/// many connections: every member reading every message costs N² posts, about 1,000 per
/// message at 32. In larger rooms positions are read on demand (`GET /rooms/{room}/members`).
pub const RECEIPTS_ROOM_MAX: u32 = 32;

/// Posts to one user's connections run this many at once: a user has a handful of tabs and
/// devices, and a bound keeps one call from opening a burst of management requests.
const USER_POST_CONCURRENCY: usize = 8;

/// The id of the direct room of users `a` and `b` (in either order). `dm-` and lower-case
/// hex always make a valid room id; the error is the parser's, should that ever change.
pub fn direct_room_id(a: &str, b: &str) -> Result<RoomId, ProtocolError> {
    let (first, second) = if a < b { (a, b) } else { (b, a) };
    let mut hash = Sha256::new();
    // Length-prefixed, so no two pairs of ids concatenate to the same bytes.
    hash.update((first.len() as u64).to_be_bytes());
    hash.update(first.as_bytes());
    hash.update(second.as_bytes());
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    RoomId::parse(format!("{DIRECT_PREFIX}{}", &hex[..DIRECT_HASH_HEX]))
}

/// Whether `room` is in the id space kept for direct rooms (no other room may take it).
pub fn is_direct_id(room: &RoomId) -> bool {
    room.as_str().starts_with(DIRECT_PREFIX)
}

/// Posts frames about rooms and people to live connections.
pub struct Notifier<'a> {
    pub connections: &'a dyn MembershipStore,
    pub gateway: &'a dyn ConnectionGateway,
    pub endpoint: &'a Endpoint,
}

impl<'a> Notifier<'a> {
    /// A notifier over shared handles (a `ConnectionStore` passes as its membership side).
    pub fn new(
        connections: &'a dyn MembershipStore,
        gateway: &'a dyn ConnectionGateway,
        endpoint: &'a Endpoint,
    ) -> Self {
        Self {
            connections,
            gateway,
            endpoint,
        }
    }

    /// Posts `frame` to the given connections; returns how many API Gateway accepted.
    async fn post_all(&self, ids: &[String], frame: &ServerFrame) -> usize {
        let data = Bytes::from(frame.to_json());
        let posts: Vec<_> = ids
            .iter()
            .map(|id| {
                let data = data.clone();
                async move {
                    match self.gateway.post(self.endpoint, id, &data).await {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::debug!(connection_id = %id, error = %chain(&e), "post to a user's connection failed");
                            false
                        }
                    }
                }
            })
            .collect();
        futures::stream::iter(posts)
            .buffer_unordered(USER_POST_CONCURRENCY)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await
    }

    /// Posts `frame` to every live connection of `user_id` but `except`.
    pub async fn to_user(
        &self,
        user_id: &str,
        frame: &ServerFrame,
        except: Option<&str>,
    ) -> Result<usize, StoreError> {
        let ids: Vec<String> = self
            .connections
            .user_connections(user_id)
            .await?
            .into_iter()
            .filter(|id| Some(id.as_str()) != except)
            .collect();
        Ok(self.post_all(&ids, frame).await)
    }

    /// Tells the reader's other connections (`read`) and, when `receipts` and the room is
    /// small, the room (`receipt`) that the reader's mark moved. Nothing when it did not.
    pub async fn read_marked(
        &self,
        room: &RoomId,
        reader: &UserRef,
        mark: ReadMark,
        receipts: bool,
        except: Option<&str>,
    ) {
        if !mark.moved {
            return;
        }
        let own = ServerFrame::Read {
            room: room.clone(),
            last_read: mark.last_read,
            unread: mark.unread(),
        };
        if let Err(e) = self.to_user(&reader.id, &own, except).await {
            tracing::warn!(%room, error = %chain(&e), "read mark not shared with the user's other connections");
        }
        if !receipts {
            return;
        }
        let receipt = ServerFrame::Receipt {
            room: room.clone(),
            user: reader.clone(),
            last_read: mark.last_read,
        };
        match fanout::broadcast_if_within(
            self.connections,
            self.gateway,
            self.endpoint,
            room,
            &receipt,
            except,
            RECEIPTS_ROOM_MAX,
        )
        .await
        {
            Ok(Some(report)) => {
                tracing::debug!(%room, delivered = report.delivered, "receipt relayed");
            }
            Ok(None) => tracing::debug!(%room, "receipt not relayed in a large room"),
            Err(e) => tracing::warn!(%room, error = %chain(&e), "receipt not relayed"),
        }
    }

    /// Takes the removed member's connections out of the room, tells each (`removed`) and
    /// announces the leave to the room; returns how many connections left.
    pub async fn removed(&self, room: &RoomId, user: &UserRef) -> Result<usize, StoreError> {
        let left = self.connections.leave_room_for_user(&user.id, room).await?;
        if left.is_empty() {
            return Ok(0);
        }
        let frame = ServerFrame::Removed { room: room.clone() };
        self.post_all(&left, &frame).await;
        presence::flush_all(
            self.connections,
            self.gateway,
            None,
            vec![PresenceChange {
                endpoint: self.endpoint.as_str().to_owned(),
                room: room.clone(),
                user: user.clone(),
                state: PresenceState::Left,
            }],
        )
        .await;
        Ok(left.len())
    }

    /// Tells a new member's connections about the room (`added`). Logged, never failing.
    pub async fn added(&self, room: &RoomId, user_id: &str) {
        let frame = ServerFrame::Added { room: room.clone() };
        if let Err(e) = self.to_user(user_id, &frame, None).await {
            tracing::warn!(%room, error = %chain(&e), "new member not told of the room");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_ids_name_the_pair_in_either_order() {
        let id = |a: &str, b: &str| direct_room_id(a, b).expect("a room id");
        let ab = id("u-ann", "u-bob");
        assert_eq!(ab, id("u-bob", "u-ann"));
        assert!(is_direct_id(&ab));
        assert_eq!(ab.as_str().len(), DIRECT_PREFIX.len() + DIRECT_HASH_HEX);
        assert_ne!(ab, id("u-ann", "u-carl"));
        // The length prefix keeps "ab"+"c" and "a"+"bc" apart.
        assert_ne!(id("ab", "c"), id("a", "bc"));
        assert!(!is_direct_id(&RoomId::parse("lobby").expect("room")));
    }
}
