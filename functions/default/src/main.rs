//! Lambda entry point of `$default`: wiring only.

use default_route::DefaultDeps;
use hubbub_core::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use hubbub_core::config::FromLookup;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hubbub_core::telemetry::init();
    let config = default_route::Config::from_env()?;
    let sdk = hubbub_core::runtime::sdk_config().await;
    let deps = DefaultDeps {
        gateway: hubbub_core::runtime::management_gateway(&sdk, &config),
        endpoint_override: config.endpoint,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<_, std::convert::Infallible>(default_route::handle(deps, &ev.payload).await)
        },
    ))
    .await
}
