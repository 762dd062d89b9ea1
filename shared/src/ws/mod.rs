//! The WebSocket side's shared glue, in two parts:
//!
//! - [`event`]: API Gateway WebSocket events in, route responses out (`RouteContext`,
//!   `parse_frame`, `run_route`, error frames);
//! - [`deps`]: what the route handlers depend on (`Live`, `RouteDeps`).
//!
//! Both are re-exported here, so handlers say `hubbub_core::ws::{RouteContext, RouteDeps, ...}`.

pub mod deps;
pub mod event;

pub use deps::{Live, RouteDeps};
pub use event::*;
