//! Wiring for the Lambda `main.rs` files: build each client once at init from the
//! environment, failing fast with a message that names what is missing.

use std::sync::Arc;

use crate::config::{DynamoConfig, GatewayConfig, PostgresConfig, env_lookup};
use crate::gateway::ConnectionGateway;
use crate::gateway::management::ManagementGateway;
use crate::store::dynamodb::DynamoConnectionStore;
use crate::store::postgres::PostgresHistoryStore;
use crate::store::{ConnectionStore, HistoryStore};
use crate::ws::{Live, RouteDeps};

/// An init failure: printed by the runtime as the function's init error.
pub type InitError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The AWS SDK configuration from the Lambda environment (region, credentials, and
/// `AWS_ENDPOINT_URL_*` overrides).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The DynamoDB connection store named by `HUBBUB_TABLE`.
pub fn connection_store(
    sdk: &aws_config::SdkConfig,
) -> Result<Arc<dyn ConnectionStore>, InitError> {
    let cfg = DynamoConfig::from_lookup(&env_lookup)?;
    Ok(Arc::new(DynamoConnectionStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        cfg.table,
    )))
}

/// The PostgreSQL history store at `DATABASE_URL`, with one pooled connection: an
/// execution environment serves one invocation at a time.
pub fn history_store() -> Result<Arc<dyn HistoryStore>, InitError> {
    let cfg = PostgresConfig::from_lookup(&env_lookup)?;
    Ok(Arc::new(PostgresHistoryStore::connect(&cfg, 1)?))
}

/// The management API gateway and its optional endpoint override.
pub fn gateway(
    sdk: &aws_config::SdkConfig,
) -> Result<(Arc<dyn ConnectionGateway>, Option<String>), InitError> {
    let cfg = GatewayConfig::from_lookup(&env_lookup)?;
    Ok((ManagementGateway::new(sdk.clone()), cfg.endpoint))
}

/// The live side ([`Live`]) from the environment: DynamoDB and the management API.
pub fn live(sdk: &aws_config::SdkConfig) -> Result<Live, InitError> {
    let (gateway, endpoint_override) = gateway(sdk)?;
    Ok(Live {
        connections: connection_store(sdk)?,
        gateway,
        endpoint_override,
    })
}

/// Everything the message routes need ([`RouteDeps`]) from the environment.
pub fn route_deps(sdk: &aws_config::SdkConfig) -> Result<RouteDeps, InitError> {
    Ok(RouteDeps {
        live: live(sdk)?,
        history: history_store()?,
    })
}
