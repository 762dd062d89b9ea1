//! Lambda entry point of the fan-out worker: wiring only.

use std::sync::Arc;

use hubbub_core::aws_lambda_events::sqs::SqsEvent;
use hubbub_core::config::FromLookup;
use hubbub_core::queue::sqs::SqsFanoutQueue;
use hubbub_core::runtime;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hubbub_core::telemetry::init();
    let cfg = fanout_worker::Config::from_env()?;
    let sdk = runtime::sdk_config().await;
    let deps = fanout_worker::WorkerDeps {
        connections: runtime::membership_store(&sdk, &cfg.live.dynamo),
        gateway: runtime::management_gateway(&sdk, &cfg.live.gateway),
        queue: Arc::new(SqsFanoutQueue::new(
            hubbub_core::aws_sdk_sqs::Client::new(&sdk),
            cfg.queue_url,
        )),
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<SqsEvent>| async move {
        let stop = fanout_worker::stop_posting_at(ev.context.deadline);
        Ok::<_, std::convert::Infallible>(fanout_worker::handle(deps, ev.payload, Some(stop)).await)
    }))
    .await
}
