//! The connection one store operation runs on: each statement is prepared once per pooled
//! connection (deadpool's statement cache) and every database failure comes back as
//! `StoreError::Unavailable` naming the operation, so the stores say only their SQL.

use deadpool_postgres::{GenericClient, Object, Transaction};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::StoreError;

/// Statement parameters, as tokio-postgres takes them.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// What a [`Session`] runs statements on: a pooled connection or a transaction on it.
pub(super) trait Client {
    type Inner: GenericClient;
    fn client(&self) -> &Self::Inner;
}

impl Client for Object {
    type Inner = Object;
    fn client(&self) -> &Object {
        self
    }
}

impl<'a> Client for Transaction<'a> {
    type Inner = Transaction<'a>;
    fn client(&self) -> &Self {
        self
    }
}

/// A connection (or transaction) and the name of the operation it serves.
pub(super) struct Session<C> {
    client: C,
    op: &'static str,
}

impl<C: Client> Session<C> {
    pub(super) fn new(client: C, op: &'static str) -> Self {
        Self { client, op }
    }

    /// Wraps a database error as this operation's `Unavailable`.
    pub(super) fn fail(&self, e: tokio_postgres::Error) -> StoreError {
        StoreError::unavailable(self.op, e)
    }

    async fn prepared(&self, sql: &str) -> Result<tokio_postgres::Statement, StoreError> {
        self.client
            .client()
            .prepare_cached(sql)
            .await
            .map_err(|e| self.fail(e))
    }

    /// The rows of a query.
    pub(super) async fn query(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        let stmt = self.prepared(sql).await?;
        self.client
            .client()
            .query(&stmt, params)
            .await
            .map_err(|e| self.fail(e))
    }

    /// The one row of a query that always returns one.
    pub(super) async fn query_one(&self, sql: &str, params: Params<'_>) -> Result<Row, StoreError> {
        let stmt = self.prepared(sql).await?;
        self.client
            .client()
            .query_one(&stmt, params)
            .await
            .map_err(|e| self.fail(e))
    }

    /// The row of a query that returns at most one.
    pub(super) async fn query_opt(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, StoreError> {
        let stmt = self.prepared(sql).await?;
        self.client
            .client()
            .query_opt(&stmt, params)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Runs a statement; the number of rows it changed.
    pub(super) async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        self.try_execute(sql, params)
            .await?
            .map_err(|e| self.fail(e))
    }

    /// Runs a statement and hands its database error back as it is, for a caller that turns a
    /// constraint violation into an answer (`Err` only when the statement could not be prepared).
    pub(super) async fn try_execute(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Result<u64, tokio_postgres::Error>, StoreError> {
        let stmt = self.prepared(sql).await?;
        Ok(self.client.client().execute(&stmt, params).await)
    }
}

impl Session<Object> {
    /// Opens a transaction for the same operation; dropping it uncommitted rolls it back.
    pub(super) async fn transaction(&mut self) -> Result<Session<Transaction<'_>>, StoreError> {
        let op = self.op;
        let tx = self
            .client
            .transaction()
            .await
            .map_err(|e| StoreError::unavailable(op, e))?;
        Ok(Session::new(tx, op))
    }
}

impl Session<Transaction<'_>> {
    /// Commits the transaction.
    pub(super) async fn commit(self) -> Result<(), StoreError> {
        let op = self.op;
        self.client
            .commit()
            .await
            .map_err(|e| StoreError::unavailable(op, e))
    }
}
