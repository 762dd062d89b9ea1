//! What the WebSocket route handlers depend on ([`RouteDeps`]), built the way the handler
//! tests need it: over the given stores, posting through the real management client to a
//! [`Recorder`], with no fan-out queue or presence worker and the default abuse limits.

use std::sync::Arc;

use hubbub_core::limits::Limits;
use hubbub_core::store::memory::{MemoryConnectionStore, MemoryHistoryStore};
use hubbub_core::store::{ConnectionStore, HistoryStore};
use hubbub_core::ws::{Live, RouteDeps};

use crate::{Recorder, fresh_connections, migrated_database};

/// Route dependencies over `connections` and `history`, posting to `rec`.
pub fn deps_over(
    rec: &Recorder,
    connections: Arc<dyn ConnectionStore>,
    history: Arc<dyn HistoryStore>,
) -> RouteDeps {
    RouteDeps {
        live: Live {
            connections,
            gateway: rec.gateway(),
            endpoint_override: Some(rec.endpoint()),
            queue: None,
            presence: None,
        },
        history,
        limits: Limits::default(),
        moderation: None,
    }
}

/// A recorder and route dependencies over fresh in-memory stores.
pub async fn memory_deps() -> (Recorder, RouteDeps) {
    let rec = Recorder::start().await;
    let deps = deps_over(
        &rec,
        Arc::new(MemoryConnectionStore::new()),
        Arc::new(MemoryHistoryStore::new()),
    );
    (rec, deps)
}

/// A recorder and route dependencies over a fresh PostgreSQL database and a fresh DynamoDB
/// table; also the database's URL.
pub async fn real_deps() -> (Recorder, RouteDeps, String) {
    let rec = Recorder::start().await;
    let (db, url) = migrated_database().await;
    let deps = deps_over(
        &rec,
        Arc::new(fresh_connections().await),
        Arc::new(db.history()),
    );
    (rec, deps, url)
}
