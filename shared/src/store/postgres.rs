//! PostgreSQL [`HistoryStore`], [`UserStore`] and [`AttemptStore`] over a deadpool connection
//! pool (one pool per process: the stores share it).
//!
//! `seq` is assigned inside the commit transaction by bumping `rooms.last_seq`: the row lock
//! serialises the senders of one room only, and a rollback gives the number back, so the
//! sequence is gap-free. See `infra/migrations/` for the schema.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use time::OffsetDateTime;
use tokio_postgres::{NoTls, Row, error::SqlState};

use super::migrate::{self, MigrateError};
use super::{
    AttemptStore, Attempts, Commit, HistoryPage, HistoryStore, NewMessage, NewRefreshToken, Room,
    RoomAccess, Rotation, UserRecord, UserStore,
};
use crate::config::PostgresConfig;
use crate::error::StoreError;
use crate::protocol::{
    ChatMessage, ClientMsgId, HistoryCursor, HistoryQuery, MessageBody, RoomId, UserRef,
};

/// How long to wait for a pooled connection or a new one. API Gateway gives an integration
/// 29 s; a database that cannot hand out a connection in 5 s should turn into a quick
/// `unavailable` the client can retry, not a timeout.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// PostgreSQL-backed history.
#[derive(Clone)]
pub struct PostgresHistoryStore {
    pool: Pool,
}

fn db_err(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::unavailable(op, e)
}

fn pool_err(op: &'static str) -> impl Fn(deadpool_postgres::PoolError) -> StoreError {
    move |e| StoreError::unavailable(op, e)
}

const MESSAGE_COLUMNS: &str =
    "room_id, seq, id, sender_id, sender_name, body, client_msg_id, sent_at";

fn message_from_row(r: &Row) -> Result<ChatMessage, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("message {what}"));
    Ok(ChatMessage {
        room: RoomId::parse(r.get::<_, String>(0)).map_err(|_| corrupt("room id"))?,
        seq: r.get(1),
        id: r.get(2),
        sender: UserRef {
            id: r.get(3),
            name: r.get(4),
        },
        body: MessageBody::parse(r.get::<_, String>(5)).map_err(|_| corrupt("body"))?,
        client_msg_id: ClientMsgId::parse(r.get::<_, String>(6))
            .map_err(|_| corrupt("client id"))?,
        sent_at: r.get(7),
    })
}

fn room_from_row(r: &Row) -> Result<Room, StoreError> {
    Ok(Room {
        id: RoomId::parse(r.get::<_, String>(0))
            .map_err(|_| StoreError::Corrupt("room id".into()))?,
        name: r.get(1),
        private: r.get(2),
        created_at: r.get(3),
    })
}

impl PostgresHistoryStore {
    /// A store over a new pool of at most `max_connections`. Connects lazily.
    ///
    /// In Lambda one connection is right (an execution environment runs one invocation at a
    /// time); hubbub-local serves many connections and wants a few.
    pub fn connect(cfg: &PostgresConfig, max_connections: usize) -> Result<Self, StoreError> {
        let pg: tokio_postgres::Config = cfg
            .url
            .parse()
            .map_err(|e| StoreError::unavailable("parse DATABASE_URL", e))?;
        let mgr = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| StoreError::unavailable("build pool", e))?;
        Ok(Self { pool })
    }

    /// The connection pool, to share with a [`PostgresUserStore`] on the same database.
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    /// Applies pending migrations (see [`migrate`]).
    pub async fn migrate(&self) -> Result<Vec<i64>, MigrateOnPoolError> {
        let mut conn = self.pool.get().await?;
        let client: &mut tokio_postgres::Client = &mut conn;
        Ok(migrate::run(client).await?)
    }

    async fn conn(&self, op: &'static str) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_err(op))
    }
}

/// Migrating through the pool failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateOnPoolError {
    #[error("could not get a database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
}

#[async_trait]
impl HistoryStore for PostgresHistoryStore {
    async fn create_room(&self, room: &Room, creator: &UserRef) -> Result<(), StoreError> {
        const OP: &str = "create room";
        let mut conn = self.conn(OP).await?;
        let tx = conn.transaction().await.map_err(db_err(OP))?;
        let inserted = tx
            .execute(
                "INSERT INTO rooms (id, name, private, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &room.id.as_str(),
                    &room.name,
                    &room.private,
                    &room.created_at,
                ],
            )
            .await
            .map_err(db_err(OP))?;
        if inserted == 0 {
            return Err(StoreError::Conflict("room"));
        }
        if room.private {
            tx.execute(
                "INSERT INTO room_members (room_id, user_id) VALUES ($1, $2)",
                &[&room.id.as_str(), &creator.id],
            )
            .await
            .map_err(db_err(OP))?;
        }
        tx.commit().await.map_err(db_err(OP))
    }

    async fn ensure_public_room(&self, id: &RoomId) -> Result<Room, StoreError> {
        const OP: &str = "ensure room";
        let conn = self.conn(OP).await?;
        let stmt = conn
            .prepare_cached(
                // The no-op DO UPDATE makes RETURNING yield the existing row too, in one round trip.
                "INSERT INTO rooms (id, name, private) VALUES ($1, $1, false)
                 ON CONFLICT (id) DO UPDATE SET id = rooms.id
                 RETURNING id, name, private, created_at",
            )
            .await
            .map_err(db_err(OP))?;
        let row = conn
            .query_one(&stmt, &[&id.as_str()])
            .await
            .map_err(db_err(OP))?;
        room_from_row(&row)
    }

    async fn get_room(&self, id: &RoomId) -> Result<Option<Room>, StoreError> {
        const OP: &str = "get room";
        let conn = self.conn(OP).await?;
        let stmt = conn
            .prepare_cached("SELECT id, name, private, created_at FROM rooms WHERE id = $1")
            .await
            .map_err(db_err(OP))?;
        let row = conn
            .query_opt(&stmt, &[&id.as_str()])
            .await
            .map_err(db_err(OP))?;
        row.as_ref().map(room_from_row).transpose()
    }

    async fn add_member(&self, room: &RoomId, user_id: &str) -> Result<(), StoreError> {
        const OP: &str = "add member";
        let conn = self.conn(OP).await?;
        let result = conn
            .execute(
                "INSERT INTO room_members (room_id, user_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&room.as_str(), &user_id],
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                Err(StoreError::NotFound("room"))
            }
            Err(e) => Err(StoreError::unavailable(OP, e)),
        }
    }

    async fn room_access(&self, room: &RoomId, user_id: &str) -> Result<RoomAccess, StoreError> {
        const OP: &str = "room access";
        let conn = self.conn(OP).await?;
        let stmt = conn
            .prepare_cached(
                "SELECT r.private,
                        EXISTS (SELECT 1 FROM room_members m
                                WHERE m.room_id = r.id AND m.user_id = $2)
                 FROM rooms r WHERE r.id = $1",
            )
            .await
            .map_err(db_err(OP))?;
        let row = conn
            .query_opt(&stmt, &[&room.as_str(), &user_id])
            .await
            .map_err(db_err(OP))?;
        Ok(match row {
            None => RoomAccess::Missing,
            Some(r) if r.get::<_, bool>(0) && !r.get::<_, bool>(1) => RoomAccess::Denied,
            Some(_) => RoomAccess::Allowed,
        })
    }

    async fn commit_message(&self, msg: &NewMessage) -> Result<Commit, StoreError> {
        const OP: &str = "commit message";
        let mut conn = self.conn(OP).await?;
        let select_existing = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE room_id = $1 AND sender_id = $2 AND client_msg_id = $3"
        );
        let tx = conn.transaction().await.map_err(db_err(OP))?;
        // Take the room's row lock first: from here on, no other sender of this room can
        // commit, so the duplicate check below cannot race with a concurrent retry.
        let seq: i64 = match tx
            .query_opt(
                "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
                &[&msg.room.as_str()],
            )
            .await
            .map_err(db_err(OP))?
        {
            Some(row) => row.get(0),
            None => return Err(StoreError::NotFound("room")),
        };
        let key: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [
            &msg.room.as_str(),
            &msg.sender.id,
            &msg.client_msg_id.as_str(),
        ];
        if let Some(row) = tx
            .query_opt(&select_existing, &key)
            .await
            .map_err(db_err(OP))?
        {
            // Dropping `tx` rolls back the seq bump: the retry takes no number.
            return Ok(Commit::Duplicate(message_from_row(&row)?));
        }
        let id = uuid::Uuid::now_v7();
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO messages (room_id, seq, id, sender_id, sender_name, body, client_msg_id, sent_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {MESSAGE_COLUMNS}"
                ),
                &[
                    &msg.room.as_str(),
                    &seq,
                    &id,
                    &msg.sender.id,
                    &msg.sender.name,
                    &msg.body.as_str(),
                    &msg.client_msg_id.as_str(),
                    &OffsetDateTime::now_utc(),
                ],
            )
            .await
            .map_err(db_err(OP))?;
        let stored = message_from_row(&row)?;
        tx.commit().await.map_err(db_err(OP))?;
        Ok(Commit::New(stored))
    }

    async fn history(
        &self,
        room: &RoomId,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, StoreError> {
        const OP: &str = "history";
        let conn = self.conn(OP).await?;
        let limit = i64::from(query.limit);
        // Fetch one extra row to learn whether more exist, without a COUNT.
        let fetch = limit + 1;
        let (sql, bound, ascending) = match query.cursor {
            HistoryCursor::Latest => ("seq < $2 ORDER BY seq DESC", i64::MAX, false),
            HistoryCursor::Before(b) => ("seq < $2 ORDER BY seq DESC", b, false),
            HistoryCursor::After(a) => ("seq > $2 ORDER BY seq ASC", a, true),
        };
        let stmt = conn
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = $1 AND {sql} LIMIT $3"
            ))
            .await
            .map_err(db_err(OP))?;
        let rows = conn
            .query(&stmt, &[&room.as_str(), &bound, &fetch])
            .await
            .map_err(db_err(OP))?;
        if rows.is_empty() {
            let exists = conn
                .query_opt("SELECT 1 FROM rooms WHERE id = $1", &[&room.as_str()])
                .await
                .map_err(db_err(OP))?;
            if exists.is_none() {
                return Err(StoreError::NotFound("room"));
            }
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
        Ok(HistoryPage { messages, has_more })
    }

    async fn visible_rooms(&self, user_id: &str, limit: u32) -> Result<Vec<Room>, StoreError> {
        const OP: &str = "visible rooms";
        let conn = self.conn(OP).await?;
        let stmt = conn
            .prepare_cached(
                "SELECT r.id, r.name, r.private, r.created_at FROM rooms r
                 WHERE NOT r.private
                    OR EXISTS (SELECT 1 FROM room_members m
                               WHERE m.room_id = r.id AND m.user_id = $1)
                 ORDER BY r.id LIMIT $2",
            )
            .await
            .map_err(db_err(OP))?;
        let rows = conn
            .query(&stmt, &[&user_id, &i64::from(limit)])
            .await
            .map_err(db_err(OP))?;
        rows.iter().map(room_from_row).collect()
    }
}

/// PostgreSQL-backed accounts, refresh tokens and failed-login counters.
#[derive(Clone)]
pub struct PostgresUserStore {
    pool: Pool,
}

impl PostgresUserStore {
    /// A store over an existing pool (see [`PostgresHistoryStore::pool`]).
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    async fn conn(&self, op: &'static str) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_err(op))
    }
}

const USER_COLUMNS: &str = "id, username, password_hash, created_at";

fn user_from_row(r: &Row) -> UserRecord {
    UserRecord {
        id: r.get(0),
        username: r.get(1),
        password_hash: r.get(2),
        created_at: r.get(3),
    }
}

#[async_trait]
impl UserStore for PostgresUserStore {
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        const OP: &str = "create user";
        let conn = self.conn(OP).await?;
        let inserted = conn
            .execute(
                "INSERT INTO users (id, username, password_hash, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[
                    &user.id,
                    &user.username,
                    &user.password_hash,
                    &user.created_at,
                ],
            )
            .await
            .map_err(db_err(OP))?;
        if inserted == 0 {
            return Err(StoreError::Conflict("user"));
        }
        Ok(())
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        const OP: &str = "user by name";
        let conn = self.conn(OP).await?;
        let stmt = conn
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
            ))
            .await
            .map_err(db_err(OP))?;
        let row = conn
            .query_opt(&stmt, &[&username])
            .await
            .map_err(db_err(OP))?;
        Ok(row.as_ref().map(user_from_row))
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        const OP: &str = "user by id";
        let conn = self.conn(OP).await?;
        let stmt = conn
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .await
            .map_err(db_err(OP))?;
        let row = conn.query_opt(&stmt, &[&id]).await.map_err(db_err(OP))?;
        Ok(row.as_ref().map(user_from_row))
    }

    async fn put_refresh_token(&self, token: &NewRefreshToken) -> Result<(), StoreError> {
        const OP: &str = "put refresh token";
        let mut conn = self.conn(OP).await?;
        let tx = conn.transaction().await.map_err(db_err(OP))?;
        tx.execute(
            "INSERT INTO refresh_families (family, user_id) VALUES ($1, $2)
             ON CONFLICT (family) DO NOTHING",
            &[&token.family, &token.user_id],
        )
        .await
        .map_err(db_err(OP))?;
        let inserted = tx
            .execute(
                "INSERT INTO refresh_tokens (hash, family, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (hash) DO NOTHING",
                &[&token.hash, &token.family, &token.expires_at],
            )
            .await
            .map_err(db_err(OP))?;
        if inserted == 0 {
            return Err(StoreError::Conflict("refresh token"));
        }
        tx.commit().await.map_err(db_err(OP))
    }

    async fn rotate_refresh_token(
        &self,
        presented: &str,
        successor_hash: &str,
        successor_expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        const OP: &str = "rotate refresh token";
        let mut conn = self.conn(OP).await?;
        let tx = conn.transaction().await.map_err(db_err(OP))?;
        // FOR UPDATE locks the token row and its family row: a concurrent presentation of the
        // same token waits here and then sees it spent (reuse); a concurrent logout waits for
        // the family row, so it also revokes the successor inserted below.
        let row = tx
            .query_opt(
                "SELECT f.user_id, t.family, t.expires_at, t.spent_at IS NOT NULL,
                        f.revoked_at IS NOT NULL
                 FROM refresh_tokens t JOIN refresh_families f ON f.family = t.family
                 WHERE t.hash = $1
                 FOR UPDATE",
                &[&presented],
            )
            .await
            .map_err(db_err(OP))?;
        let Some(row) = row else {
            return Ok(Rotation::Invalid);
        };
        let user_id: String = row.get(0);
        let family: uuid::Uuid = row.get(1);
        let expires_at: OffsetDateTime = row.get(2);
        let (spent, revoked): (bool, bool) = (row.get(3), row.get(4));
        if revoked || expires_at <= now {
            return Ok(Rotation::Invalid);
        }
        if spent {
            tx.execute(
                "UPDATE refresh_families SET revoked_at = $2 WHERE family = $1",
                &[&family, &now],
            )
            .await
            .map_err(db_err(OP))?;
            tx.commit().await.map_err(db_err(OP))?;
            return Ok(Rotation::Reused { user_id, family });
        }
        tx.execute(
            "UPDATE refresh_tokens SET spent_at = $2 WHERE hash = $1",
            &[&presented, &now],
        )
        .await
        .map_err(db_err(OP))?;
        let inserted = tx
            .execute(
                "INSERT INTO refresh_tokens (hash, family, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (hash) DO NOTHING",
                &[&successor_hash, &family, &successor_expires_at],
            )
            .await
            .map_err(db_err(OP))?;
        if inserted == 0 {
            return Err(StoreError::Conflict("refresh token"));
        }
        tx.commit().await.map_err(db_err(OP))?;
        Ok(Rotation::Rotated { user_id, family })
    }

    async fn revoke_refresh_family(&self, presented: &str) -> Result<bool, StoreError> {
        const OP: &str = "revoke refresh family";
        let conn = self.conn(OP).await?;
        let n = conn
            .execute(
                "UPDATE refresh_families SET revoked_at = coalesce(revoked_at, now())
                 WHERE family = (SELECT family FROM refresh_tokens WHERE hash = $1)",
                &[&presented],
            )
            .await
            .map_err(db_err(OP))?;
        Ok(n > 0)
    }
}

#[async_trait]
impl AttemptStore for PostgresUserStore {
    async fn attempts(&self, key: &str, now: OffsetDateTime) -> Result<Attempts, StoreError> {
        const OP: &str = "read attempts";
        let conn = self.conn(OP).await?;
        let stmt = conn
            .prepare_cached(
                "SELECT failures, window_ends FROM login_failures
                 WHERE key = $1 AND window_ends > $2",
            )
            .await
            .map_err(db_err(OP))?;
        let row = conn
            .query_opt(&stmt, &[&key, &now])
            .await
            .map_err(db_err(OP))?;
        Ok(match row {
            Some(r) => Attempts {
                count: u32::try_from(r.get::<_, i32>(0)).unwrap_or(0),
                window_ends: r.get(1),
            },
            None => Attempts {
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
        const OP: &str = "record failure";
        let conn = self.conn(OP).await?;
        let stmt = conn
            .prepare_cached(
                // One statement, so concurrent failures never lose a count: a window that has
                // ended restarts at 1, otherwise the count goes up by one.
                "INSERT INTO login_failures AS f (key, window_ends, failures) VALUES ($1, $3, 1)
                 ON CONFLICT (key) DO UPDATE SET
                   failures = CASE WHEN f.window_ends <= $2 THEN 1 ELSE f.failures + 1 END,
                   window_ends = CASE WHEN f.window_ends <= $2 THEN $3 ELSE f.window_ends END
                 RETURNING failures, window_ends",
            )
            .await
            .map_err(db_err(OP))?;
        let row = conn
            .query_one(&stmt, &[&key, &now, &(now + window)])
            .await
            .map_err(db_err(OP))?;
        Ok(Attempts {
            count: u32::try_from(row.get::<_, i32>(0)).unwrap_or(u32::MAX),
            window_ends: row.get(1),
        })
    }

    async fn clear(&self, key: &str) -> Result<(), StoreError> {
        const OP: &str = "clear attempts";
        let conn = self.conn(OP).await?;
        conn.execute("DELETE FROM login_failures WHERE key = $1", &[&key])
            .await
            .map_err(db_err(OP))?;
        Ok(())
    }
}
