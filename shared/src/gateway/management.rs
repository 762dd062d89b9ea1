//! [`ConnectionGateway`] over aws-sdk-apigatewaymanagement.
//!
//! The endpoint differs per stage (and comes from the event), so clients are built lazily per
//! endpoint from one shared `SdkConfig` (credentials, region, HTTP connection pool) and cached:
//! a warm Lambda reuses its client and its TLS connections across invocations.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_smithy_types::Blob;
use time::OffsetDateTime;

use super::{ConnectionGateway, ConnectionInfo, Endpoint};
use crate::error::GatewayError;

/// Upper bound on one management call, retries included. A healthy post takes a few ms; a
/// recipient stuck behind a throttled or dead path must not hold the sender's invocation
/// (API Gateway's integration timeout is 29 s) — the message is in history either way.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// Per attempt: lets the SDK's standard retry (3 attempts) fit within the operation bound.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);

/// The Management API adapter.
pub struct ManagementGateway {
    base: SdkConfig,
    /// One client per endpoint; a stage has one endpoint, so this stays tiny.
    clients: RwLock<HashMap<Endpoint, Client>>,
}

impl ManagementGateway {
    /// A gateway sharing `base`'s credentials, region and HTTP client.
    pub fn new(base: SdkConfig) -> Arc<Self> {
        Arc::new(Self {
            base,
            clients: RwLock::new(HashMap::new()),
        })
    }

    fn client(&self, endpoint: &Endpoint) -> Client {
        if let Some(c) = self
            .clients
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(endpoint)
        {
            return c.clone();
        }
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(&self.base)
            .endpoint_url(endpoint.as_str())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(OPERATION_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            )
            .build();
        let client = Client::from_conf(conf);
        self.clients
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(endpoint.clone(), client.clone());
        client
    }
}

/// 410 means gone whatever the body says: AWS sends a GoneException body, some emulators an
/// empty one, and the SDK only recognises the former.
fn map_err<E>(op: &'static str, e: SdkError<E, HttpResponse>) -> GatewayError
where
    E: std::error::Error + Send + Sync + 'static,
{
    if e.raw_response().is_some_and(|r| r.status().as_u16() == 410) {
        return GatewayError::Gone;
    }
    GatewayError::Failed {
        op,
        source: Box::new(e),
    }
}

fn to_time(t: Option<&aws_smithy_types::DateTime>) -> Option<OffsetDateTime> {
    t.and_then(|d| {
        OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(d.secs()) * 1_000_000_000 + i128::from(d.subsec_nanos()),
        )
        .ok()
    })
}

#[async_trait]
impl ConnectionGateway for ManagementGateway {
    async fn post(
        &self,
        endpoint: &Endpoint,
        connection_id: &str,
        data: &[u8],
    ) -> Result<(), GatewayError> {
        self.client(endpoint)
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map_err("post", e))
    }

    async fn get(
        &self,
        endpoint: &Endpoint,
        connection_id: &str,
    ) -> Result<ConnectionInfo, GatewayError> {
        let out = self
            .client(endpoint)
            .get_connection()
            .connection_id(connection_id)
            .send()
            .await
            .map_err(|e| map_err("get", e))?;
        Ok(ConnectionInfo {
            connected_at: to_time(out.connected_at()),
            last_active_at: to_time(out.last_active_at()),
            source_ip: out
                .identity()
                .and_then(|i| i.source_ip())
                .map(str::to_owned),
            user_agent: out
                .identity()
                .and_then(|i| i.user_agent())
                .map(str::to_owned),
        })
    }

    async fn delete(&self, endpoint: &Endpoint, connection_id: &str) -> Result<(), GatewayError> {
        self.client(endpoint)
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map_err("delete", e))
    }
}
