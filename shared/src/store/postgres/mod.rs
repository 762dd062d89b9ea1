//! The PostgreSQL adapters: one [`Database`] (one connection pool per process) that hands out
//! the [`PostgresHistoryStore`] (rooms, members, messages), the [`PostgresUserStore`]
//! (accounts, refresh tokens, failed-login counters) and runs the migrations, all over that
//! one pool. See `infra/migrations/` for the schema.
//!
//! - `history.rs`: [`HistoryStore`](super::HistoryStore);
//! - `users.rs`: [`UserStore`](super::UserStore) and [`AttemptStore`](super::AttemptStore);
//! - `session.rs`: the pooled connection every store operation runs on.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::migrate::{self, MigrateError};
use crate::config::PostgresConfig;
use crate::error::StoreError;

mod history;
mod session;
mod users;

pub use history::PostgresHistoryStore;
pub use users::PostgresUserStore;

use session::Session;

/// How long to wait for a pooled connection or a new one. API Gateway gives an integration
/// 29 s; a database that cannot hand out a connection in 5 s should turn into a quick
/// `unavailable` the client can retry, not a timeout.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// One PostgreSQL database: a connection pool and the stores over it.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
}

impl Database {
    /// A database over a new pool of at most `max_connections`. Connects lazily.
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
