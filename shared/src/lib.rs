//! hubbub-core: everything the hubbub Lambdas and hubbub-local share.
//!
//! - [`protocol`]: the frames of docs/protocol.md, with parse-don't-validate newtypes;
//! - [`routes`]: the WebSocket API's route table (route keys, the function serving each);
//! - [`error`]: one error type per boundary and the stable client error codes;
//! - [`fields`]: JSON objects read field by field, with errors that never echo input;
//! - [`config`] and [`telemetry`]: environment config (fail fast) and tracing setup;
//! - [`auth`]: JWT verification (and issuing);
//! - [`store`] and [`gateway`]: the ports and their adapters (DynamoDB, PostgreSQL, in-memory,
//!   the API Gateway Management API);
//! - [`limits`]: the abuse limits (rate limits, typing debounce, caps) and their defaults;
//! - [`fanout`]: delivering a frame to a room with bounded concurrency;
//! - [`queue`]: large rooms' fan-out split into jobs for workers (SQS, or in-process);
//! - [`presence`]: joins and leaves coalesced per room and window;
//! - [`people`]: direct room ids, and read marks and membership changes told to live
//!   connections;
//! - [`session`]: identity on a live connection (token expiry on every route);
//! - [`secrets`]: the JWT key and the database URL read from Secrets Manager at run time,
//!   followed through rotations;
//! - [`ws`] and [`runtime`]: glue for WebSocket route events and Lambda init.
//!
//! Handlers live in the `functions/*` crates and see only these ports, so the same code runs
//! in Lambda, in hubbub-local and in tests.

pub mod auth;
pub mod config;
pub mod error;
pub mod fanout;
pub mod fields;
pub mod gateway;
pub mod https;
pub mod limits;
pub mod moderation;
pub mod people;
pub mod presence;
pub mod protocol;
pub mod queue;
pub mod routes;
pub mod runtime;
pub mod sdk_http;
pub mod secrets;
pub mod session;
pub mod store;
pub mod telemetry;
pub mod ws;

pub use aws_lambda_events;
pub use aws_sdk_secretsmanager;
pub use aws_sdk_sqs;
