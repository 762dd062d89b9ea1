//! Lambda entry point of the migrations custom resource: wiring only.

use hubbub_core::aws_lambda_events::cloudformation::CloudFormationCustomResourceRequest;
use hubbub_core::config::FromLookup;
use hubbub_core::runtime;
use hubbub_core::store::postgres::Database;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hubbub_core::telemetry::init();
    let cfg = migrate::Config::from_env()?;
    let sdk = runtime::sdk_config().await;
    let deps = migrate::MigrateDeps {
        db: Database::with_credentials(
            runtime::db_credentials(&sdk, &cfg).await?,
            runtime::LAMBDA_POOL_SIZE,
        )?,
        http: migrate::http_client(),
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<CloudFormationCustomResourceRequest>| async move {
            migrate::handle(deps, &ev.payload).await.map(|_| ())
        },
    ))
    .await
}
