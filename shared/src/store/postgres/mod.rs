//! The PostgreSQL adapters: one [`Database`] (one connection pool per process) that hands out
//! the [`PostgresHistoryStore`] (rooms, members, messages), the [`PostgresUserStore`]
//! (accounts, refresh tokens, failed-login counters) and runs the migrations, all over that
//! one pool. See `infra/migrations/` for the schema.
//!
//! - `history.rs`: [`HistoryStore`](super::HistoryStore);
//! - `people.rs`: its [`PeopleStore`](super::PeopleStore) side (roles, direct rooms, read
//!   state, the room list);
//! - `users.rs`: [`UserStore`](super::UserStore) and [`AttemptStore`](super::AttemptStore);
//! - `session.rs`: the pooled connection every store operation runs on.

use deadpool_postgres::Pool;

use super::migrate::{self, MigrateError};
use super::pg_connect::{self, DbCredentials};
use crate::config::PostgresConfig;
use crate::error::StoreError;

mod history;
mod messages;
mod people;
mod session;
mod users;

pub use history::PostgresHistoryStore;
pub use users::PostgresUserStore;

use session::Session;

/// One PostgreSQL database: a connection pool and the stores over it.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
}

impl Database {
    /// A database over a new pool of at most `max_connections` to `cfg.url` (its `sslmode`
    /// honoured, see [`pg_connect`]). Connects lazily.
    ///
    /// In Lambda one connection is right (an execution environment runs one invocation at a
    /// time); hubbub-local serves many connections and wants a few.
    pub fn connect(cfg: &PostgresConfig, max_connections: usize) -> Result<Self, StoreError> {
        let credentials = DbCredentials::fixed(&cfg.url)
            .map_err(|e| StoreError::unavailable("parse DATABASE_URL", e))?;
        Self::with_credentials(credentials, max_connections)
    }

    /// A database over a new pool of at most `max_connections` to wherever `credentials`
    /// point (a URL from Secrets Manager that may rotate). Connects lazily.
    pub fn with_credentials(
        credentials: DbCredentials,
        max_connections: usize,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            pool: pg_connect::pool(credentials, max_connections)?,
        })
    }

    /// The rooms, members and messages of this database.
    pub fn history(&self) -> PostgresHistoryStore {
        PostgresHistoryStore::new(self.clone())
    }

    /// The accounts, refresh tokens and failed-login counters of this database.
    pub fn users(&self) -> PostgresUserStore {
        PostgresUserStore::new(self.clone())
    }

    /// Applies pending migrations (see [`migrate`]).
    pub async fn migrate(&self) -> Result<Vec<i64>, MigrateOnPoolError> {
        let mut conn = self.pool.get().await?;
        let client: &mut tokio_postgres::Client = &mut conn;
        Ok(migrate::run(client).await?)
    }

    /// A pooled connection for the store operation `op` (which names its failures).
    async fn session(
        &self,
        op: &'static str,
    ) -> Result<Session<deadpool_postgres::Object>, StoreError> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| StoreError::unavailable(op, e))?;
        Ok(Session::new(client, op))
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
