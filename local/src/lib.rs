//! hubbub-local: a faithful API Gateway emulator that runs hubbub's Lambda handlers
//! in-process, on one port:
//!
//! - the WebSocket API at `/` and `/{stage}`: the REQUEST authorizer and `$connect` decide the
//!   handshake, frames are routed on `$request.body.action` to `sendMessage`, the room routes
//!   or `$default`, and `$disconnect` runs when a connection closes ([`ws`]);
//! - the @connections management API at `/@connections/{id}` and
//!   `/{stage}/@connections/{id}`, which the handlers reach in-process ([`gateway`]) or through
//!   the Lambdas' SigV4 client ([`management`]), both by one post path that can inject faults
//!   ([`delivery`], [`faults`]);
//! - API Gateway's limits: 32 KB frames and 128 KB messages (close 1009), the idle timeout
//!   and the maximum connection duration;
//! - the HTTP API (`/auth/*`, `/rooms`, `/rooms/{room}/members`, `/rooms/{room}/messages`,
//!   `/health`, with or without `/{stage}`) with the HttpApi's CORS behaviour ([`http`]);
//! - the web client of `web/` at `/`, `/app.js` and every other file of it ([`web`],
//!   [`web_files`]).
//!
//! The handlers are the very functions the Lambdas run (`authorizer::handle`,
//! `connect::handle`, ..., `http_api::handle`), fed events built field for field as API
//! Gateway builds them ([`events`]). Stores are in-memory by default, or PostgreSQL and a DynamoDB-compatible
//! server when given their addresses ([`config::Config`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), hubbub_local::StartError> {
//! let mut config = hubbub_local::Config::dev();
//! config.port = 0;
//! let server = hubbub_local::Server::start(config).await?;
//! println!("connect to {}", server.ws_url());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod cli;
pub mod config;
pub mod delivery;
pub mod events;
pub mod faults;
pub mod gateway;
pub mod http;
pub mod ids;
pub mod management;
pub mod registry;
pub mod server;
pub mod web;
pub mod web_files;
pub mod ws;

pub use config::Config;
pub use server::{Server, StartError, StoreInfo};
