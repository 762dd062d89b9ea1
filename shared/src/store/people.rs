//! The people side of rooms, a port of its own ([`PeopleStore`], the supertrait of
//! [`HistoryStore`](super::HistoryStore), so every history store has it and handlers reach it
//! through the same `Arc<dyn HistoryStore>`):
//!
//! - member roles: the creator of a private room is its owner; owners add and remove members,
//!   members leave; when the last owner leaves, the longest-standing member becomes owner;
//! - direct rooms: a private room of exactly two people, opened idempotently under an id
//!   derived from both ([`crate::people::direct_room_id`]);
//! - read state: each user's last-read `seq` per room, only ever raised and never past the
//!   room's last `seq`;
//! - the room list: the rooms a user may see, with their role, unread count and, for a direct
//!   room, the other person, paged by room id.

use async_trait::async_trait;

use super::Room;
use crate::error::StoreError;
use crate::protocol::{RoomId, UserRef};

/// What kind of room it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoomKind {
    /// A room made with `POST /rooms` or by a first `joinRoom`.
    Room,
    /// A private room of two people ([`PeopleStore::open_direct`]).
    Direct,
}

impl RoomKind {
    /// The stored and wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Room => "room",
            Self::Direct => "direct",
        }
    }

    /// The kind spelled `raw`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "room" => Some(Self::Room),
            "direct" => Some(Self::Direct),
            _ => None,
        }
    }
}

/// A member's role in a private room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// May add and remove members.
    Owner,
    Member,
}

impl Role {
    /// The stored and wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }

    /// The role spelled `raw`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "owner" => Some(Self::Owner),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

/// A room as one user sees it in their room list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomEntry {
    pub room: Room,
    /// The user's role; `None` in a public room (which has no member list).
    pub role: Option<Role>,
    /// The room's last `seq` (0 before its first message).
    pub last_seq: i64,
    /// The user's last-read `seq` (0 when never marked).
    pub last_read: i64,
    /// In a direct room, the other person.
    pub peer: Option<UserRef>,
}

impl RoomEntry {
    /// Messages after the user's last-read one.
    pub fn unread(&self) -> i64 {
        (self.last_seq - self.last_read).max(0)
    }
}

/// A member of a private room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMember {
    pub user_id: String,
    /// Known when added by username or through a direct room; `None` when added by id.
    pub name: Option<String>,
    pub role: Role,
    /// The member's last-read `seq` (0 when never marked).
    pub last_read: i64,
}

/// A user's read position after marking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadMark {
    /// The last-read `seq` now in force (never lower than before).
    pub last_read: i64,
    /// The room's last `seq`.
    pub last_seq: i64,
    /// Whether this mark raised it (a stale or repeated mark does not).
    pub moved: bool,
}

impl ReadMark {
    /// Messages after the last-read one.
    pub fn unread(&self) -> i64 {
        (self.last_seq - self.last_read).max(0)
    }
}

/// Roles, direct rooms, read state and the room list (see the module doc).
#[async_trait]
pub trait PeopleStore: Send + Sync {
    /// The rooms `user_id` may see (public rooms and the private ones it belongs to), ordered
    /// by id, those after `after` only, at most `limit`.
    async fn room_list(
        &self,
        user_id: &str,
        after: Option<&RoomId>,
        limit: u32,
    ) -> Result<Vec<RoomEntry>, StoreError>;

    /// The user's role in the room; `None` when not a member (or the room is missing).
    async fn member_role(&self, room: &RoomId, user_id: &str) -> Result<Option<Role>, StoreError>;

    /// Adds `user_id` to the room as a member, with a display name when known. Idempotent: an
    /// existing member keeps its role (and its name, unless a name is given).
    /// `NotFound("room")` when the room is missing.
    async fn put_member(
        &self,
        room: &RoomId,
        user_id: &str,
        name: Option<&str>,
    ) -> Result<(), StoreError>;

    /// The room's members ordered by user id, those after `after` only, at most `limit`.
    async fn member_list(
        &self,
        room: &RoomId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RoomMember>, StoreError>;

    /// Removes a member and returns it as it was; `None` when it was not one. When the last
    /// owner goes, the longest-standing remaining member becomes owner, in the same step.
    async fn remove_member(
        &self,
        room: &RoomId,
        user_id: &str,
    ) -> Result<Option<RoomMember>, StoreError>;

    /// Opens the direct room `id` of `a` and `b` (two different users): creates it, counted
    /// against `a`'s rooms created (`LimitExceeded` at `max_created`, as
    /// [`HistoryStore::create_room_within`](super::HistoryStore::create_room_within)), or
    /// finds it. Returns the room and whether this call created it. Concurrent opens of one
    /// pair converge on one room. `Conflict("room")` when `id` is taken by a room that is not
    /// this pair's direct room.
    async fn open_direct(
        &self,
        id: &RoomId,
        a: &UserRef,
        b: &UserRef,
        max_created: u32,
    ) -> Result<(Room, bool), StoreError>;

    /// Raises the user's last-read `seq` in the room to `seq` (clamped to the room's last
    /// `seq`); never lowers it. `NotFound("room")` when the room is missing. Access is the
    /// caller's to check.
    async fn mark_read(
        &self,
        room: &RoomId,
        user_id: &str,
        seq: i64,
    ) -> Result<ReadMark, StoreError>;
}
