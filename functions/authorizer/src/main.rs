//! Lambda entry point of the authorizer: wiring only.

use hubbub_core::auth::JwtVerifier;
use hubbub_core::aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hubbub_core::telemetry::init();
    let verifier = JwtVerifier::hs256(&authorizer::Config::from_env()?)?;
    let verifier = &verifier;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| async move {
            authorizer::handle(verifier, &ev.payload)
        },
    ))
    .await
}
