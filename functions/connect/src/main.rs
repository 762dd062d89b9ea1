//! Lambda entry point of `$connect`: wiring only.

use hubbub_core::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use hubbub_core::config::FromLookup;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hubbub_core::telemetry::init();
    let cfg = connect::Config::from_env()?;
    let sdk = hubbub_core::runtime::sdk_config().await;
    let deps = connect::ConnectDeps {
        connections: hubbub_core::runtime::connection_store(&sdk, &cfg),
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<_, std::convert::Infallible>(connect::handle(deps, &ev.payload).await)
        },
    ))
    .await
}
