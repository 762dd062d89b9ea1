//! Lambda entry point of the HTTP API: wiring only.

use std::sync::Arc;

use http_api::{HttpDeps, Passwords};
use hubbub_core::auth::JwtIssuer;
use hubbub_core::config::FromLookup;
use hubbub_core::runtime;
use lambda_http::{Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hubbub_core::telemetry::init();
    let cfg = http_api::Config::from_env()?;
    let db = runtime::database(&cfg.postgres)?;
    let users = Arc::new(db.users());
    let deps = HttpDeps {
        users: users.clone(),
        attempts: users,
        history: Arc::new(db.history()),
        verifier: Arc::new(runtime::token_verifier(&cfg.auth)?),
        issuer: Arc::new(JwtIssuer::hs256(&cfg.auth.jwt)?),
        passwords: Passwords::new(&cfg.accounts.argon2)?,
        config: cfg.accounts,
        limits: cfg.limits,
    };
    let deps = &deps;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(http_api::handle(deps, req).await)
    }))
    .await
}
