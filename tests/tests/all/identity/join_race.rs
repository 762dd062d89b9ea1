//! A `joinRoom` that races the creation of a private room of the same id must not slip into
//! it. The race: `joinRoom` finds no room, so it creates a public one; in between, `POST
//! /rooms` creates the room as private. The creation of the public room then finds the private
//! one and hands it back. The interleaving is forced by a store wrapper that creates the
//! private room right after the joiner's access check found none.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use hubbub_core::error::StoreError;
use hubbub_core::protocol::{ChatMessage, ClientMsgId, HistoryQuery, RoomId, UserRef};
use hubbub_core::store::{
    Commit, HistoryPage, NewChange, NewMessage, NewReaction, NewRoom, PeopleStore, ReactionUpdate,
    ReadMark, Role, Room, RoomAccess, RoomEntry, RoomMember, RoomStore,
};
use hubbub_tests::contract::{private_room, user};

use super::*;

/// A history store whose first "no such room" answer lets a private room of that id be
/// created (by carol) before the caller gets the answer.
struct CreatedInBetween {
    inner: Arc<dyn HistoryStore>,
    fired: AtomicBool,
}

#[async_trait]
impl RoomStore for CreatedInBetween {
    async fn create_room_within(
        &self,
        room: &NewRoom,
        creator: &UserRef,
        max_created: u32,
    ) -> Result<Room, StoreError> {
        self.inner
            .create_room_within(room, creator, max_created)
            .await
    }

    async fn ensure_public_room(&self, id: &RoomId) -> Result<Room, StoreError> {
        self.inner.ensure_public_room(id).await
    }

    async fn get_room(&self, id: &RoomId) -> Result<Option<Room>, StoreError> {
        self.inner.get_room(id).await
    }

    async fn add_member(&self, room: &RoomId, user_id: &str) -> Result<(), StoreError> {
        self.inner.add_member(room, user_id).await
    }

    async fn room_access(&self, room: &RoomId, user_id: &str) -> Result<RoomAccess, StoreError> {
        let access = self.inner.room_access(room, user_id).await?;
        if access == RoomAccess::Missing && !self.fired.swap(true, Ordering::SeqCst) {
            self.inner
                .create_room(&private_room(room.as_str()), &user("carol"))
                .await?;
        }
        Ok(access)
    }

    async fn history(
        &self,
        room: &RoomId,
        query: &HistoryQuery,
        viewer: &str,
    ) -> Result<HistoryPage, StoreError> {
        self.inner.history(room, query, viewer).await
    }

    async fn visible_rooms(&self, user_id: &str, limit: u32) -> Result<Vec<Room>, StoreError> {
        self.inner.visible_rooms(user_id, limit).await
    }
}

#[async_trait]
impl HistoryStore for CreatedInBetween {
    async fn commit_message(&self, msg: &NewMessage) -> Result<Commit, StoreError> {
        self.inner.commit_message(msg).await
    }

    async fn committed(
        &self,
        room: &RoomId,
        user_id: &str,
        client_msg_id: &ClientMsgId,
    ) -> Result<Option<ChatMessage>, StoreError> {
        self.inner.committed(room, user_id, client_msg_id).await
    }

    async fn commit_change(&self, change: &NewChange) -> Result<Commit, StoreError> {
        self.inner.commit_change(change).await
    }

    async fn react(&self, reaction: &NewReaction) -> Result<ReactionUpdate, StoreError> {
        self.inner.react(reaction).await
    }
}

#[async_trait]
impl PeopleStore for CreatedInBetween {
    async fn room_list(
        &self,
        user_id: &str,
        after: Option<&RoomId>,
        limit: u32,
    ) -> Result<Vec<RoomEntry>, StoreError> {
        self.inner.room_list(user_id, after, limit).await
    }
    async fn member_role(&self, room: &RoomId, user_id: &str) -> Result<Option<Role>, StoreError> {
        self.inner.member_role(room, user_id).await
    }
    async fn put_member(
        &self,
        room: &RoomId,
        user_id: &str,
        name: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.put_member(room, user_id, name).await
    }
    async fn member_list(
        &self,
        room: &RoomId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RoomMember>, StoreError> {
        self.inner.member_list(room, after, limit).await
    }
    async fn remove_member(
        &self,
        room: &RoomId,
        user_id: &str,
    ) -> Result<Option<RoomMember>, StoreError> {
        self.inner.remove_member(room, user_id).await
    }
    async fn open_direct(
        &self,
        id: &RoomId,
        a: &UserRef,
        b: &UserRef,
        max_created: u32,
    ) -> Result<(Room, bool), StoreError> {
        self.inner.open_direct(id, a, b, max_created).await
    }
    async fn mark_read(
        &self,
        room: &RoomId,
        user_id: &str,
        seq: i64,
    ) -> Result<ReadMark, StoreError> {
        self.inner.mark_read(room, user_id, seq).await
    }
}

async fn race_suite(mut deps: RouteDeps) {
    deps.history = Arc::new(CreatedInBetween {
        inner: deps.history.clone(),
        fired: AtomicBool::new(false),
    });
    connect(&deps, "mallory-1=", "mallory").await;
    let v = join(&deps, "mallory-1=", "mallory", "secret").await;
    assert_error(&v, "forbidden");
    assert_eq!(v["room"], "secret", "{v}");
    let member = deps
        .live
        .connections
        .is_member("mallory-1=", &hubbub_tests::contract::room("secret"))
        .await
        .expect("is_member");
    assert!(!member, "the joiner slipped into the private room");
    // The room stayed private and carol's.
    let room = deps
        .history
        .get_room(&hubbub_tests::contract::room("secret"))
        .await
        .expect("get")
        .expect("exists");
    assert!(room.private);
}

#[tokio::test]
async fn join_racing_a_private_rooms_creation_is_forbidden_on_memory_stores() {
    let (_rec, deps) = memory_deps().await;
    race_suite(deps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_racing_a_private_rooms_creation_is_forbidden_on_postgres_and_dynamodb() {
    let (_rec, deps, _) = real_deps().await;
    race_suite(deps).await;
}
