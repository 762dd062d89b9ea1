//! Store ports and their adapters.
//!
//! - [`ConnectionStore`]: live connections, which room each has joined, and per-user token
//!   revocation markers (DynamoDB on AWS).
//! - [`HistoryStore`]: rooms, private-room membership and messages (PostgreSQL), with its
//!   [`PeopleStore`] side (`people.rs`): member roles, direct rooms, read state, the room list.
//! - [`UserStore`]: accounts and refresh tokens (PostgreSQL).
//! - [`AttemptStore`]: failed-login counters for rate limiting (PostgreSQL).
//!
//! Each port has an in-memory adapter (hubbub-local's embedded default) and a real one; the
//! contract suites in the `hubbub-tests` crate run the same assertions against both.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::{AccessError, StoreError};
use crate::limits::{Bucket, BucketKind, Take};
use crate::protocol::{
    ChatMessage, ClientMsgId, Emoji, HistoryQuery, MessageBody, RoomId, UserRef,
};

pub use people::{PeopleStore, ReadMark, Role, RoomEntry, RoomKind, RoomMember};

pub mod dynamodb;
pub mod memory;
mod memory_people;
pub mod migrate;
pub mod people;
pub mod pg_connect;
pub mod postgres;

/// API Gateway closes every WebSocket after 2 hours. Records live this long plus a margin,
/// then the TTL removes them even if `$disconnect` never ran (it is best-effort).
pub const CONNECTION_TTL: time::Duration = time::Duration::minutes(2 * 60 + 15);

/// A live WebSocket connection and the user it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// API Gateway's connection id.
    pub id: String,
    pub user: UserRef,
    pub connected_at: OffsetDateTime,
    /// After this instant the record is dead whatever the store says (TTL deletion is lazy).
    pub expires_at: OffsetDateTime,
}

impl Connection {
    /// A connection opened now by `user`, expiring after [`CONNECTION_TTL`].
    pub fn new(id: impl Into<String>, user: UserRef, connected_at: OffsetDateTime) -> Self {
        Self {
            id: id.into(),
            user,
            connected_at,
            // Saturating: `connectedAt` comes from the event, and one near the end of the
            // representable time (year 9999) must not panic the route.
            expires_at: connected_at.saturating_add(CONNECTION_TTL),
        }
    }
}

/// One connection's membership of a room: what fan-out needs, without a second read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub connection_id: String,
    pub user: UserRef,
}

/// One page of a room's members.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberPage {
    pub members: Vec<Member>,
    /// Opaque cursor for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// One page of a room's members' connection ids: what fan-out posts to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberIdPage {
    pub connection_ids: Vec<String>,
    /// Opaque cursor for the next page (the same as [`MemberPage::next`]); `None` on the last.
    pub next: Option<String>,
}

/// The part of the connection table a revoked login needs: the user's live connections and
/// the marker that refuses the user's older access tokens.
///
/// A port of its own so that the functions that only end sessions (the HTTP API) or only
/// check the marker (the authorizer) hold exactly this: behind a `dyn ConnectionStore` every
/// membership and limiter operation would be linked into them too.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The ids of the user's live connections (a logout closes them). On DynamoDB this reads
    /// a global secondary index, which lags writes by a moment: a connection opened in that
    /// moment may be missing.
    async fn user_connections(&self, user_id: &str) -> Result<Vec<String>, StoreError>;

    /// Revokes the user's access tokens issued (`iat`, Unix seconds) before `before`: the
    /// authorizer refuses them from now on. The marker is kept until `keep_until` (when every
    /// such token has expired anyway) and never moves back: of two markers the later holds.
    async fn revoke_tokens_before(
        &self,
        user_id: &str,
        before: i64,
        keep_until: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// The user's marker in force ([`Self::revoke_tokens_before`]): tokens issued before it
    /// are revoked. `None` when there is none.
    async fn tokens_revoked_before(&self, user_id: &str) -> Result<Option<i64>, StoreError>;
}

/// Who is in a room, and how connections leave it: what fan-out needs (members to post to,
/// connections that are gone to remove) and what ends a membership from outside a connection
/// (a member removed from a private room). A port of its own so that a function that posts to
/// rooms but never joins, limits or types (the HTTP API, the workers) links only this.
#[async_trait]
pub trait MembershipStore: SessionStore {
    /// Removes the connection from a room. Returns `false` when it was not a member.
    async fn leave_room(&self, connection_id: &str, room: &RoomId) -> Result<bool, StoreError>;

    /// Takes every live connection of `user_id` out of `room` (a member removed from a
    /// private room); returns the connections that had joined it. Built on
    /// [`Self::user_connections`], so on DynamoDB a connection opened a moment ago may be
    /// missed: it joined after the removal was decided only if the room's access check let
    /// it, which the removal has already changed.
    async fn leave_room_for_user(
        &self,
        user_id: &str,
        room: &RoomId,
    ) -> Result<Vec<String>, StoreError> {
        let mut left = Vec::new();
        for id in self.user_connections(user_id).await? {
            if self.leave_room(&id, room).await? {
                left.push(id);
            }
        }
        Ok(left)
    }

    /// One page of the room's live members, in a stable order. `page_size` bounds the page.
    async fn room_members(
        &self,
        room: &RoomId,
        cursor: Option<&str>,
        page_size: u32,
    ) -> Result<MemberPage, StoreError>;

    /// [`Self::room_members`] without the users: the same pages, cursors and order, only the
    /// connection ids, which is all a fan-out needs. Every message to a room reads its
    /// members, so a store that can read less for this overrides it.
    async fn room_member_ids(
        &self,
        room: &RoomId,
        cursor: Option<&str>,
        page_size: u32,
    ) -> Result<MemberIdPage, StoreError> {
        let page = self.room_members(room, cursor, page_size).await?;
        Ok(MemberIdPage {
            connection_ids: page.members.into_iter().map(|m| m.connection_id).collect(),
            next: page.next,
        })
    }

    /// Deletes the connection and all its memberships; returns the rooms it was in.
    /// Removing an unknown connection is not an error (`$disconnect` and 410 clean-up race).
    async fn remove_connection(&self, connection_id: &str) -> Result<Vec<RoomId>, StoreError>;
}

/// Live connections and room membership.
#[async_trait]
pub trait ConnectionStore: MembershipStore {
    /// Records a new connection (idempotent for the same id).
    async fn put_connection(&self, conn: &Connection) -> Result<(), StoreError>;

    /// Reads a live connection; `None` when unknown or expired.
    async fn get_connection(&self, id: &str) -> Result<Option<Connection>, StoreError>;

    /// Adds the connection to a room unless it has already joined `max_rooms` rooms (then
    /// `LimitExceeded`, [`crate::limits::JOINED_TOO_MANY`]; the count and the join are one
    /// atomic step, so concurrent joins cannot pass the cap). Returns `false` when it was
    /// already a member (also at the cap). Fails with `NotFound("connection")` when the
    /// connection is unknown.
    async fn join_room_within(
        &self,
        conn: &Connection,
        room: &RoomId,
        max_rooms: u32,
    ) -> Result<bool, StoreError>;

    /// [`ConnectionStore::join_room_within`] without a cap, for tools and tests that set up
    /// rooms; the `joinRoom` route always passes its cap.
    async fn join_room(&self, conn: &Connection, room: &RoomId) -> Result<bool, StoreError> {
        self.join_room_within(conn, room, u32::MAX).await
    }

    /// Whether the connection has joined the room.
    async fn is_member(&self, connection_id: &str, room: &RoomId) -> Result<bool, StoreError>;

    /// Takes one token from the connection's `kind` bucket at `now_ms` (Unix ms), by the
    /// rule of [`Bucket::check`]; `Limited` with the wait when the bucket is empty. Atomic:
    /// of concurrent frames racing for the last token, one gets it. The state lives with the
    /// connection (it goes when the connection goes). A connection the store does not know is
    /// not limited here: its route refuses it anyway.
    async fn take_token(
        &self,
        connection_id: &str,
        kind: BucketKind,
        bucket: Bucket,
        now_ms: i64,
    ) -> Result<Take, StoreError>;

    /// Whether a typing indicator of `user_id` in `room` may be fanned out at `now_ms`:
    /// `true` (and recorded) when none was in the last `interval`, else `false`. Atomic: of
    /// concurrent typing frames of one user and room, at most one passes per interval.
    async fn typing_gate(
        &self,
        room: &RoomId,
        user_id: &str,
        interval: std::time::Duration,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
}

/// A room as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: RoomId,
    pub name: String,
    pub private: bool,
    pub created_at: OffsetDateTime,
    /// A room, or a direct room of two people ([`PeopleStore::open_direct`]).
    pub kind: RoomKind,
    /// Whether members see each other's read positions (private rooms only).
    pub read_receipts: bool,
}

/// A room to create: the store assigns its creation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoom {
    pub id: RoomId,
    pub name: String,
    pub private: bool,
    /// Read receipts on; only a private room may have them (the boundary refuses the rest).
    pub read_receipts: bool,
}

impl NewRoom {
    /// A room with the default receipts setting: on in private rooms, off in public ones.
    pub fn new(id: RoomId, name: String, private: bool) -> Self {
        Self {
            id,
            name,
            private,
            read_receipts: private,
        }
    }
}

/// Whether a user may use a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomAccess {
    /// No such room.
    Missing,
    /// A private room the user is not a member of.
    Denied,
    /// A public room, or a private one the user belongs to.
    Allowed,
}

impl RoomAccess {
    /// `Ok` when the user may use the room; otherwise why not, as every boundary reports it.
    pub fn require(self) -> Result<(), AccessError> {
        match self {
            Self::Allowed => Ok(()),
            Self::Missing => Err(AccessError::Missing),
            Self::Denied => Err(AccessError::Denied),
        }
    }
}

/// A message to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub room: RoomId,
    pub sender: UserRef,
    pub body: MessageBody,
    pub client_msg_id: ClientMsgId,
    /// The seq of the message this one answers (a plain, undeleted message of the room).
    pub reply_to: Option<i64>,
}

/// What an edit or delete does to its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Replace the body.
    Edit(MessageBody),
    /// Leave a tombstone: the body (and those of its edits) is dropped.
    Delete,
}

/// An edit or delete to commit as the room's next seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    pub room: RoomId,
    /// Who makes the change: the target's sender, or (deletes only) an owner of the room.
    pub actor: UserRef,
    /// The seq of the plain message it changes.
    pub target: i64,
    pub change: Change,
    /// The idempotency key, in the same space as sends' (room, user, clientMsgId).
    pub client_msg_id: ClientMsgId,
}

/// A reaction to add or take back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReaction {
    pub room: RoomId,
    pub seq: i64,
    pub user: UserRef,
    pub emoji: Emoji,
    /// `true` adds, `false` takes back.
    pub add: bool,
}

/// The outcome of a reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactionUpdate {
    /// Users reacting to the message with the emoji now.
    pub count: u32,
    /// Whether anything changed (adding twice, or taking back what was not there, does not).
    pub changed: bool,
}

/// Why an edit, delete, reply or reaction names no message it may use (the same words in
/// every store).
pub mod refusals {
    /// The seq is not a plain message of the room (missing, or an edit or delete).
    pub const NO_MESSAGE: &str = "message";
    /// The target is a tombstone.
    pub const DELETED: &str = "the message was deleted";
    /// An edit of someone else's message.
    pub const NOT_YOURS_TO_EDIT: &str = "you may edit only your own messages";
    /// A delete of someone else's message by someone who did not create the room.
    pub const NOT_YOURS_TO_DELETE: &str =
        "you may delete only your own messages, or any in a room you own";
    /// A new emoji on a message that has as many distinct ones as it may.
    pub const TOO_MANY_REACTIONS: &str = "this message has as many different reactions as it may";
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// Stored now with the next `seq`: deliver it.
    New(ChatMessage),
    /// Stored earlier under the same (room, sender, clientMsgId): ack again, deliver nothing.
    Duplicate(ChatMessage),
}

impl Commit {
    /// The stored message, whichever way.
    pub fn message(&self) -> &ChatMessage {
        match self {
            Self::New(m) | Self::Duplicate(m) => m,
        }
    }
}

/// One page of history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryPage {
    pub messages: Vec<ChatMessage>,
    /// More messages exist beyond the page in the direction of the query.
    pub has_more: bool,
}

/// Rooms, private-room membership and reading history: creation, access, history pages, the
/// room list; the people side of rooms (roles, direct rooms, read state) is its supertrait
/// [`PeopleStore`]. A function that reads rooms but never commits to their sequence (the
/// HTTP API) holds this alone, so it does not link the message commits.
#[async_trait]
pub trait RoomStore: PeopleStore + Send + Sync {
    /// Creates a room unless `creator` has already created `max_created` rooms (then
    /// `LimitExceeded`, [`crate::limits::CREATED_TOO_MANY`]; the count and the creation are
    /// one atomic step), and returns it as stored (with the store's creation time).
    /// `Conflict("room")` when the id is taken (nothing is counted). The creator of a private
    /// room becomes its first member, and its owner.
    async fn create_room_within(
        &self,
        room: &NewRoom,
        creator: &UserRef,
        max_created: u32,
    ) -> Result<Room, StoreError>;

    /// [`RoomStore::create_room_within`] without a cap (the creation still counts), for
    /// tools and tests; the routes always pass their cap.
    async fn create_room(&self, room: &NewRoom, creator: &UserRef) -> Result<Room, StoreError> {
        self.create_room_within(room, creator, u32::MAX).await
    }

    /// Creates a public room named after its id unless it exists; returns the room either way.
    async fn ensure_public_room(&self, id: &RoomId) -> Result<Room, StoreError>;

    /// Reads a room.
    async fn get_room(&self, id: &RoomId) -> Result<Option<Room>, StoreError>;

    /// Adds a user to a room's member list (private rooms). Idempotent.
    async fn add_member(&self, room: &RoomId, user_id: &str) -> Result<(), StoreError>;

    /// Whether `user_id` may use the room.
    async fn room_access(&self, room: &RoomId, user_id: &str) -> Result<RoomAccess, StoreError>;

    /// Reads a page of history by keyset on `seq`, with each message's current state, its
    /// reply's quote and its reactions (`me` for `viewer`).
    async fn history(
        &self,
        room: &RoomId,
        query: &HistoryQuery,
        viewer: &str,
    ) -> Result<HistoryPage, StoreError>;

    /// The rooms `user_id` may see: every public room and the private rooms it belongs to,
    /// ordered by id, at most `limit` of them.
    async fn visible_rooms(&self, user_id: &str, limit: u32) -> Result<Vec<Room>, StoreError>;
}

/// A room's gap-free sequence: messages, their edits and deletes, and reactions, on top of
/// [`RoomStore`].
#[async_trait]
pub trait HistoryStore: RoomStore {
    /// Commits a message, assigning the room's next gap-free `seq` in the same transaction.
    /// Idempotent on (room, sender, clientMsgId). `NotFound("room")` when the room is missing;
    /// with `reply_to`, `NotFound("message")` when that seq is not a plain message of the
    /// room and `Gone` when it was deleted (see [`refusals`]).
    async fn commit_message(&self, msg: &NewMessage) -> Result<Commit, StoreError>;

    /// The entry (message, edit or delete) that `user_id` committed to `room` under
    /// `client_msg_id`, as it is now, if any: what a retry of it is answered with.
    async fn committed(
        &self,
        room: &RoomId,
        user_id: &str,
        client_msg_id: &ClientMsgId,
    ) -> Result<Option<ChatMessage>, StoreError>;

    /// Commits an edit or delete of the plain message `target` as the room's next seq, and
    /// applies it to the target in the same transaction (edit: its body, `edit_seq`,
    /// `edited_at`; delete: a tombstone without body or reactions, its edits' bodies
    /// dropped). Idempotent on (room, actor, clientMsgId) like a send. Refusals, in this
    /// order, change nothing: `NotFound("room")`; `NotFound("message")`; `Forbidden` for
    /// another user's message (a delete by an owner of the room excepted: a private room's
    /// owner members, a public room's creator); `Gone` when the target
    /// was deleted.
    async fn commit_change(&self, change: &NewChange) -> Result<Commit, StoreError>;

    /// Adds or takes back a reaction to the plain message `seq`; idempotent. Refusals:
    /// `NotFound("message")`, `Gone`, `LimitExceeded` when the message already has
    /// [`crate::protocol::REACTIONS_PER_MESSAGE_MAX`] distinct emoji and this is a new one.
    async fn react(&self, reaction: &NewReaction) -> Result<ReactionUpdate, StoreError>;
}

/// An account as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable id: the `sub` of the user's tokens.
    pub id: String,
    /// The login name as registered, unique case-insensitively; also the display name.
    pub username: String,
    /// The argon2id PHC string (algorithm, parameters, per-user salt and hash).
    pub password_hash: String,
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A refresh token to store. Only the SHA-256 of the opaque value is ever stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    /// Hex SHA-256 of the token value.
    pub hash: String,
    pub user_id: String,
    /// Every token descended from one login shares the family; reuse revokes the family.
    pub family: uuid::Uuid,
    pub expires_at: OffsetDateTime,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now spent and its successor is stored in the same family.
    Rotated { user_id: String, family: uuid::Uuid },
    /// The token had already been spent: its whole family is now revoked.
    Reused { user_id: String, family: uuid::Uuid },
    /// Unknown, expired or revoked: nothing changed.
    Invalid,
}

/// Accounts and refresh tokens.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates an account. `Conflict("user")` when the username is taken, in any case
    /// (`Alice` takes `alice`).
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError>;

    /// Reads an account by username, case-insensitively.
    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Reads an account by id.
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Stores a new refresh token (the first of a family, at login or registration).
    async fn put_refresh_token(&self, token: &NewRefreshToken) -> Result<(), StoreError>;

    /// Spends the token whose hash is `presented` and stores `successor_hash` in its family,
    /// atomically: of two concurrent presentations of one token, exactly one rotates and the
    /// other is [`Rotation::Reused`].
    async fn rotate_refresh_token(
        &self,
        presented: &str,
        successor_hash: &str,
        successor_expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError>;

    /// Revokes the family of the token whose hash is `presented` (logout). Returns the
    /// user whose login it was, `None` when no such token exists.
    async fn revoke_refresh_family(&self, presented: &str) -> Result<Option<String>, StoreError>;

    /// Deletes every refresh token that expired before `now` (spent or not: an expired token
    /// is refused as invalid either way) and the families left without tokens; returns how
    /// many tokens went.
    async fn prune_refresh_tokens(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}

/// A fixed-window failure counter after an increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    /// Failures counted in the current window, this one included.
    pub count: u32,
    /// When the current window ends (and the count starts again from zero).
    pub window_ends: OffsetDateTime,
}

/// Attempt counters, keyed by an opaque string (`user:alice|ip:203.0.113.7`, `ip:203.0.113.7`).
#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// The failures counted for `key` in the window that contains `now` (`count` 0 when none).
    async fn attempts(&self, key: &str, now: OffsetDateTime) -> Result<Attempts, StoreError>;

    /// Counts one attempt for `key`, atomically: in the current window, or in a new window of
    /// `window` starting at `now` when the last one has ended. Of concurrent calls, each gets
    /// its own count (1, 2, 3, ...).
    async fn record_failure(
        &self,
        key: &str,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> Result<Attempts, StoreError>;

    /// Forgets the failures of `key` (a successful login clears its account's counter).
    async fn clear(&self, key: &str) -> Result<(), StoreError>;

    /// Takes back one count of `key` (an attempt counted before it was checked that turned
    /// out to succeed); the key is forgotten when its count reaches zero.
    async fn forgive(&self, key: &str) -> Result<(), StoreError>;

    /// Deletes every counter whose window ended before `now`; returns how many.
    async fn prune(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}
