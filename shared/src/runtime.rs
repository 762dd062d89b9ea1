//! Wiring for the Lambda `main.rs` files: build each client once at init from the
//! environment, failing fast with a message that names what is missing.

use std::sync::Arc;

use crate::auth::{
    ExternalVerifier, HttpJwksSource, JwtKeyring, JwtKeys, JwtVerifier, TokenVerifier,
};
use crate::config::{
    AuthConfig, DatabaseConfig, DynamoConfig, GatewayConfig, JWT_SECRET_MIN_BYTES, JwtSource,
    LiveConfig, RouteConfig,
};
use crate::gateway::budget::PostBudget;
use crate::gateway::management::{GatewayOptions, ManagementGateway};
use crate::presence::PresenceSink;
use crate::queue::FanoutQueue;
use crate::queue::sqs::{SqsFanoutQueue, SqsPresenceSink};
use crate::secrets::{CachedSecret, SecretVersions, SecretsManagerField};
use crate::store::dynamodb::DynamoConnectionStore;
use crate::store::pg_connect::{DbCredentials, DbTarget, with_host};
use crate::store::postgres::Database;
use crate::store::{ConnectionStore, HistoryStore, MembershipStore, SessionStore};
use crate::ws::{Live, RouteDeps};

/// An init failure: printed by the runtime as the function's init error.
pub type InitError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// PostgreSQL connections per execution environment. An environment serves one invocation at
/// a time, so one connection is all it can use; with each database function's reserved
/// concurrency this bounds the database's connections (docs/security.md, "The database
/// connection").
pub const LAMBDA_POOL_SIZE: usize = 1;

/// The AWS SDK configuration from the Lambda environment, over [`https_client`]: the region
/// from `AWS_REGION`, credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_SESSION_TOKEN` (Lambda sets all four in every execution environment), and endpoint
/// overrides from `AWS_ENDPOINT_URL_<SERVICE>` and `AWS_ENDPOINT_URL` (local invocation).
///
/// Built by hand rather than with `aws_config::load_defaults`: its default chains (profile
/// files, web identity through STS, ECS, IMDS) are never used in a Lambda, yet linked into
/// every function's zip. The SDK clients supply the rest (retry, timeouts, identity cache)
/// from their behaviour version's defaults, as for `load_defaults`.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .region(region.map(aws_config::Region::new))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            ),
        )
        // Both the per-service and the global override, as each client asks for its own.
        .service_config(EnvEndpoints)
        .build()
}

/// Endpoint overrides from the environment, as `aws_config` reads them (without its profile
/// files): a service's own variable (`AWS_ENDPOINT_URL_DYNAMODB`: the base name the client
/// asks for, `_`, its service id in upper case with `_` for spaces), else the base one
/// (`AWS_ENDPOINT_URL`).
#[derive(Debug)]
struct EnvEndpoints;

impl aws_types::service_config::LoadServiceConfig for EnvEndpoints {
    fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        service_env_value(key.env(), key.service_id(), |name| std::env::var(name).ok())
    }
}

/// `base_env`'s value for `service_id`: the service's own variable first, then `base_env`.
fn service_env_value(
    base_env: &str,
    service_id: &str,
    get: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let service = service_id.to_ascii_uppercase().replace([' ', '-'], "_");
    get(&format!("{base_env}_{service}"))
        .or_else(|| get(base_env))
        .filter(|v| !v.is_empty())
}

/// The HTTP client every AWS SDK client uses: [`crate::sdk_http`], HTTP/1.1 over hyper and
/// rustls on ring with the platform's roots, the workspace's one TLS stack. Each `SdkConfig` in
/// the workspace (Lambdas, hubbub-local, tests) sets it: without it an SDK client fails its
/// first call with "no HTTP client".
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    crate::sdk_http::client()
}

/// The DynamoDB connection store.
pub fn connection_store(
    sdk: &aws_config::SdkConfig,
    cfg: &DynamoConfig,
) -> Arc<dyn ConnectionStore> {
    Arc::new(dynamo_connections(sdk, cfg))
}

/// The connection table's session side only ([`SessionStore`]): for the functions that end
/// sessions or check revocations and nothing else, so they do not link every membership
/// operation.
pub fn session_store(sdk: &aws_config::SdkConfig, cfg: &DynamoConfig) -> Arc<dyn SessionStore> {
    Arc::new(dynamo_connections(sdk, cfg))
}

/// The connection table's membership side only ([`MembershipStore`]): for the functions that
/// post to rooms and take connections out of them but never open, join or limit one (the fan-out
/// worker, the HTTP API's member routes), so they do not link those operations.
pub fn membership_store(
    sdk: &aws_config::SdkConfig,
    cfg: &DynamoConfig,
) -> Arc<dyn MembershipStore> {
    Arc::new(dynamo_connections(sdk, cfg))
}

fn dynamo_connections(sdk: &aws_config::SdkConfig, cfg: &DynamoConfig) -> DynamoConnectionStore {
    DynamoConnectionStore::new(aws_sdk_dynamodb::Client::new(sdk), cfg.table.clone())
}

/// Where the database is: a fixed URL, or the secret read now (init fails if it cannot be
/// read or used) and followed through rotations.
pub async fn db_credentials(
    sdk: &aws_config::SdkConfig,
    cfg: &DatabaseConfig,
) -> Result<DbCredentials, InitError> {
    match cfg {
        DatabaseConfig::Url(pg) => Ok(DbCredentials::fixed(&pg.url)?),
        DatabaseConfig::Secret { arn, host } => {
            let host = host.clone();
            let source = SecretsManagerField::new(
                aws_sdk_secretsmanager::Client::new(sdk),
                arn.0.clone(),
                crate::secrets::DATABASE_URL_FIELD,
            );
            let parse = move |v: &SecretVersions| {
                let url = match &host {
                    Some(h) => with_host(&v.current, h).map_err(|e| e.to_string())?,
                    None => v.current.clone(),
                };
                DbTarget::parse(&url).map_err(|e| e.to_string())
            };
            let cached =
                CachedSecret::load(Box::new(source), false, "database", Box::new(parse)).await?;
            Ok(DbCredentials::Rotating(Arc::new(cached)))
        }
    }
}

/// The PostgreSQL history store, with [`LAMBDA_POOL_SIZE`] pooled connections.
pub async fn history_store(
    sdk: &aws_config::SdkConfig,
    cfg: &DatabaseConfig,
) -> Result<Arc<dyn HistoryStore>, InitError> {
    Ok(Arc::new(database(sdk, cfg).await?.history()))
}

/// The management API client, with the instance's post budget when one is configured: one
/// client, so one budget, per execution environment.
pub fn management_gateway(
    sdk: &aws_config::SdkConfig,
    cfg: &GatewayConfig,
) -> Arc<ManagementGateway> {
    ManagementGateway::with_options(
        sdk,
        GatewayOptions {
            budget: cfg.post_budget.map(|b| Arc::new(PostBudget::new(b))),
            ..GatewayOptions::default()
        },
    )
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
        gateway: management_gateway(sdk, &cfg.gateway),
        endpoint_override: cfg.gateway.endpoint.clone(),
        queue,
        presence,
    })
}

/// Everything the message routes need ([`RouteDeps`]).
pub async fn route_deps(
    sdk: &aws_config::SdkConfig,
    cfg: &RouteConfig,
) -> Result<RouteDeps, InitError> {
    Ok(RouteDeps {
        live: live(sdk, &cfg.live)?,
        history: history_store(sdk, &cfg.postgres).await?,
        limits: cfg.limits,
        moderation: match &cfg.moderation_function {
            Some(function) => Some(Arc::new(
                crate::moderation::HttpModerator::lambda(sdk, function, None)
                    .map_err(|e| -> InitError { Box::new(e) })?,
            )),
            None => None,
        },
    })
}

/// hubbub's own signing keys: fixed, or the secret read now (init fails if it cannot be read
/// or is shorter than 32 bytes) and followed through rotations, its previous version still
/// accepted for verification.
pub async fn jwt_keyring(
    sdk: &aws_config::SdkConfig,
    cfg: &JwtSource,
) -> Result<JwtKeyring, InitError> {
    match cfg {
        JwtSource::Inline(jwt) => Ok(JwtKeyring::fixed(&jwt.secret)?),
        JwtSource::Secret { arn, .. } => {
            let source = SecretsManagerField::new(
                aws_sdk_secretsmanager::Client::new(sdk),
                arn.0.clone(),
                crate::secrets::JWT_KEY_FIELD,
            );
            let parse = |v: &SecretVersions| {
                if v.current.len() < JWT_SECRET_MIN_BYTES {
                    return Err(format!(
                        "the key must be at least {JWT_SECRET_MIN_BYTES} bytes"
                    ));
                }
                let previous = v
                    .previous
                    .as_deref()
                    .filter(|p| p.len() >= JWT_SECRET_MIN_BYTES)
                    .map(str::as_bytes);
                JwtKeys::from_versions(v.current.as_bytes(), previous).map_err(|e| e.to_string())
            };
            let cached =
                CachedSecret::load(Box::new(source), true, "JWT signing key", Box::new(parse))
                    .await?;
            Ok(JwtKeyring::Secret(Arc::new(cached)))
        }
    }
}

/// The access-token verifier over `keyring`: hubbub's HS256 tokens and, when configured, the
/// external issuer's RS256/ES256 tokens (its key set is fetched on first use, not here).
pub fn token_verifier(keyring: JwtKeyring, cfg: &AuthConfig) -> Result<TokenVerifier, InitError> {
    let own = JwtVerifier::with_keyring(keyring, cfg.jwt.settings());
    let external = match &cfg.external {
        Some(ext) => {
            let source = Arc::new(HttpJwksSource::new(&ext.jwks_url)?);
            Some(ExternalVerifier::new(ext.clone(), source))
        }
        None => None,
    };
    Ok(TokenVerifier::new(own, external))
}

/// The PostgreSQL database with [`LAMBDA_POOL_SIZE`] pooled connections, which its history
/// and user stores share.
pub async fn database(
    sdk: &aws_config::SdkConfig,
    cfg: &DatabaseConfig,
) -> Result<Database, InitError> {
    Ok(Database::with_credentials(
        db_credentials(sdk, cfg).await?,
        LAMBDA_POOL_SIZE,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_endpoint_override_wins_over_the_global_one() {
        let vars = |name: &str| match name {
            "AWS_ENDPOINT_URL_DYNAMODB" => Some("http://127.0.0.1:8000".to_owned()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:4566".to_owned()),
            "AWS_ENDPOINT_URL_API_GATEWAY" => Some(String::new()),
            _ => None,
        };
        let get = |service| service_env_value("AWS_ENDPOINT_URL", service, vars);
        assert_eq!(get("DynamoDB").as_deref(), Some("http://127.0.0.1:8000"));
        assert_eq!(
            get("Secrets Manager").as_deref(),
            Some("http://127.0.0.1:4566")
        );
        assert_eq!(get("API Gateway"), None, "an empty override is no override");
    }

    #[tokio::test]
    async fn the_lambda_sdk_config_reads_the_region_and_an_http_client() {
        let config = sdk_config().await;
        assert!(config.http_client().is_some());
        assert!(config.credentials_provider().is_some());
        assert!(config.service_config().is_some());
    }
}
