//! Every integration test of hubbub, in one binary (each binary links the AWS SDK).
//!
//! Run through `scripts/test`, which starts PostgreSQL and the DynamoDB-compatible server.

mod contracts;
mod deploy;
mod gateway;
mod handlers;
mod http_api;
mod identity;
mod load;
mod local;
mod outages;
mod postgres_tls;
mod queue;
mod secrets;
