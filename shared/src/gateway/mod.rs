//! The `ConnectionGateway` port: talk to a client's WebSocket through API Gateway's
//! Management API (`POST/GET/DELETE @connections/{id}`).
//!
//! The real adapter is [`management::ManagementGateway`] (SigV4-signed HTTP); it
//! serves both AWS and hubbub-local, whose emulator speaks the same API, so there is no
//! in-memory double: tests point it at a real HTTP server. Every adapter retries by the one
//! rule of [`retry`] and paces its calls by the instance's [`budget`].

use async_trait::async_trait;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::error::GatewayError;

pub mod budget;
pub mod management;
pub mod retry;
pub(crate) mod sigv4;

/// The base URL of a stage's management API: `https://{domainName}/{stage}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint(String);

impl Endpoint {
    /// The endpoint for an event's `domainName` and `stage`, unless configuration overrides
    /// it (custom domains: the management API answers only on the execute-api host).
    pub fn for_request(domain_name: &str, stage: &str, configured: Option<&str>) -> Self {
        match configured {
            Some(url) => Self(url.trim_end_matches('/').to_owned()),
            None => Self(format!("https://{domain_name}/{stage}")),
        }
    }

    /// The URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What `GET @connections/{id}` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub connected_at: Option<OffsetDateTime>,
    pub last_active_at: Option<OffsetDateTime>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Post to, inspect and close client connections.
#[async_trait]
pub trait ConnectionGateway: Send + Sync {
    /// Sends `data` to the connection as one text frame. `Gone` when it no longer exists.
    /// `data` is shared (`Bytes`) so that one serialised frame serves a whole fan-out.
    async fn post(
        &self,
        endpoint: &Endpoint,
        connection_id: &str,
        data: &Bytes,
    ) -> Result<(), GatewayError>;

    /// Reads the connection's metadata. `Gone` when it no longer exists.
    async fn get(
        &self,
        endpoint: &Endpoint,
        connection_id: &str,
    ) -> Result<ConnectionInfo, GatewayError>;

    /// Closes the connection. `Gone` when it no longer exists.
    async fn delete(&self, endpoint: &Endpoint, connection_id: &str) -> Result<(), GatewayError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_from_event_or_config() {
        assert_eq!(
            Endpoint::for_request("abc.execute-api.eu-west-1.amazonaws.com", "prod", None).as_str(),
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod"
        );
        assert_eq!(
            Endpoint::for_request(
                "chat.example.com",
                "prod",
                Some("http://127.0.0.1:3001/local/")
            )
            .as_str(),
            "http://127.0.0.1:3001/local"
        );
    }
}
