//! Lambda entry point of `sendMessage`: wiring only.

use hubbub_core::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use hubbub_core::config::FromLookup;
use hubbub_core::runtime;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hubbub_core::telemetry::init();
    let cfg = send_message::Config::from_env()?;
    let sdk = runtime::sdk_config().await;
    let deps = runtime::route_deps(&sdk, &cfg).await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<_, std::convert::Infallible>(send_message::handle(deps, &ev.payload).await)
        },
    ))
    .await
}
