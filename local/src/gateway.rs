//! The `ConnectionGateway` hubbub-local's handlers use by default: posts go straight into
//! the connections' queues in the [`Registry`], with the answers the `@connections` API
//! gives (410 Gone, 413, 429 for a client that is not reading) and the faults it is told to
//! inject, through [`crate::delivery::post`], the path the HTTP `@connections` API takes too.
//! `--management-client http` sends the handlers' posts over HTTP instead, through the
//! Lambdas' `ManagementGateway`.
//!
//! Like that client, this one bounds each attempt by a timeout (after which the outcome is
//! unknown and never retried) and retries by hubbub-core's one rule, drawing every attempt
//! from the server's post budget.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hubbub_core::error::GatewayError;
use hubbub_core::gateway::retry::{self, Attempt, Retrier};
use hubbub_core::gateway::{ConnectionGateway, ConnectionInfo, Endpoint};

use crate::delivery::{self, PostOutcome};
use crate::events::datetime;
use crate::faults::Faults;
use crate::registry::Registry;

/// Posts into this process's connections.
pub struct RegistryGateway {
    registry: Arc<Registry>,
    faults: Option<Arc<Faults>>,
    retrier: Retrier,
    /// The HTTP client's attempt timeout, kept here too: an in-process post normally takes
    /// no time at all, but an injected slow one must leave the sender as unsure as a
    /// timed-out HTTP call would.
    attempt_timeout: Duration,
}

impl RegistryGateway {
    pub fn new(
        registry: Arc<Registry>,
        faults: Option<Arc<Faults>>,
        retrier: Retrier,
        attempt_timeout: Duration,
    ) -> Self {
        Self {
            registry,
            faults,
            retrier,
            attempt_timeout,
        }
    }

    async fn attempt_post(&self, connection_id: &str, data: &Bytes) -> Attempt<()> {
        let post = delivery::post(
            &self.registry,
            self.faults.as_deref(),
            connection_id,
            data.clone(),
        );
        match tokio::time::timeout(self.attempt_timeout, post).await {
            // The post goes on (a slow one is delivered by its own task): outcome unknown.
            Err(_) => Attempt::Fail(GatewayError::Unknown { op: "post" }),
            Ok(PostOutcome::Posted) => Attempt::Done(()),
            Ok(refused) => retry::refused("post", refused.status()),
        }
    }
}

#[async_trait]
impl ConnectionGateway for RegistryGateway {
    async fn post(
        &self,
        _endpoint: &Endpoint,
        connection_id: &str,
        data: &Bytes,
    ) -> Result<(), GatewayError> {
        self.retrier
            .run("post", || self.attempt_post(connection_id, data))
            .await
    }

    async fn get(
        &self,
        _endpoint: &Endpoint,
        connection_id: &str,
    ) -> Result<ConnectionInfo, GatewayError> {
        // A call on the account's quota like any other, so it takes a token too.
        self.retrier
            .run("get", || async {
                match self.registry.get(connection_id) {
                    Some(conn) => Attempt::Done(ConnectionInfo {
                        connected_at: Some(datetime(conn.meta.connected_at_ms)),
                        last_active_at: Some(datetime(conn.last_active_ms())),
                        source_ip: Some(conn.meta.source_ip.clone()),
                        user_agent: conn.meta.user_agent.clone(),
                    }),
                    None => Attempt::Fail(GatewayError::Gone),
                }
            })
            .await
    }

    async fn delete(&self, _endpoint: &Endpoint, connection_id: &str) -> Result<(), GatewayError> {
        self.retrier
            .run("delete", || async {
                if self.registry.close(connection_id) {
                    Attempt::Done(())
                } else {
                    Attempt::Fail(GatewayError::Gone)
                }
            })
            .await
    }
}
