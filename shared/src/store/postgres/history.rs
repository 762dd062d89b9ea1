//! The PostgreSQL [`HistoryStore`]: rooms, private-room members and messages.
//!
//! `seq` is assigned inside the commit transaction by bumping `rooms.last_seq`: the row lock
//! serialises the senders of one room only, and a rollback gives the number back, so the
//! sequence is gap-free.

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::Database;
use super::messages::{self, message_from_row, select_messages};
use crate::error::StoreError;
use crate::limits;
use crate::protocol::{ChatMessage, ClientMsgId, HistoryCursor, HistoryQuery, RoomId, UserRef};
use crate::store::{
    Commit, HistoryPage, HistoryStore, NewChange, NewMessage, NewReaction, NewRoom, ReactionUpdate,
    Room, RoomAccess, RoomKind, RoomStore,
};

/// PostgreSQL-backed history (see [`Database::history`]).
#[derive(Clone)]
pub struct PostgresHistoryStore {
    pub(super) db: Database,
}

impl PostgresHistoryStore {
    pub(super) fn new(db: Database) -> Self {
        Self { db }
    }
}

/// A room's columns as [`room_from_row`] reads them (also prefixed `r.` in joins).
pub(super) const ROOM_COLUMNS: &str = "id, name, private, created_at, kind, read_receipts";

/// A room from the first six columns of `r`, in [`ROOM_COLUMNS`]' order.
pub(super) fn room_from_row(r: &Row) -> Result<Room, StoreError> {
    Ok(Room {
        id: RoomId::parse(r.get::<_, String>(0))
            .map_err(|_| StoreError::Corrupt("room id".into()))?,
        name: r.get(1),
        private: r.get(2),
        created_at: r.get(3),
        kind: RoomKind::parse(r.get::<_, &str>(4))
            .ok_or_else(|| StoreError::Corrupt("room kind".into()))?,
        read_receipts: r.get(5),
    })
}

#[async_trait]
impl RoomStore for PostgresHistoryStore {
    async fn create_room_within(
        &self,
        room: &NewRoom,
        creator: &UserRef,
        max_created: u32,
    ) -> Result<Room, StoreError> {
        let mut conn = self.db.session("create room").await?;
        let tx = conn.transaction().await?;
        // `created_at` is the database's: the answer then matches every later read to the
        // microsecond PostgreSQL keeps.
        let Some(row) = tx
            .query_opt(
                &format!(
                    "INSERT INTO rooms (id, name, private, created_by, read_receipts)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (id) DO NOTHING RETURNING {ROOM_COLUMNS}"
                ),
                &[
                    &room.id.as_str(),
                    &room.name,
                    &room.private,
                    // A private room's owner is its owner member (below), never `created_by`
                    // (migration 0007).
                    &(!room.private).then_some(creator.id.as_str()),
                    &(room.private && room.read_receipts),
                ],
            )
            .await?
        else {
            return Err(StoreError::Conflict("room"));
        };
        let stored = room_from_row(&row)?;
        // Dropping the transaction when the cap is reached undoes the room too.
        count_created(&tx, &creator.id, max_created).await?;
        if room.private {
            tx.execute(
                "INSERT INTO room_members (room_id, user_id, user_name, role)
                 VALUES ($1, $2, $3, 'owner')",
                &[&room.id.as_str(), &creator.id, &creator.name],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn ensure_public_room(&self, id: &RoomId) -> Result<Room, StoreError> {
        let conn = self.db.session("ensure room").await?;
        let row = conn
            .query_one(
                // The no-op DO UPDATE makes RETURNING yield the existing row too, in one round trip.
                &format!(
                    "INSERT INTO rooms (id, name, private) VALUES ($1, $1, false)
                     ON CONFLICT (id) DO UPDATE SET id = rooms.id
                     RETURNING {ROOM_COLUMNS}"
                ),
                &[&id.as_str()],
            )
            .await?;
        room_from_row(&row)
    }

    async fn get_room(&self, id: &RoomId) -> Result<Option<Room>, StoreError> {
        let conn = self.db.session("get room").await?;
        let row = conn
            .query_opt(
                &format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = $1"),
                &[&id.as_str()],
            )
            .await?;
        row.as_ref().map(room_from_row).transpose()
    }

    async fn add_member(&self, room: &RoomId, user_id: &str) -> Result<(), StoreError> {
        let conn = self.db.session("add member").await?;
        let result = conn
            .try_execute(
                "INSERT INTO room_members (room_id, user_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&room.as_str(), &user_id],
            )
            .await?;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                Err(StoreError::NotFound("room"))
            }
            Err(e) => Err(conn.fail(e)),
        }
    }

    async fn room_access(&self, room: &RoomId, user_id: &str) -> Result<RoomAccess, StoreError> {
        let conn = self.db.session("room access").await?;
        let row = conn
            .query_opt(
                "SELECT r.private,
                        EXISTS (SELECT 1 FROM room_members m
                                WHERE m.room_id = r.id AND m.user_id = $2)
                 FROM rooms r WHERE r.id = $1",
                &[&room.as_str(), &user_id],
            )
            .await?;
        Ok(match row {
            None => RoomAccess::Missing,
            Some(r) if r.get::<_, bool>(0) && !r.get::<_, bool>(1) => RoomAccess::Denied,
            Some(_) => RoomAccess::Allowed,
        })
    }

    async fn history(
        &self,
        room: &RoomId,
        query: &HistoryQuery,
        viewer: &str,
    ) -> Result<HistoryPage, StoreError> {
        let conn = self.db.session("history").await?;
        let limit = i64::from(query.limit);
        // Fetch one extra row to learn whether more exist, without a COUNT.
        let fetch = limit + 1;
        let (sql, bound, ascending) = match query.cursor {
            HistoryCursor::Latest => ("m.seq < $2 ORDER BY m.seq DESC", i64::MAX, false),
            HistoryCursor::Before(b) => ("m.seq < $2 ORDER BY m.seq DESC", b, false),
            HistoryCursor::After(a) => ("m.seq > $2 ORDER BY m.seq ASC", a, true),
        };
        let rows = conn
            .query(
                &format!(
                    "{} WHERE m.room_id = $1 AND {sql} LIMIT $3",
                    select_messages()
                ),
                &[&room.as_str(), &bound, &fetch],
            )
            .await?;
        if rows.is_empty()
            && conn
                .query_opt("SELECT 1 FROM rooms WHERE id = $1", &[&room.as_str()])
                .await?
                .is_none()
        {
            return Err(StoreError::NotFound("room"));
        }
        let has_more = rows.len() as i64 > limit;
        let mut messages = rows
            .iter()
            .take(limit as usize)
            .map(message_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if !ascending {
            messages.reverse();
        }
        messages::with_reactions(&conn, room, &mut messages, viewer).await?;
        Ok(HistoryPage { messages, has_more })
    }

    async fn visible_rooms(&self, user_id: &str, limit: u32) -> Result<Vec<Room>, StoreError> {
        let conn = self.db.session("visible rooms").await?;
        let rows = conn
            .query(
                "SELECT r.id, r.name, r.private, r.created_at, r.kind, r.read_receipts FROM rooms r
                 WHERE NOT r.private
                    OR EXISTS (SELECT 1 FROM room_members m
                               WHERE m.room_id = r.id AND m.user_id = $1)
                 ORDER BY r.id LIMIT $2",
                &[&user_id, &i64::from(limit)],
            )
            .await?;
        rows.iter().map(room_from_row).collect()
    }
}

#[async_trait]
impl HistoryStore for PostgresHistoryStore {
    async fn commit_message(&self, msg: &NewMessage) -> Result<Commit, StoreError> {
        let mut conn = self.db.session("commit message").await?;
        let tx = conn.transaction().await?;
        // Take the room's row lock first: from here on, no other sender of this room can
        // commit, so the duplicate check below cannot race with a concurrent retry.
        let seq: i64 = match tx
            .query_opt(
                "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
                &[&msg.room.as_str()],
            )
            .await?
        {
            Some(row) => row.get(0),
            None => return Err(StoreError::NotFound("room")),
        };
        if let Some(first) =
            messages::by_client_id(&tx, &msg.room, &msg.sender.id, &msg.client_msg_id).await?
        {
            // Dropping `tx` rolls back the seq bump: the retry takes no number.
            return Ok(Commit::Duplicate(first));
        }
        if let Some(target) = msg.reply_to {
            messages::check_reply(&tx, &msg.room, target).await?;
        }
        let id = uuid::Uuid::now_v7();
        tx.execute(
                "INSERT INTO messages (room_id, seq, id, sender_id, sender_name, body, client_msg_id, sent_at, reply_to)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &msg.room.as_str(),
                    &seq,
                    &id,
                    &msg.sender.id,
                    &msg.sender.name,
                    &msg.body.as_str(),
                    &msg.client_msg_id.as_str(),
                    &OffsetDateTime::now_utc(),
                    &msg.reply_to,
                ],
            )
            .await?;
        let stored = messages::load(&tx, &msg.room, seq).await?;
        tx.commit().await?;
        Ok(Commit::New(stored))
    }

    async fn committed(
        &self,
        room: &RoomId,
        user_id: &str,
        client_msg_id: &ClientMsgId,
    ) -> Result<Option<ChatMessage>, StoreError> {
        let conn = self.db.session("committed").await?;
        messages::by_client_id(&conn, room, user_id, client_msg_id).await
    }

    async fn commit_change(&self, change: &NewChange) -> Result<Commit, StoreError> {
        let mut conn = self.db.session("commit change").await?;
        let tx = conn.transaction().await?;
        // The room's row lock first, as a send takes it: changes and sends of one room are
        // serialised, and a rollback gives the seq back. Whether the actor owns the room is
        // read under it too: `remove_member` takes the same lock before it hands ownership on.
        // A private room's owners are its owner members, a public room's is `created_by`
        // (migration 0007: one record per room).
        let Some(row) = tx
            .query_opt(
                "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1
                 RETURNING last_seq,
                   CASE WHEN private
                        THEN EXISTS (SELECT 1 FROM room_members m
                                     WHERE m.room_id = rooms.id AND m.user_id = $2
                                       AND m.role = 'owner')
                        ELSE COALESCE(created_by = $2, false) END",
                &[&change.room.as_str(), &change.actor.id],
            )
            .await?
        else {
            return Err(StoreError::NotFound("room"));
        };
        let (seq, owner): (i64, bool) = (row.get(0), row.get(1));
        if let Some(first) =
            messages::by_client_id(&tx, &change.room, &change.actor.id, &change.client_msg_id)
                .await?
        {
            return Ok(Commit::Duplicate(first));
        }
        let event = messages::apply_change(&tx, change, seq, owner).await?;
        tx.commit().await?;
        Ok(Commit::New(event))
    }

    async fn react(&self, reaction: &NewReaction) -> Result<ReactionUpdate, StoreError> {
        let mut conn = self.db.session("react").await?;
        let tx = conn.transaction().await?;
        let update = messages::react(&tx, reaction).await?;
        tx.commit().await?;
        Ok(update)
    }
}

/// Counts a room created by `user_id` in the transaction `tx`, or fails with `LimitExceeded`
/// ([`limits::CREATED_TOO_MANY`]) when the user has created `max_created` already. Increment
/// first, compare in the same statement: the row lock makes concurrent creations of one user
/// wait for each other, so none passes the cap. No row back means the cap is reached.
pub(super) async fn count_created(
    tx: &super::session::Session<deadpool_postgres::Transaction<'_>>,
    user_id: &str,
    max_created: u32,
) -> Result<(), StoreError> {
    let counted = tx
        .query_opt(
            "INSERT INTO room_quotas (user_id, created) VALUES ($1, 1)
             ON CONFLICT (user_id) DO UPDATE SET created = room_quotas.created + 1
             WHERE room_quotas.created < $2
             RETURNING created",
            &[&user_id, &i64::from(max_created)],
        )
        .await?;
    if counted.is_none() || max_created == 0 {
        return Err(StoreError::LimitExceeded(limits::CREATED_TOO_MANY));
    }
    Ok(())
}
