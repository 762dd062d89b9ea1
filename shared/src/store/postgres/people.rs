//! The PostgreSQL [`PeopleStore`] of [`PostgresHistoryStore`]: `room_members.role` and
//! `user_name`, `direct_rooms`, `read_state` (`infra/migrations/0006_read_state_roles.sql`).
//!
//! Read marks are one upsert that only ever raises `last_read` and clamps it to the room's
//! `last_seq`; direct rooms are one transaction that inserts the room or finds it, so two
//! concurrent opens of one pair converge (the second insert waits for the first's commit,
//! then finds its row).

use async_trait::async_trait;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::PostgresHistoryStore;
use super::history::{ROOM_COLUMNS, room_from_row};
use crate::error::StoreError;
use crate::protocol::{RoomId, UserRef};
use crate::store::{PeopleStore, ReadMark, Role, Room, RoomEntry, RoomMember};

fn role_from(raw: &str) -> Result<Role, StoreError> {
    Role::parse(raw).ok_or_else(|| StoreError::Corrupt("member role".into()))
}

/// A room list row: the room's six columns, then `last_seq`, the caller's role and last-read
/// seq, and the direct pair (NULL for other rooms).
fn entry_from_row(r: &Row, user_id: &str) -> Result<RoomEntry, StoreError> {
    let room = room_from_row(r)?;
    let role = r.get::<_, Option<&str>>(7).map(role_from).transpose()?;
    let pair: Option<(String, String, String, String)> = r
        .get::<_, Option<String>>(9)
        .map(|a| (a, r.get(10), r.get(11), r.get(12)));
    let peer = pair.map(|(a, name_a, b, name_b)| {
        if a == user_id {
            UserRef {
                id: b,
                name: name_b,
            }
        } else {
            UserRef {
                id: a,
                name: name_a,
            }
        }
    });
    Ok(RoomEntry {
        room,
        role,
        last_seq: r.get(6),
        last_read: r.get(8),
        peer,
    })
}

#[async_trait]
impl PeopleStore for PostgresHistoryStore {
    async fn room_list(
        &self,
        user_id: &str,
        after: Option<&RoomId>,
        limit: u32,
    ) -> Result<Vec<RoomEntry>, StoreError> {
        let conn = self.db.session("room list").await?;
        // Every room id is greater than the empty string.
        let after = after.map_or("", RoomId::as_str);
        let rows = conn
            .query(
                "SELECT r.id, r.name, r.private, r.created_at, r.kind, r.read_receipts,
                        r.last_seq, m.role, COALESCE(rs.last_read, 0),
                        d.user_a, d.name_a, d.user_b, d.name_b
                 FROM rooms r
                 LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $1
                 LEFT JOIN read_state rs ON rs.room_id = r.id AND rs.user_id = $1
                 LEFT JOIN direct_rooms d ON d.room_id = r.id
                 WHERE (NOT r.private OR m.user_id IS NOT NULL) AND r.id > $2
                 ORDER BY r.id LIMIT $3",
                &[&user_id, &after, &i64::from(limit)],
            )
            .await?;
        rows.iter().map(|r| entry_from_row(r, user_id)).collect()
    }

    async fn member_role(&self, room: &RoomId, user_id: &str) -> Result<Option<Role>, StoreError> {
        let conn = self.db.session("member role").await?;
        let row = conn
            .query_opt(
                "SELECT role FROM room_members WHERE room_id = $1 AND user_id = $2",
                &[&room.as_str(), &user_id],
            )
            .await?;
        row.map(|r| role_from(r.get(0))).transpose()
    }

    async fn put_member(
        &self,
        room: &RoomId,
        user_id: &str,
        name: Option<&str>,
    ) -> Result<(), StoreError> {
        let conn = self.db.session("put member").await?;
        let result = conn
            .try_execute(
                "INSERT INTO room_members (room_id, user_id, user_name) VALUES ($1, $2, $3)
                 ON CONFLICT (room_id, user_id) DO UPDATE
                 SET user_name = COALESCE(EXCLUDED.user_name, room_members.user_name)",
                &[&room.as_str(), &user_id, &name],
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

    async fn member_list(
        &self,
        room: &RoomId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RoomMember>, StoreError> {
        let conn = self.db.session("member list").await?;
        let rows = conn
            .query(
                "SELECT m.user_id, m.user_name, m.role, COALESCE(rs.last_read, 0)
                 FROM room_members m
                 LEFT JOIN read_state rs ON rs.room_id = m.room_id AND rs.user_id = m.user_id
                 WHERE m.room_id = $1 AND m.user_id > $2
                 ORDER BY m.user_id LIMIT $3",
                &[&room.as_str(), &after.unwrap_or(""), &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RoomMember {
                    user_id: r.get(0),
                    name: r.get(1),
                    role: role_from(r.get(2))?,
                    last_read: r.get(3),
                })
            })
            .collect()
    }

    async fn remove_member(
        &self,
        room: &RoomId,
        user_id: &str,
    ) -> Result<Option<RoomMember>, StoreError> {
        let mut conn = self.db.session("remove member").await?;
        let tx = conn.transaction().await?;
        // The room's row lock orders removals of one room, so two owners leaving at once
        // cannot both see the other still there and leave the room with no owner.
        tx.query_opt(
            "SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE",
            &[&room.as_str()],
        )
        .await?;
        let Some(gone) = tx
            .query_opt(
                "DELETE FROM room_members m WHERE room_id = $1 AND user_id = $2
                 RETURNING role, user_name,
                   COALESCE((SELECT last_read FROM read_state rs
                             WHERE rs.room_id = m.room_id AND rs.user_id = m.user_id), 0)",
                &[&room.as_str(), &user_id],
            )
            .await?
        else {
            return Ok(None);
        };
        let removed = RoomMember {
            user_id: user_id.to_owned(),
            name: gone.get(1),
            role: role_from(gone.get(0))?,
            last_read: gone.get(2),
        };
        if removed.role == Role::Owner {
            tx.execute(
                "UPDATE room_members SET role = 'owner'
                 WHERE room_id = $1
                   AND user_id = (SELECT user_id FROM room_members WHERE room_id = $1
                                  ORDER BY added_at, user_id LIMIT 1)
                   AND NOT EXISTS (SELECT 1 FROM room_members
                                   WHERE room_id = $1 AND role = 'owner')",
                &[&room.as_str()],
            )
            .await?;
        }
        tx.commit().await?;
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
        let mut conn = self.db.session("open direct room").await?;
        let tx = conn.transaction().await?;
        let name = format!("{}, {}", first.name, second.name);
        let inserted = tx
            .query_opt(
                &format!(
                    "INSERT INTO rooms (id, name, private, kind, read_receipts)
                     VALUES ($1, $2, true, 'direct', true)
                     ON CONFLICT (id) DO NOTHING RETURNING {ROOM_COLUMNS}"
                ),
                &[&id.as_str(), &name],
            )
            .await?;
        let Some(row) = inserted else {
            // Taken: by this pair's direct room (found), or by something else (refused).
            let row = tx
                .query_opt(
                    &format!(
                        "SELECT r.{} FROM rooms r
                         JOIN direct_rooms d ON d.room_id = r.id
                         WHERE r.id = $1 AND d.user_a = $2 AND d.user_b = $3",
                        ROOM_COLUMNS.replace(", ", ", r.")
                    ),
                    &[&id.as_str(), &first.id, &second.id],
                )
                .await?
                .ok_or(StoreError::Conflict("room"))?;
            return Ok((room_from_row(&row)?, false));
        };
        let room = room_from_row(&row)?;
        // Counted as any creation; dropping the transaction at the cap undoes the room.
        super::history::count_created(&tx, &a.id, max_created).await?;
        tx.execute(
            "INSERT INTO direct_rooms (room_id, user_a, name_a, user_b, name_b)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &id.as_str(),
                &first.id,
                &first.name,
                &second.id,
                &second.name,
            ],
        )
        .await?;
        tx.execute(
            "INSERT INTO room_members (room_id, user_id, user_name) VALUES ($1, $2, $3), ($1, $4, $5)",
            &[&id.as_str(), &first.id, &first.name, &second.id, &second.name],
        )
        .await?;
        tx.commit().await?;
        Ok((room, true))
    }

    async fn mark_read(
        &self,
        room: &RoomId,
        user_id: &str,
        seq: i64,
    ) -> Result<ReadMark, StoreError> {
        let conn = self.db.session("mark read").await?;
        // A row back: inserted or raised. None: the room is missing, or the mark is not above
        // the one in force (read below).
        let raised = conn
            .query_opt(
                "INSERT INTO read_state (room_id, user_id, last_read)
                 SELECT r.id, $2, LEAST(GREATEST($3::bigint, 0), r.last_seq) FROM rooms r WHERE r.id = $1
                 ON CONFLICT (room_id, user_id) DO UPDATE
                 SET last_read = EXCLUDED.last_read, updated_at = now()
                 WHERE read_state.last_read < EXCLUDED.last_read
                 RETURNING last_read, (SELECT last_seq FROM rooms WHERE id = $1)",
                &[&room.as_str(), &user_id, &seq],
            )
            .await?;
        if let Some(r) = raised {
            let last_read: i64 = r.get(0);
            return Ok(ReadMark {
                last_read,
                last_seq: r.get(1),
                moved: last_read > 0,
            });
        }
        let row = conn
            .query_opt(
                "SELECT COALESCE(rs.last_read, 0), r.last_seq FROM rooms r
                 LEFT JOIN read_state rs ON rs.room_id = r.id AND rs.user_id = $2
                 WHERE r.id = $1",
                &[&room.as_str(), &user_id],
            )
            .await?
            .ok_or(StoreError::NotFound("room"))?;
        Ok(ReadMark {
            last_read: row.get(0),
            last_seq: row.get(1),
            moved: false,
        })
    }
}
