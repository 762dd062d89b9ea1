//! The live WebSocket connections of the emulator: what `@connections/{id}` reaches.
//!
//! A connection is registered once `$connect` has accepted it and deregistered before its
//! `$disconnect` runs, so that, as on API Gateway, the management API answers 410 Gone for
//! it from the moment it closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc};

use crate::events::ConnMeta;

/// API Gateway's limit on a `PostToConnection` body (its WebSocket message limit).
pub const MAX_POST_BYTES: usize = 128 * 1024;

/// Frames queued for one client, in order. The bytes are shared: one fan-out frame is
/// queued to every recipient without a copy.
#[derive(Debug)]
pub enum Outbound {
    /// Valid UTF-8.
    Text(Bytes),
    Binary(Bytes),
}

impl Outbound {
    /// A text frame when `data` is UTF-8 (what hubbub posts), binary otherwise, as API
    /// Gateway sends a posted body.
    pub fn for_body(data: Bytes) -> Self {
        if std::str::from_utf8(&data).is_ok() {
            Self::Text(data)
        } else {
            Self::Binary(data)
        }
    }
}

/// Why a post did not reach a connection's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostRefusal {
    /// Unknown or closed (410).
    Gone,
    /// Over [`MAX_POST_BYTES`] (413).
    TooLarge,
    /// The client is not reading and its queue is full (429): a slow reader must not make
    /// the sender buffer without bound.
    NotReading,
}

impl PostRefusal {
    /// The management API's status for it.
    pub fn status(self) -> u16 {
        match self {
            Self::Gone => 410,
            Self::TooLarge => 413,
            Self::NotReading => 429,
        }
    }
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

    /// Queues `data` for the connection, as `POST @connections/{id}` does.
    pub fn post(&self, id: &str, data: Bytes) -> Result<(), PostRefusal> {
        if data.len() > MAX_POST_BYTES {
            return Err(PostRefusal::TooLarge);
        }
        let out = Outbound::for_body(data);
        // Queued under the lock rather than through a clone of the sender: `try_send` never
        // waits, and the clone and drop were four atomic updates on the connection's queue
        // per post.
        let sent = self.lock().get(id).map(|c| c.tx.try_send(out));
        match sent.ok_or(PostRefusal::Gone)? {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(PostRefusal::NotReading),
            Err(TrySendError::Closed(_)) => Err(PostRefusal::Gone),
        }
    }

    /// Closes the connection, as `DELETE @connections/{id}` does: gone at once for later
    /// calls; its task closes the socket and runs `$disconnect`. `false` when it was gone.
    pub fn close(&self, id: &str) -> bool {
        match self.remove(id) {
            Some(conn) => {
                conn.kick.notify_one();
                true
            }
            None => false,
        }
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
