//! The `ConnectionGateway` hubbub-local's handlers use by default: posts go straight into
//! the connections' queues in the [`Registry`], with the answers the `@connections` API
//! gives (410 Gone, 413, 429 for a client that is not reading). The HTTP `@connections`
//! API serves the same registry through the same calls, for anything outside the process;
//! `--management-client http` sends the handlers' posts there too, through the Lambdas'
//! `ManagementGateway`.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use hubbub_core::error::GatewayError;
use hubbub_core::gateway::{ConnectionGateway, ConnectionInfo, Endpoint};

use crate::events::datetime;
use crate::registry::{PostRefusal, Registry};

/// Posts into this process's connections.
pub struct RegistryGateway {
    registry: Arc<Registry>,
}

impl RegistryGateway {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
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
        self.registry
            .post(connection_id, data.clone())
            .map_err(|refusal| match refusal {
                PostRefusal::Gone => GatewayError::Gone,
                PostRefusal::TooLarge => GatewayError::Rejected {
                    op: "post",
                    status: 413,
                },
                PostRefusal::NotReading => GatewayError::Rejected {
                    op: "post",
                    status: 429,
                },
            })
    }

    async fn get(
        &self,
        _endpoint: &Endpoint,
        connection_id: &str,
    ) -> Result<ConnectionInfo, GatewayError> {
        let conn = self.registry.get(connection_id).ok_or(GatewayError::Gone)?;
        Ok(ConnectionInfo {
            connected_at: Some(datetime(conn.meta.connected_at_ms)),
            last_active_at: Some(datetime(conn.last_active_ms())),
            source_ip: Some(conn.meta.source_ip.clone()),
            user_agent: conn.meta.user_agent.clone(),
        })
    }

    async fn delete(&self, _endpoint: &Endpoint, connection_id: &str) -> Result<(), GatewayError> {
        if self.registry.close(connection_id) {
            Ok(())
        } else {
            Err(GatewayError::Gone)
        }
    }
}
