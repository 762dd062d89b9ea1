//! hubbub-load: a WebSocket load client for hubbub and a judge of what it delivers.
//!
//! A run opens many connections (at a ramp, spread over loopback source addresses when the
//! target is local), joins each to one of several rooms, has a few connections per room send
//! paced messages, and records every ack and every delivery. At the end the [`judge`] checks
//! that each acked message reached every other connection of its room that had joined before
//! the send exactly once, never the sender, never another room, and under the ack's `seq`;
//! what is missing is fetched with `history after` and counted apart. The [`Report`] gives the
//! counts, latency percentiles, throughput and the client's own CPU cost, and ends with one
//! `VERDICT:` line.
//!
//! It is a client of the public protocol only and shares no code with the server.
//!
//! ```no_run
//! # async fn demo(tokens: Vec<String>) -> Result<(), hubbub_load::LoadError> {
//! let mut cfg = hubbub_load::Config::new("ws://127.0.0.1:3001/", tokens);
//! cfg.connections = 100;
//! let report = hubbub_load::run(cfg).await?;
//! println!("{}", report.to_text());
//! # Ok(())
//! # }
//! ```

pub mod cli;
pub mod config;
pub mod conn;
pub mod frames;
pub mod judge;
pub mod net;
pub mod reconnect;
pub mod report;
pub mod run;
pub mod stored;
pub mod sys;
pub mod tokens;

pub use config::{AuthMode, Config, Thresholds};
pub use report::Report;
pub use run::{LoadError, run};
pub use tokens::{TokenSource, obtain};
