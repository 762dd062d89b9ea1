//! Wiring for the Lambda `main.rs` files: build each client once at init from the
//! environment, failing fast with a message that names what is missing.

use std::sync::Arc;

use crate::auth::{ExternalVerifier, HttpJwksSource, JwtVerifier, TokenVerifier};
use crate::config::{AuthConfig, DynamoConfig, LiveConfig, PostgresConfig, RouteConfig};
use crate::gateway::management::ManagementGateway;
use crate::presence::PresenceSink;
use crate::queue::FanoutQueue;
use crate::queue::sqs::{SqsFanoutQueue, SqsPresenceSink};
use crate::store::dynamodb::DynamoConnectionStore;
use crate::store::postgres::Database;
use crate::store::{ConnectionStore, HistoryStore};
use crate::ws::{Live, RouteDeps};

/// An init failure: printed by the runtime as the function's init error.
pub type InitError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The AWS SDK configuration from the Lambda environment (region, credentials, and
/// `AWS_ENDPOINT_URL_*` overrides).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The DynamoDB connection store.
pub fn connection_store(
    sdk: &aws_config::SdkConfig,
    cfg: &DynamoConfig,
) -> Arc<dyn ConnectionStore> {
    Arc::new(DynamoConnectionStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        cfg.table.clone(),
    ))
}

/// The PostgreSQL history store, with one pooled connection: an execution environment
/// serves one invocation at a time.
pub fn history_store(cfg: &PostgresConfig) -> Result<Arc<dyn HistoryStore>, InitError> {
    Ok(Arc::new(Database::connect(cfg, 1)?.history()))
}

/// The live side ([`Live`]): DynamoDB and the management API.
pub fn live(sdk: &aws_config::SdkConfig, cfg: &LiveConfig) -> Result<Live, InitError> {
    let queue = cfg.gateway.fanout_queue_url.as_ref().map(|url| {
        Arc::new(SqsFanoutQueue::new(
            aws_sdk_sqs::Client::new(sdk),
            url.clone(),
        )) as Arc<dyn FanoutQueue>
    });
    let presence = cfg.gateway.presence_queue_url.as_ref().map(|url| {
        Arc::new(SqsPresenceSink::new(
            aws_sdk_sqs::Client::new(sdk),
            url.clone(),
        )) as Arc<dyn PresenceSink>
    });
    Ok(Live {
        connections: connection_store(sdk, &cfg.dynamo),
        gateway: ManagementGateway::new(sdk)?,
        endpoint_override: cfg.gateway.endpoint.clone(),
        queue,
        presence,
    })
}

/// Everything the message routes need ([`RouteDeps`]).
pub fn route_deps(sdk: &aws_config::SdkConfig, cfg: &RouteConfig) -> Result<RouteDeps, InitError> {
    Ok(RouteDeps {
        live: live(sdk, &cfg.live)?,
        history: history_store(&cfg.postgres)?,
        limits: cfg.limits,
    })
}

/// The access-token verifier: hubbub's HS256 tokens and, when configured, the external
/// issuer's RS256/ES256 tokens (its key set is fetched on first use, not here).
pub fn token_verifier(cfg: &AuthConfig) -> Result<TokenVerifier, InitError> {
    let own = JwtVerifier::hs256(&cfg.jwt)?;
    let external = match &cfg.external {
        Some(ext) => {
            let source = Arc::new(HttpJwksSource::new(&ext.jwks_url)?);
            Some(ExternalVerifier::new(ext.clone(), source))
        }
        None => None,
    };
    Ok(TokenVerifier::new(own, external))
}

/// The PostgreSQL database with one pooled connection, which its history and user stores
/// share (an execution environment serves one invocation at a time).
pub fn database(cfg: &PostgresConfig) -> Result<Database, InitError> {
    Ok(Database::connect(cfg, 1)?)
}
