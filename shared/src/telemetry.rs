//! Tracing setup shared by every Lambda and hubbub-local.
//!
//! JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON` (CloudWatch's structured logging), human text
//! otherwise. The level comes from `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's advanced logging
//! controls), then `RUST_LOG`, then `info`.
//!
//! Filters are `tracing_subscriber`'s `Targets`: a level (`debug`) or `target=level` pairs
//! (`info,hubbub_core=debug`). It has no span or field filters, and so no regex engine in
//! every function's zip (zip size is cold-start time); an unparsable filter falls back to
//! `info`.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber. Safe to call twice (the second call does nothing).
pub fn init() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .map(|v| v.eq_ignore_ascii_case("json"))
        .unwrap_or(false);
    let filter = filter_from(
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok(),
        std::env::var("RUST_LOG").ok(),
    );
    let fmt = tracing_subscriber::fmt::layer().with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    // Lambda stamps every line itself; JSON keeps the event time for correlation.
    let result = if json {
        registry
            .with(fmt.json().flatten_event(true).with_current_span(true))
            .try_init()
    } else {
        registry.with(fmt).try_init()
    };
    // An error means a subscriber is already installed (tests, hubbub-local): keep it.
    drop(result);
}

/// The filter from Lambda's log level (`TRACE` .. `ERROR`, and `FATAL` as `ERROR`), else
/// `RUST_LOG`, else `info`; the first that parses.
fn filter_from(lambda_level: Option<String>, rust_log: Option<String>) -> Targets {
    let lambda = lambda_level.and_then(|l| match l.to_ascii_uppercase().as_str() {
        "FATAL" => Some(Level::ERROR),
        other => other.parse::<Level>().ok(),
    });
    lambda
        .map(|level| Targets::new().with_default(level))
        .or_else(|| rust_log.and_then(|f| f.parse::<Targets>().ok()))
        .unwrap_or_else(|| Targets::new().with_default(Level::INFO))
}

static WARM: AtomicBool = AtomicBool::new(false);

/// `true` for the first invocation in this execution environment, then `false`: logged as
/// the `cold_start` field on every route span.
pub fn cold_start() -> bool {
    !WARM.swap(true, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_level_wins_over_rust_log_and_info_is_the_default() {
        let f = filter_from(Some("DEBUG".into()), Some("error".into()));
        assert!(f.would_enable("hubbub_core", &Level::DEBUG));
        let f = filter_from(None, Some("warn,hubbub_core::queue=trace".into()));
        assert!(!f.would_enable("hubbub_core", &Level::INFO));
        assert!(f.would_enable("hubbub_core::queue", &Level::TRACE));
        let f = filter_from(None, None);
        assert!(f.would_enable("anything", &Level::INFO));
        assert!(!f.would_enable("anything", &Level::DEBUG));
    }

    #[test]
    fn an_unknown_level_or_unparsable_filter_falls_back_to_the_next_source() {
        let f = filter_from(Some("FATAL".into()), None);
        assert!(f.would_enable("anything", &Level::ERROR));
        assert!(!f.would_enable("anything", &Level::WARN));
        let f = filter_from(Some("loud".into()), Some("hubbub=verbose".into()));
        assert!(f.would_enable("anything", &Level::INFO));
        assert!(!f.would_enable("anything", &Level::DEBUG));
    }
}
