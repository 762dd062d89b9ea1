//! Lambda entry point of `$default`: wiring only.

use hubbub_core::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hubbub_core::telemetry::init();
    // Read (nothing) through the same path as every function, so the template check covers it.
    <default_route::Config as hubbub_core::config::FromLookup>::from_env()?;
    lambda_runtime::run(service_fn(
        |ev: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<_, std::convert::Infallible>(default_route::handle(&ev.payload).await)
        },
    ))
    .await
}
