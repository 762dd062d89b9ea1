//! In-memory adapters: hubbub-local's embedded default.
//!
//! Not mocks: they pass the same contract suites as the DynamoDB and PostgreSQL adapters.
//! Each keeps its whole state behind one `std::sync::Mutex`; no lock is held across an
//! `.await`, and every operation is short, so contention is not a concern for one machine.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::memory_people::RoomPeople;
use super::{
    AttemptStore, Attempts, Commit, Connection, ConnectionStore, HistoryPage, HistoryStore, Member,
    MemberIdPage, MemberPage, MembershipStore, NewChange, NewMessage, NewReaction, NewRefreshToken,
    NewRoom, ReactionUpdate, Role, Room, RoomAccess, RoomKind, RoomStore, Rotation, SessionStore,
    UserRecord, UserStore,
};
use crate::error::StoreError;
use crate::limits::{self, Bucket, BucketKind, Take, Verdict};
use crate::protocol::{ChatMessage, ClientMsgId, HistoryCursor, HistoryQuery, RoomId, UserRef};

mod messages;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these maps half-updated in a way that
    // matters more than losing the process would; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Default)]
struct ConnState {
    /// Every known connection by id.
    conns: HashMap<String, Connection>,
    /// room -> connection id -> member; BTreeMap so pages come in a stable order.
    rooms: HashMap<RoomId, BTreeMap<String, RoomMember>>,
    /// connection id -> rooms joined, so removal needs no scan.
    joined: HashMap<String, BTreeSet<RoomId>>,
    /// (connection id, bucket) -> the bucket's TAT in Unix ms ([`crate::limits`]).
    buckets: HashMap<(String, BucketKind), i64>,
    /// (room, user id) -> when a typing indicator was last let through (Unix ms).
    typing: HashMap<(RoomId, String), i64>,
    /// user id -> (tokens issued before this second are revoked, kept until).
    revoked: HashMap<String, (i64, OffsetDateTime)>,
}

/// A room's member as the store keeps it: with its connection's expiry as of the join, as the
/// DynamoDB adapter's membership items carry it, so listing a room needs no connection lookup
/// per member. Every message to a large room lists it: at 1,000 members × 100 messages a
/// second, those lookups were ~5 % of hubbub-local's CPU.
struct RoomMember {
    member: Member,
    expires_at: OffsetDateTime,
}

impl ConnState {
    /// One page of `room`'s live members after `cursor`, each as `take` makes it, and the
    /// cursor of the next page. The clock is read once per page and the cursor copied once:
    /// every message to a room reads its members.
    fn member_page<T>(
        &self,
        room: &RoomId,
        cursor: Option<&str>,
        page_size: u32,
        take: impl Fn(&Member) -> T,
    ) -> (Vec<T>, Option<String>) {
        let Some(members) = self.rooms.get(room) else {
            return (Vec::new(), None);
        };
        let start = match cursor {
            Some(c) => std::ops::Bound::Excluded(c),
            None => std::ops::Bound::Unbounded,
        };
        let size = page_size.max(1) as usize;
        let now = OffsetDateTime::now_utc();
        let mut page = Vec::with_capacity(size.min(members.len()));
        let mut last: Option<&String> = None;
        for (id, m) in members.range::<str, _>((start, std::ops::Bound::Unbounded)) {
            if page.len() == size {
                return (page, last.cloned());
            }
            last = Some(id);
            if live_until(m.expires_at, now) {
                page.push(take(&m.member));
            }
        }
        (page, None)
    }
}

/// In-memory [`ConnectionStore`].
#[derive(Default)]
pub struct MemoryConnectionStore {
    state: Mutex<ConnState>,
}

impl MemoryConnectionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn live(c: &Connection) -> bool {
    live_until(c.expires_at, OffsetDateTime::now_utc())
}

/// Whether a connection that expires at `expires_at` is live at `now` (one clock read for a
/// whole page of members).
fn live_until(expires_at: OffsetDateTime, now: OffsetDateTime) -> bool {
    expires_at > now
}

#[async_trait]
impl ConnectionStore for MemoryConnectionStore {
    async fn put_connection(&self, conn: &Connection) -> Result<(), StoreError> {
        lock(&self.state)
            .conns
            .insert(conn.id.clone(), conn.clone());
        Ok(())
    }

    async fn get_connection(&self, id: &str) -> Result<Option<Connection>, StoreError> {
        Ok(lock(&self.state).conns.get(id).filter(|c| live(c)).cloned())
    }

    async fn join_room_within(
        &self,
        conn: &Connection,
        room: &RoomId,
        max_rooms: u32,
    ) -> Result<bool, StoreError> {
        let mut s = lock(&self.state);
        let Some(stored) = s.conns.get(&conn.id).filter(|c| live(c)).cloned() else {
            return Err(StoreError::NotFound("connection"));
        };
        let joined = s.joined.get(&conn.id);
        if joined.is_some_and(|j| j.contains(room)) {
            return Ok(false);
        }
        if joined.map_or(0, BTreeSet::len) >= usize::try_from(max_rooms).unwrap_or(usize::MAX) {
            return Err(StoreError::LimitExceeded(limits::JOINED_TOO_MANY));
        }
        let member = RoomMember {
            member: Member {
                connection_id: stored.id.clone(),
                user: stored.user,
            },
            expires_at: stored.expires_at,
        };
        let fresh = s
            .rooms
            .entry(room.clone())
            .or_default()
            .insert(conn.id.clone(), member)
            .is_none();
        s.joined
            .entry(conn.id.clone())
            .or_default()
            .insert(room.clone());
        Ok(fresh)
    }

    async fn is_member(&self, connection_id: &str, room: &RoomId) -> Result<bool, StoreError> {
        let s = lock(&self.state);
        let alive = s.conns.get(connection_id).is_some_and(live);
        Ok(alive
            && s.rooms
                .get(room)
                .is_some_and(|m| m.contains_key(connection_id)))
    }

    async fn take_token(
        &self,
        connection_id: &str,
        kind: BucketKind,
        bucket: Bucket,
        now_ms: i64,
    ) -> Result<Take, StoreError> {
        let mut s = lock(&self.state);
        if !s.conns.get(connection_id).is_some_and(live) {
            return Ok(Take::Allowed);
        }
        let key = (connection_id.to_owned(), kind);
        match bucket.check(s.buckets.get(&key).copied(), now_ms) {
            Verdict::Allowed { tat_ms } => {
                s.buckets.insert(key, tat_ms);
                Ok(Take::Allowed)
            }
            Verdict::Limited { retry_after_ms } => Ok(Take::Limited { retry_after_ms }),
        }
    }

    async fn typing_gate(
        &self,
        room: &RoomId,
        user_id: &str,
        interval: std::time::Duration,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let interval = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let mut s = lock(&self.state);
        // Forget indicators older than the interval, so the map holds only the last few
        // seconds' typists rather than every (room, user) pair ever seen.
        s.typing.retain(|_, at| now_ms - *at < interval);
        let key = (room.clone(), user_id.to_owned());
        if s.typing.contains_key(&key) {
            return Ok(false);
        }
        s.typing.insert(key, now_ms);
        Ok(true)
    }
}

#[async_trait]
impl MembershipStore for MemoryConnectionStore {
    async fn leave_room(&self, connection_id: &str, room: &RoomId) -> Result<bool, StoreError> {
        let mut s = lock(&self.state);
        let removed = s
            .rooms
            .get_mut(room)
            .and_then(|m| m.remove(connection_id))
            .is_some();
        if let Some(j) = s.joined.get_mut(connection_id) {
            j.remove(room);
        }
        Ok(removed)
    }

    async fn room_members(
        &self,
        room: &RoomId,
        cursor: Option<&str>,
        page_size: u32,
    ) -> Result<MemberPage, StoreError> {
        let (members, next) = lock(&self.state).member_page(room, cursor, page_size, Member::clone);
        Ok(MemberPage { members, next })
    }

    async fn room_member_ids(
        &self,
        room: &RoomId,
        cursor: Option<&str>,
        page_size: u32,
    ) -> Result<MemberIdPage, StoreError> {
        let (connection_ids, next) =
            lock(&self.state).member_page(room, cursor, page_size, |m| m.connection_id.clone());
        Ok(MemberIdPage {
            connection_ids,
            next,
        })
    }

    async fn remove_connection(&self, connection_id: &str) -> Result<Vec<RoomId>, StoreError> {
        let mut s = lock(&self.state);
        s.conns.remove(connection_id);
        for kind in BucketKind::ALL {
            s.buckets.remove(&(connection_id.to_owned(), kind));
        }
        let rooms = s.joined.remove(connection_id).unwrap_or_default();
        for room in &rooms {
            if let Some(m) = s.rooms.get_mut(room) {
                m.remove(connection_id);
                if m.is_empty() {
                    s.rooms.remove(room);
                }
            }
        }
        Ok(rooms.into_iter().collect())
    }
}

#[async_trait]
impl SessionStore for MemoryConnectionStore {
    async fn user_connections(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let s = lock(&self.state);
        let mut ids: Vec<String> = s
            .conns
            .values()
            .filter(|c| c.user.id == user_id && live(c))
            .map(|c| c.id.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn revoke_tokens_before(
        &self,
        user_id: &str,
        before: i64,
        keep_until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        let now = OffsetDateTime::now_utc();
        // Expired markers go here: the map holds no more users than revoked recently.
        s.revoked.retain(|_, (_, until)| *until > now);
        let entry = s
            .revoked
            .entry(user_id.to_owned())
            .or_insert((before, keep_until));
        if before >= entry.0 {
            *entry = (before, keep_until.max(entry.1));
        }
        Ok(())
    }

    async fn tokens_revoked_before(&self, user_id: &str) -> Result<Option<i64>, StoreError> {
        let now = OffsetDateTime::now_utc();
        Ok(lock(&self.state)
            .revoked
            .get(user_id)
            .filter(|(_, until)| *until > now)
            .map(|(before, _)| *before))
    }
}

pub(super) struct RoomState {
    pub(super) room: Room,
    /// Who created a public room (its owner); `None` for private rooms, whose owners are their
    /// owner members (`RoomState::owned_by`), and for rooms made by `ensure_public_room`.
    pub(super) created_by: Option<String>,
    pub(super) members: HashSet<String>,
    /// Roles, names, read state and the direct pair (`memory_people.rs`).
    pub(super) people: RoomPeople,
    /// Messages in seq order; `messages[i].seq == i + 1` because seq is gap-free.
    pub(super) messages: Vec<ChatMessage>,
    /// (sender id, clientMsgId) -> index into `messages`: the idempotency key.
    by_client_id: HashMap<(String, String), usize>,
    /// seq -> the message's reactions.
    reactions: HashMap<i64, messages::Reactions>,
}

/// In-memory [`HistoryStore`].
#[derive(Default)]
pub struct MemoryHistoryStore {
    pub(super) rooms: Mutex<HashMap<RoomId, RoomState>>,
    /// user id -> rooms created. Locked only while `rooms` is held, so the order is fixed.
    pub(super) created: Mutex<HashMap<String, u32>>,
}

impl MemoryHistoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

pub(super) fn new_room_state(room: Room) -> RoomState {
    RoomState {
        room,
        created_by: None,
        members: HashSet::new(),
        people: RoomPeople::default(),
        messages: Vec::new(),
        by_client_id: HashMap::new(),
        reactions: HashMap::new(),
    }
}

#[async_trait]
impl RoomStore for MemoryHistoryStore {
    async fn create_room_within(
        &self,
        room: &NewRoom,
        creator: &UserRef,
        max_created: u32,
    ) -> Result<Room, StoreError> {
        let mut rooms = lock(&self.rooms);
        if rooms.contains_key(&room.id) {
            return Err(StoreError::Conflict("room"));
        }
        let mut created = lock(&self.created);
        let count = created.entry(creator.id.clone()).or_default();
        if *count >= max_created {
            return Err(StoreError::LimitExceeded(limits::CREATED_TOO_MANY));
        }
        *count += 1;
        let stored = Room {
            id: room.id.clone(),
            name: room.name.clone(),
            private: room.private,
            created_at: OffsetDateTime::now_utc(),
            kind: RoomKind::Room,
            read_receipts: room.read_receipts,
        };
        let mut state = new_room_state(stored.clone());
        if room.private {
            state.add_member(&creator.id, Some(&creator.name), Role::Owner);
        } else {
            state.created_by = Some(creator.id.clone());
        }
        rooms.insert(room.id.clone(), state);
        Ok(stored)
    }

    async fn ensure_public_room(&self, id: &RoomId) -> Result<Room, StoreError> {
        let mut rooms = lock(&self.rooms);
        let state = rooms.entry(id.clone()).or_insert_with(|| {
            new_room_state(Room {
                id: id.clone(),
                name: id.to_string(),
                private: false,
                created_at: OffsetDateTime::now_utc(),
                kind: RoomKind::Room,
                read_receipts: false,
            })
        });
        Ok(state.room.clone())
    }

    async fn get_room(&self, id: &RoomId) -> Result<Option<Room>, StoreError> {
        Ok(lock(&self.rooms).get(id).map(|s| s.room.clone()))
    }

    async fn add_member(&self, room: &RoomId, user_id: &str) -> Result<(), StoreError> {
        let mut rooms = lock(&self.rooms);
        let state = rooms.get_mut(room).ok_or(StoreError::NotFound("room"))?;
        state.add_member(user_id, None, Role::Member);
        Ok(())
    }

    async fn room_access(&self, room: &RoomId, user_id: &str) -> Result<RoomAccess, StoreError> {
        Ok(match lock(&self.rooms).get(room) {
            None => RoomAccess::Missing,
            Some(s) if s.room.private && !s.members.contains(user_id) => RoomAccess::Denied,
            Some(_) => RoomAccess::Allowed,
        })
    }

    async fn history(
        &self,
        room: &RoomId,
        query: &HistoryQuery,
        viewer: &str,
    ) -> Result<HistoryPage, StoreError> {
        let rooms = lock(&self.rooms);
        let state = rooms.get(room).ok_or(StoreError::NotFound("room"))?;
        let all = &state.messages;
        let limit = query.limit as usize;
        let (slice, has_more) = match query.cursor {
            HistoryCursor::Latest => tail(all, limit),
            HistoryCursor::Before(b) => {
                let end = all.partition_point(|m| m.seq < b);
                tail(&all[..end], limit)
            }
            HistoryCursor::After(a) => {
                let start = all.partition_point(|m| m.seq <= a);
                let rest = &all[start..];
                (&rest[..rest.len().min(limit)], rest.len() > limit)
            }
        };
        Ok(HistoryPage {
            messages: state.decorate(slice, viewer),
            has_more,
        })
    }

    async fn visible_rooms(&self, user_id: &str, limit: u32) -> Result<Vec<Room>, StoreError> {
        let rooms = lock(&self.rooms);
        let mut visible: Vec<Room> = rooms
            .values()
            .filter(|s| !s.room.private || s.members.contains(user_id))
            .map(|s| s.room.clone())
            .collect();
        visible.sort_by(|a, b| a.id.cmp(&b.id));
        visible.truncate(limit as usize);
        Ok(visible)
    }
}

#[async_trait]
impl HistoryStore for MemoryHistoryStore {
    async fn commit_message(&self, msg: &NewMessage) -> Result<Commit, StoreError> {
        let mut rooms = lock(&self.rooms);
        let state = rooms
            .get_mut(&msg.room)
            .ok_or(StoreError::NotFound("room"))?;
        let key = (msg.sender.id.clone(), msg.client_msg_id.to_string());
        if let Some(&i) = state.by_client_id.get(&key) {
            return Ok(Commit::Duplicate(state.messages[i].clone()));
        }
        let reply_to = msg.reply_to.map(|seq| state.reply_ref(seq)).transpose()?;
        let mut stored = ChatMessage::plain(
            msg.room.clone(),
            state.messages.len() as i64 + 1,
            msg.sender.clone(),
            msg.body.clone(),
            msg.client_msg_id.clone(),
            OffsetDateTime::now_utc(),
        );
        stored.reply_to = reply_to;
        state.by_client_id.insert(key, state.messages.len());
        state.messages.push(stored.clone());
        Ok(Commit::New(stored))
    }

    async fn committed(
        &self,
        room: &RoomId,
        user_id: &str,
        client_msg_id: &ClientMsgId,
    ) -> Result<Option<ChatMessage>, StoreError> {
        let rooms = lock(&self.rooms);
        let Some(state) = rooms.get(room) else {
            return Ok(None);
        };
        let key = (user_id.to_owned(), client_msg_id.to_string());
        Ok(state
            .by_client_id
            .get(&key)
            .map(|&i| state.messages[i].clone()))
    }

    async fn commit_change(&self, change: &NewChange) -> Result<Commit, StoreError> {
        let mut rooms = lock(&self.rooms);
        let state = rooms
            .get_mut(&change.room)
            .ok_or(StoreError::NotFound("room"))?;
        state.commit_change(change)
    }

    async fn react(&self, reaction: &NewReaction) -> Result<ReactionUpdate, StoreError> {
        let mut rooms = lock(&self.rooms);
        let state = rooms
            .get_mut(&reaction.room)
            .ok_or(StoreError::NotFound(super::refusals::NO_MESSAGE))?;
        state.react(reaction)
    }
}

/// The last `limit` items, and whether older ones remain.
fn tail<T>(items: &[T], limit: usize) -> (&[T], bool) {
    let start = items.len().saturating_sub(limit);
    (&items[start..], start > 0)
}

struct StoredRefresh {
    user_id: String,
    family: uuid::Uuid,
    expires_at: OffsetDateTime,
    spent: bool,
}

#[derive(Default)]
struct UserState {
    /// id -> account.
    users: HashMap<String, UserRecord>,
    /// lower-case username -> id, the uniqueness index (usernames are one account whatever
    /// their case).
    by_name: HashMap<String, String>,
    /// token hash -> token.
    refresh: HashMap<String, StoredRefresh>,
    /// Revoked families: every token in them is dead.
    revoked: HashSet<uuid::Uuid>,
    /// key -> (window end, failures in the window).
    attempts: HashMap<String, (OffsetDateTime, u32)>,
}

/// In-memory [`UserStore`] and [`AttemptStore`].
#[derive(Default)]
pub struct MemoryUserStore {
    state: Mutex<UserState>,
}

impl MemoryUserStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl UserStore for MemoryUserStore {
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        let key = user.username.to_lowercase();
        if s.by_name.contains_key(&key) || s.users.contains_key(&user.id) {
            return Err(StoreError::Conflict("user"));
        }
        s.by_name.insert(key, user.id.clone());
        s.users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let s = lock(&self.state);
        Ok(s.by_name
            .get(&username.to_lowercase())
            .and_then(|id| s.users.get(id))
            .cloned())
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(lock(&self.state).users.get(id).cloned())
    }

    async fn put_refresh_token(&self, token: &NewRefreshToken) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        if s.refresh.contains_key(&token.hash) {
            return Err(StoreError::Conflict("refresh token"));
        }
        s.refresh.insert(
            token.hash.clone(),
            StoredRefresh {
                user_id: token.user_id.clone(),
                family: token.family,
                expires_at: token.expires_at,
                spent: false,
            },
        );
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented: &str,
        successor_hash: &str,
        successor_expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut s = lock(&self.state);
        let Some(old) = s.refresh.get(presented) else {
            return Ok(Rotation::Invalid);
        };
        let (user_id, family) = (old.user_id.clone(), old.family);
        if s.revoked.contains(&family) || old.expires_at <= now {
            return Ok(Rotation::Invalid);
        }
        if old.spent {
            s.revoked.insert(family);
            return Ok(Rotation::Reused { user_id, family });
        }
        if s.refresh.contains_key(successor_hash) {
            return Err(StoreError::Conflict("refresh token"));
        }
        if let Some(old) = s.refresh.get_mut(presented) {
            old.spent = true;
        }
        s.refresh.insert(
            successor_hash.to_owned(),
            StoredRefresh {
                user_id: user_id.clone(),
                family,
                expires_at: successor_expires_at,
                spent: false,
            },
        );
        Ok(Rotation::Rotated { user_id, family })
    }

    async fn revoke_refresh_family(&self, presented: &str) -> Result<Option<String>, StoreError> {
        let mut s = lock(&self.state);
        let Some((family, user_id)) = s
            .refresh
            .get(presented)
            .map(|t| (t.family, t.user_id.clone()))
        else {
            return Ok(None);
        };
        s.revoked.insert(family);
        Ok(Some(user_id))
    }

    async fn prune_refresh_tokens(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut s = lock(&self.state);
        let before = s.refresh.len();
        s.refresh.retain(|_, t| t.expires_at > now);
        let pruned = (before - s.refresh.len()) as u64;
        let live: HashSet<uuid::Uuid> = s.refresh.values().map(|t| t.family).collect();
        s.revoked.retain(|f| live.contains(f));
        Ok(pruned)
    }
}

#[async_trait]
impl AttemptStore for MemoryUserStore {
    async fn attempts(&self, key: &str, now: OffsetDateTime) -> Result<Attempts, StoreError> {
        Ok(match lock(&self.state).attempts.get(key) {
            Some(&(ends, count)) if ends > now => Attempts {
                count,
                window_ends: ends,
            },
            _ => Attempts {
                count: 0,
                window_ends: now,
            },
        })
    }

    async fn record_failure(
        &self,
        key: &str,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> Result<Attempts, StoreError> {
        let mut s = lock(&self.state);
        let entry = s.attempts.entry(key.to_owned()).or_insert((now, 0));
        if entry.0 <= now {
            *entry = (now + window, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        Ok(Attempts {
            count: entry.1,
            window_ends: entry.0,
        })
    }

    async fn clear(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.state).attempts.remove(key);
        Ok(())
    }

    async fn forgive(&self, key: &str) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        if let Some(entry) = s.attempts.get_mut(key) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                s.attempts.remove(key);
            }
        }
        Ok(())
    }

    async fn prune(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut s = lock(&self.state);
        let before = s.attempts.len();
        s.attempts.retain(|_, (ends, _)| *ends > now);
        Ok((before - s.attempts.len()) as u64)
    }
}
