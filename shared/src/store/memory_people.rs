//! The in-memory [`PeopleStore`] of [`MemoryHistoryStore`]: roles, names, read state and
//! direct pairs kept beside each room's member set, under the same lock, so that it passes
//! the same contract suite as PostgreSQL.

use std::collections::HashMap;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::Room;
use super::memory::{MemoryHistoryStore, RoomState, lock, new_room_state};
use super::people::{PeopleStore, ReadMark, Role, RoomEntry, RoomKind, RoomMember};
use crate::error::StoreError;
use crate::limits;
use crate::protocol::{RoomId, UserRef};

/// What a member is besides being in the room's member set.
struct MemberInfo {
    role: Role,
    name: Option<String>,
    /// Order of addition: the longest-standing member has the smallest.
    order: u64,
}

/// The people side of one room.
#[derive(Default)]
pub(super) struct RoomPeople {
    info: HashMap<String, MemberInfo>,
    next_order: u64,
    /// user id -> last-read seq.
    read: HashMap<String, i64>,
    /// The two people of a direct room, ordered by id.
    direct: Option<(UserRef, UserRef)>,
}

impl RoomState {
    /// Adds a member (idempotent: an existing one keeps its role, and its name unless one is
    /// given).
    pub(super) fn add_member(&mut self, user_id: &str, name: Option<&str>, role: Role) {
        self.members.insert(user_id.to_owned());
        let people = &mut self.people;
        match people.info.get_mut(user_id) {
            Some(info) => {
                if let Some(name) = name {
                    info.name = Some(name.to_owned());
                }
            }
            None => {
                people.next_order += 1;
                people.info.insert(
                    user_id.to_owned(),
                    MemberInfo {
                        role,
                        name: name.map(str::to_owned),
                        order: people.next_order,
                    },
                );
            }
        }
    }

    /// Whether `user_id` owns the room: an owner member of a private room, the creator of a
    /// public one (one record per room, as in PostgreSQL's migration 0007).
    pub(super) fn owned_by(&self, user_id: &str) -> bool {
        if self.room.private {
            self.people
                .info
                .get(user_id)
                .is_some_and(|i| i.role == Role::Owner)
        } else {
            self.created_by.as_deref() == Some(user_id)
        }
    }

    fn last_seq(&self) -> i64 {
        self.messages.len() as i64
    }

    fn entry(&self, user_id: &str) -> RoomEntry {
        let peer = self.people.direct.as_ref().map(|(a, b)| {
            if a.id == user_id {
                b.clone()
            } else {
                a.clone()
            }
        });
        RoomEntry {
            room: self.room.clone(),
            role: self.people.info.get(user_id).map(|i| i.role),
            last_seq: self.last_seq(),
            last_read: self.people.read.get(user_id).copied().unwrap_or(0),
            peer,
        }
    }
}

#[async_trait]
impl PeopleStore for MemoryHistoryStore {
    async fn room_list(
        &self,
        user_id: &str,
        after: Option<&RoomId>,
        limit: u32,
    ) -> Result<Vec<RoomEntry>, StoreError> {
        let rooms = lock(&self.rooms);
        let mut visible: Vec<&RoomState> = rooms
            .values()
            .filter(|s| !s.room.private || s.members.contains(user_id))
            .filter(|s| after.is_none_or(|a| s.room.id > *a))
            .collect();
        visible.sort_by(|a, b| a.room.id.cmp(&b.room.id));
        Ok(visible
            .into_iter()
            .take(limit as usize)
            .map(|s| s.entry(user_id))
            .collect())
    }

    async fn member_role(&self, room: &RoomId, user_id: &str) -> Result<Option<Role>, StoreError> {
        Ok(lock(&self.rooms)
            .get(room)
            .and_then(|s| s.people.info.get(user_id).map(|i| i.role)))
    }

    async fn put_member(
        &self,
        room: &RoomId,
        user_id: &str,
        name: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut rooms = lock(&self.rooms);
        let state = rooms.get_mut(room).ok_or(StoreError::NotFound("room"))?;
        state.add_member(user_id, name, Role::Member);
        Ok(())
    }

    async fn member_list(
        &self,
        room: &RoomId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RoomMember>, StoreError> {
        let rooms = lock(&self.rooms);
        let Some(state) = rooms.get(room) else {
            return Ok(Vec::new());
        };
        let mut members: Vec<RoomMember> = state
            .people
            .info
            .iter()
            .filter(|(id, _)| after.is_none_or(|a| id.as_str() > a))
            .map(|(id, info)| RoomMember {
                user_id: id.clone(),
                name: info.name.clone(),
                role: info.role,
                last_read: state.people.read.get(id).copied().unwrap_or(0),
            })
            .collect();
        members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        members.truncate(limit as usize);
        Ok(members)
    }

    async fn remove_member(
        &self,
        room: &RoomId,
        user_id: &str,
    ) -> Result<Option<RoomMember>, StoreError> {
        let mut rooms = lock(&self.rooms);
        let Some(state) = rooms.get_mut(room) else {
            return Ok(None);
        };
        state.members.remove(user_id);
        let Some(gone) = state.people.info.remove(user_id) else {
            return Ok(None);
        };
        let removed = RoomMember {
            user_id: user_id.to_owned(),
            name: gone.name.clone(),
            role: gone.role,
            last_read: state.people.read.get(user_id).copied().unwrap_or(0),
        };
        let info = &mut state.people.info;
        if gone.role == Role::Owner
            && !info.values().any(|i| i.role == Role::Owner)
            && let Some(next) = info.values_mut().min_by_key(|i| i.order)
        {
            next.role = Role::Owner;
        }
        Ok(Some(removed))
    }

    async fn open_direct(
        &self,
        id: &RoomId,
        a: &UserRef,
        b: &UserRef,
        max_created: u32,
    ) -> Result<(Room, bool), StoreError> {
        let (first, second) = if a.id < b.id { (a, b) } else { (b, a) };
        let mut rooms = lock(&self.rooms);
        if let Some(state) = rooms.get(id) {
            let same_pair = state
                .people
                .direct
                .as_ref()
                .is_some_and(|(x, y)| x.id == first.id && y.id == second.id);
            return if same_pair {
                Ok((state.room.clone(), false))
            } else {
                Err(StoreError::Conflict("room"))
            };
        }
        let mut created = lock(&self.created);
        let count = created.entry(a.id.clone()).or_default();
        if *count >= max_created {
            return Err(StoreError::LimitExceeded(limits::CREATED_TOO_MANY));
        }
        *count += 1;
        let room = Room {
            id: id.clone(),
            name: format!("{}, {}", first.name, second.name),
            private: true,
            created_at: OffsetDateTime::now_utc(),
            kind: RoomKind::Direct,
            read_receipts: true,
        };
        let mut state = new_room_state(room.clone());
        state.add_member(&first.id, Some(&first.name), Role::Member);
        state.add_member(&second.id, Some(&second.name), Role::Member);
        state.people.direct = Some((first.clone(), second.clone()));
        rooms.insert(id.clone(), state);
        Ok((room, true))
    }

    async fn mark_read(
        &self,
        room: &RoomId,
        user_id: &str,
        seq: i64,
    ) -> Result<ReadMark, StoreError> {
        let mut rooms = lock(&self.rooms);
        let state = rooms.get_mut(room).ok_or(StoreError::NotFound("room"))?;
        let last_seq = state.last_seq();
        let wanted = seq.clamp(0, last_seq);
        let current = state.people.read.entry(user_id.to_owned()).or_insert(0);
        let moved = wanted > *current;
        if moved {
            *current = wanted;
        }
        Ok(ReadMark {
            last_read: *current,
            last_seq,
            moved,
        })
    }
}
