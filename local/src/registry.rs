//! The live WebSocket connections of the emulator: what `@connections/{id}` reaches.
//!
//! A connection is registered once `$connect` has accepted it and deregistered before its
//! `$disconnect` runs, so that, as on API Gateway, the management API answers 410 Gone for
//! it from the moment it closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, mpsc};

use crate::events::ConnMeta;

/// Frames queued for one client, in order.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
}

/// A registered connection: how to reach its task and what `GET @connections/{id}` reports.
#[derive(Debug, Clone)]
pub struct LiveConn {
    /// The writer queue of the connection's task.
    pub tx: mpsc::Sender<Outbound>,
    /// Notified by `DELETE @connections/{id}`: close the connection.
    pub kick: Arc<Notify>,
    pub meta: Arc<ConnMeta>,
    /// Unix ms of the last frame from the client.
    pub last_active_ms: Arc<AtomicI64>,
}

impl LiveConn {
    /// Records client activity now.
    pub fn touch(&self, now_ms: i64) {
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Unix ms of the last client activity.
    pub fn last_active_ms(&self) -> i64 {
        self.last_active_ms.load(Ordering::Relaxed)
    }
}

/// Connection id -> live connection.
#[derive(Debug, Default)]
pub struct Registry {
    // A std Mutex: every operation is a map lookup, never held across an `.await`.
    conns: Mutex<HashMap<String, LiveConn>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, LiveConn>> {
        // The map stays consistent whatever panicked while holding it: keep serving.
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a connection.
    pub fn insert(&self, conn: LiveConn) {
        self.lock().insert(conn.meta.connection_id.clone(), conn);
    }

    /// The live connection with this id.
    pub fn get(&self, id: &str) -> Option<LiveConn> {
        self.lock().get(id).cloned()
    }

    /// Deregisters a connection; `None` when it already was.
    pub fn remove(&self, id: &str) -> Option<LiveConn> {
        self.lock().remove(id)
    }

    /// The ids of the open connections, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
