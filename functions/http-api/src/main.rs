//! Lambda entry point of the HTTP API: wiring only.

use std::future::{Future, ready};
use std::pin::Pin;
use std::sync::Arc;

use http_api::{HttpDeps, Passwords};
use hubbub_core::auth::JwtIssuer;
use hubbub_core::config::FromLookup;
use hubbub_core::gateway::Endpoint;
use hubbub_core::gateway::management::ManagementGateway;
use hubbub_core::runtime;
use hubbub_core::session::SessionEnder;
use lambda_http::{Body, IntoResponse, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hubbub_core::telemetry::init();
    let cfg = http_api::Config::from_env()?;
    let sdk = runtime::sdk_config().await;
    let db = runtime::database(&sdk, &cfg.postgres).await?;
    let keyring = runtime::jwt_keyring(&sdk, &cfg.auth.jwt).await?;
    let users = Arc::new(db.users());
    let sessions = SessionEnder {
        connections: runtime::session_store(&sdk, &cfg.dynamo),
        gateway: ManagementGateway::new(&sdk),
        endpoint: Endpoint::for_request("", "", Some(cfg.management_endpoint.as_str())),
        access_ttl: cfg.accounts.access_ttl,
    };
    let deps = HttpDeps {
        users: users.clone(),
        attempts: users,
        history: Arc::new(db.history()),
        verifier: Arc::new(runtime::token_verifier(keyring.clone(), &cfg.auth)?),
        issuer: Arc::new(JwtIssuer::with_keyring(
            keyring.clone(),
            cfg.auth.jwt.settings(),
        )),
        passwords: Passwords::new(&cfg.accounts.argon2)?,
        config: cfg.accounts,
        limits: cfg.limits,
        sessions: Some(Arc::new(sessions)),
        connections: Some(runtime::membership_store(&sdk, &cfg.dynamo)),
    };
    let (deps, keyring) = (&deps, &keyring);
    lambda_http::run(service_fn(move |req: Request| async move {
        // Tokens are issued with the current key: a rotated one is picked up within the
        // secret's time-to-live even by an instance that verifies no token.
        keyring.refresh_if_stale().await;
        Ok::<_, std::convert::Infallible>(Finished(http_api::handle(deps, req).await))
    }))
    .await
}

/// A response whose body is final: the handler's bodies are already text (JSON) or empty.
///
/// lambda_http passes any other `Response` through a body conversion that decodes text with
/// the charset named in its `Content-Type`, looked up at run time, which links the tables of
/// every legacy encoding (encoding_rs, hundreds of kilobytes) into the zip.
struct Finished(Response<Body>);

impl IntoResponse for Finished {
    fn into_response(self) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> {
        Box::pin(ready(self.0))
    }
}
