//! The scheduled clean-up (an EventBridge schedule in `template.yaml`, hourly; hubbub-local
//! runs the same [`run`] on a timer): deletes refresh tokens that have expired (and the
//! families they leave empty) and failed-login counters whose window has ended. Neither is
//! read once it is over, but both tables would otherwise grow with every login and every
//! guessed name, for ever.

use std::sync::Arc;

use hubbub_core::error::StoreError;
use hubbub_core::store::{AttemptStore, UserStore};
use serde::Serialize;
use time::OffsetDateTime;

/// The configuration this function reads at init: the accounts database (`DATABASE_URL`, or
/// `HUBBUB_DATABASE_SECRET_ARN` and the optional `HUBBUB_DATABASE_HOST`).
pub type Config = hubbub_core::config::DatabaseConfig;

/// What the clean-up needs.
#[derive(Clone)]
pub struct MaintenanceDeps {
    pub users: Arc<dyn UserStore>,
    pub attempts: Arc<dyn AttemptStore>,
}

/// What one run deleted (the function's answer, and a log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pruned {
    pub refresh_tokens: u64,
    pub login_counters: u64,
}

/// Deletes what is over at `now`.
pub async fn run(deps: &MaintenanceDeps, now: OffsetDateTime) -> Result<Pruned, StoreError> {
    let pruned = Pruned {
        refresh_tokens: deps.users.prune_refresh_tokens(now).await?,
        login_counters: deps.attempts.prune(now).await?,
    };
    tracing::info!(
        refresh_tokens = pruned.refresh_tokens,
        login_counters = pruned.login_counters,
        "pruned expired refresh tokens and ended login counters"
    );
    Ok(pruned)
}
