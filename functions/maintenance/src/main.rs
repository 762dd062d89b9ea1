//! Lambda entry point of the scheduled clean-up: wiring only.

use std::sync::Arc;

use hubbub_core::config::FromLookup;
use hubbub_core::runtime;
use lambda_runtime::{LambdaEvent, service_fn};
use maintenance::MaintenanceDeps;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hubbub_core::telemetry::init();
    let cfg = maintenance::Config::from_env()?;
    let sdk = runtime::sdk_config().await;
    let users = Arc::new(runtime::database(&sdk, &cfg).await?.users());
    let deps = MaintenanceDeps {
        users: users.clone(),
        attempts: users,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |_schedule: LambdaEvent<serde_json::Value>| async move {
            maintenance::run(deps, time::OffsetDateTime::now_utc())
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
