//! Lambda entry point of the authorizer: wiring only.

use hubbub_core::aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use hubbub_core::config::FromLookup;
use hubbub_core::runtime;
use hubbub_core::session::{REVOCATION_CACHE_TTL, RevocationCheck};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hubbub_core::telemetry::init();
    let cfg = authorizer::Config::from_env()?;
    let sdk = runtime::sdk_config().await;
    let keyring = runtime::jwt_keyring(&sdk, &cfg.auth.jwt).await?;
    let verifier = runtime::token_verifier(keyring, &cfg.auth)?;
    let revocations = RevocationCheck::new(
        runtime::session_store(&sdk, &cfg.dynamo),
        REVOCATION_CACHE_TTL,
    );
    let (verifier, revocations) = (&verifier, &revocations);
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| async move {
            authorizer::handle_checked(verifier, revocations, &ev.payload).await
        },
    ))
    .await
}
