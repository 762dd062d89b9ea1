//! The PostgreSQL [`UserStore`] and [`AttemptStore`]: accounts, refresh-token families and
//! tokens, and failed-login counters.

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio_postgres::Row;

use super::Database;
use crate::error::StoreError;
use crate::store::{AttemptStore, Attempts, NewRefreshToken, Rotation, UserRecord, UserStore};

/// PostgreSQL-backed accounts, refresh tokens and failed-login counters (see
/// [`Database::users`]).
#[derive(Clone)]
pub struct PostgresUserStore {
    db: Database,
}

impl PostgresUserStore {
    pub(super) fn new(db: Database) -> Self {
        Self { db }
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
        let conn = self.db.session("create user").await?;
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
            .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict("user"));
        }
        Ok(())
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let conn = self.db.session("user by name").await?;
        let row = conn
            .query_opt(
                // Served by the unique index on lower(username) (migration 0004).
                &format!("SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower($1)"),
                &[&username],
            )
            .await?;
        Ok(row.as_ref().map(user_from_row))
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let conn = self.db.session("user by id").await?;
        let row = conn
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
                &[&id],
            )
            .await?;
        Ok(row.as_ref().map(user_from_row))
    }

    async fn put_refresh_token(&self, token: &NewRefreshToken) -> Result<(), StoreError> {
        let mut conn = self.db.session("put refresh token").await?;
        let tx = conn.transaction().await?;
        tx.execute(
            "INSERT INTO refresh_families (family, user_id) VALUES ($1, $2)
             ON CONFLICT (family) DO NOTHING",
            &[&token.family, &token.user_id],
        )
        .await?;
        let inserted = tx
            .execute(
                "INSERT INTO refresh_tokens (hash, family, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (hash) DO NOTHING",
                &[&token.hash, &token.family, &token.expires_at],
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict("refresh token"));
        }
        tx.commit().await
    }

    async fn rotate_refresh_token(
        &self,
        presented: &str,
        successor_hash: &str,
        successor_expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut conn = self.db.session("rotate refresh token").await?;
        let tx = conn.transaction().await?;
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
            .await?;
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
            .await?;
            tx.commit().await?;
            return Ok(Rotation::Reused { user_id, family });
        }
        tx.execute(
            "UPDATE refresh_tokens SET spent_at = $2 WHERE hash = $1",
            &[&presented, &now],
        )
        .await?;
        let inserted = tx
            .execute(
                "INSERT INTO refresh_tokens (hash, family, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (hash) DO NOTHING",
                &[&successor_hash, &family, &successor_expires_at],
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict("refresh token"));
        }
        tx.commit().await?;
        Ok(Rotation::Rotated { user_id, family })
    }

    async fn revoke_refresh_family(&self, presented: &str) -> Result<Option<String>, StoreError> {
        let conn = self.db.session("revoke refresh family").await?;
        let row = conn
            .query_opt(
                "UPDATE refresh_families SET revoked_at = coalesce(revoked_at, now())
                 WHERE family = (SELECT family FROM refresh_tokens WHERE hash = $1)
                 RETURNING user_id",
                &[&presented],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn prune_refresh_tokens(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let conn = self.db.session("prune refresh tokens").await?;
        let pruned = conn
            .execute("DELETE FROM refresh_tokens WHERE expires_at <= $1", &[&now])
            .await?;
        // Families are written with their first token, so one without tokens is spent for good.
        conn.execute(
            "DELETE FROM refresh_families f
             WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family = f.family)",
            &[],
        )
        .await?;
        Ok(pruned)
    }
}

#[async_trait]
impl AttemptStore for PostgresUserStore {
    async fn attempts(&self, key: &str, now: OffsetDateTime) -> Result<Attempts, StoreError> {
        let conn = self.db.session("read attempts").await?;
        let row = conn
            .query_opt(
                "SELECT failures, window_ends FROM login_failures
                 WHERE key = $1 AND window_ends > $2",
                &[&key, &now],
            )
            .await?;
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
        let conn = self.db.session("record failure").await?;
        let row = conn
            .query_one(
                // One statement, so concurrent failures never lose a count: a window that has
                // ended restarts at 1, otherwise the count goes up by one.
                "INSERT INTO login_failures AS f (key, window_ends, failures) VALUES ($1, $3, 1)
                 ON CONFLICT (key) DO UPDATE SET
                   failures = CASE WHEN f.window_ends <= $2 THEN 1 ELSE f.failures + 1 END,
                   window_ends = CASE WHEN f.window_ends <= $2 THEN $3 ELSE f.window_ends END
                 RETURNING failures, window_ends",
                &[&key, &now, &(now + window)],
            )
            .await?;
        Ok(Attempts {
            count: u32::try_from(row.get::<_, i32>(0)).unwrap_or(u32::MAX),
            window_ends: row.get(1),
        })
    }

    async fn clear(&self, key: &str) -> Result<(), StoreError> {
        let conn = self.db.session("clear attempts").await?;
        conn.execute("DELETE FROM login_failures WHERE key = $1", &[&key])
            .await?;
        Ok(())
    }

    async fn forgive(&self, key: &str) -> Result<(), StoreError> {
        let conn = self.db.session("forgive attempt").await?;
        // One statement, so a concurrent increment is never lost: a row at 1 goes, a higher
        // one goes down by one (the two conditions are disjoint in one snapshot).
        conn.execute(
            "WITH gone AS (DELETE FROM login_failures WHERE key = $1 AND failures <= 1)
             UPDATE login_failures SET failures = failures - 1 WHERE key = $1 AND failures > 1",
            &[&key],
        )
        .await?;
        Ok(())
    }

    async fn prune(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let conn = self.db.session("prune attempts").await?;
        Ok(conn
            .execute(
                "DELETE FROM login_failures WHERE window_ends <= $1",
                &[&now],
            )
            .await?)
    }
}
