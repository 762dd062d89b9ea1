//! Tracing setup shared by every Lambda and hubbub-local.
//!
//! JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON` (CloudWatch's structured logging), human text
//! otherwise. The level comes from `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's advanced logging
//! controls), then `RUST_LOG`, then `info`.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call twice (the second call does nothing).
pub fn init() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .map(|v| v.eq_ignore_ascii_case("json"))
        .unwrap_or(false);
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|l| EnvFilter::new(l.to_ascii_lowercase()))
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // Lambda stamps every line itself; JSON keeps the event time for correlation.
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
    // An error means a subscriber is already installed (tests, hubbub-local): keep it.
    drop(result);
}

static WARM: AtomicBool = AtomicBool::new(false);

/// `true` for the first invocation in this execution environment, then `false`: logged as
/// the `cold_start` field on every route span.
pub fn cold_start() -> bool {
    !WARM.swap(true, Ordering::Relaxed)
}
