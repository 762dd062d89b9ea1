//! What a connection does after a fault, as a real client would: when its socket closes or
//! fails mid-run it reconnects with capped exponential backoff and full jitter, rejoins its
//! room, resends its unanswered sends under the same `clientMsgId` (hubbub stores a
//! `clientMsgId` once and answers a repeat with the first ack), and reads `history after` its
//! highest contiguous `seq` to fill the gap. Messages that read finds are recorded as
//! recovered by catch-up, never as live deliveries.

use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::SinkExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::conn::{ConnTask, TaskReport};
use crate::frames::{self, HISTORY_LIMIT_MAX, MsgKey, ServerFrame};
use crate::judge::{self, NO_LATENCY, SendOutcome};
use crate::net::Ws;

/// The first backoff's ceiling: a restarted server or a recovered store usually answers again
/// within a few hundred ms, so the first retry comes quickly.
pub const RECONNECT_BASE: Duration = Duration::from_millis(100);
/// The largest ceiling: a long outage is probed every few seconds rather than ever more rarely,
/// and with full jitter thousands of clients returning to a recovered server spread over up
/// to 5 s instead of landing in the same instant (which would be a fault of its own).
pub const RECONNECT_CAP: Duration = Duration::from_secs(5);
/// Longest connect-and-join of one attempt: a server that accepts the TCP connection but
/// cannot answer (its store is unresponsive) must not hold the task past its next attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The ceiling of the wait before attempt `attempt` (1 for the first): `base * 2^(attempt-1)`,
/// at most the cap.
pub fn ceiling(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    RECONNECT_BASE
        .saturating_mul(1 << doublings)
        .min(RECONNECT_CAP)
}

/// Full jitter: a wait in `[0, ceiling(attempt)]` picked by `random`, so that connections
/// dropped together do not retry in lockstep.
pub fn backoff(attempt: u32, random: u64) -> Duration {
    let ceiling_us = ceiling(attempt).as_micros() as u64;
    Duration::from_micros(random % (ceiling_us + 1))
}

/// A random number per (connection, attempt): a fresh `RandomState` is seeded from the
/// process's random keys, which is all the jitter needs.
fn random(conn: usize, attempt: u32) -> u64 {
    std::collections::hash_map::RandomState::new().hash_one((conn, attempt))
}

/// Why a read failed, short enough to count by.
pub fn read_error(e: &WsError) -> String {
    match e {
        WsError::Io(io) => format!("read: {}", io.kind()),
        WsError::Protocol(p) => format!("read: protocol: {p}"),
        other => format!("read: {other}"),
    }
}

impl ConnTask {
    /// Reconnects and rejoins, with backoff, until the run's reconnect window ends; `None`
    /// when it never succeeded.
    pub(crate) async fn reconnect(&self, rep: &mut TaskReport) -> Option<Ws> {
        let deadline = Instant::now() + self.shared.cfg.reconnect_window;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let wait = backoff(attempt, random(self.conn, attempt));
            if Instant::now() + wait >= deadline {
                tracing::debug!(conn = self.conn, attempt, "giving up reconnecting");
                return None;
            }
            tokio::time::sleep(wait).await;
            let tried = tokio::time::timeout(ATTEMPT_TIMEOUT, async {
                let mut ws = self
                    .shared
                    .target
                    .connect(self.conn, &self.token, self.shared.cfg.auth)
                    .await
                    .map_err(|e| e.category())?;
                self.join(&mut ws, rep).await?;
                Ok::<Ws, String>(ws)
            })
            .await;
            match tried {
                Ok(Ok(ws)) => {
                    tracing::debug!(conn = self.conn, attempt, "reconnected");
                    return Some(ws);
                }
                Ok(Err(why)) => tracing::debug!(conn = self.conn, attempt, why, "reconnect failed"),
                Err(_) => tracing::debug!(conn = self.conn, attempt, "reconnect timed out"),
            }
        }
    }

    /// On a fresh connection: resends every unanswered send (same `clientMsgId` and body),
    /// then asks `history after` the highest contiguous `seq` this connection knows.
    pub(crate) async fn resume(
        &self,
        ws: &mut Ws,
        rep: &mut TaskReport,
        started: bool,
    ) -> Result<(), String> {
        let shared = &self.shared;
        let room = &shared.room_names[rep.record.room as usize];
        if started {
            let (mut id, mut body) = (String::new(), String::new());
            for (n, s) in rep.record.sends.iter().enumerate() {
                if s.outcome != SendOutcome::Pending {
                    continue;
                }
                let key = MsgKey {
                    conn: self.conn as u32,
                    n: n as u32,
                };
                shared.ids.write(key, &mut id);
                frames::write_body(s.sent_at, shared.cfg.body_bytes, &mut body);
                let text = frames::send_message(room, &body, &id);
                ws.send(Message::Text(text.into()))
                    .await
                    .map_err(|e| format!("send: {e}"))?;
            }
        }
        let after = judge::resync_after(&rep.record);
        ws.send(Message::Text(
            frames::history_after(room, after, HISTORY_LIMIT_MAX).into(),
        ))
        .await
        .map_err(|e| format!("send: {e}"))
    }

    /// Records one page of the resync read as recovered messages and asks for the next page
    /// when there is one; `true` while the read goes on.
    pub(crate) async fn resync_page(
        &self,
        f: &ServerFrame<'_>,
        rep: &mut TaskReport,
        ws: &mut Ws,
    ) -> bool {
        rep.frames.history += 1;
        let mut last: Option<i64> = None;
        // Counted for the drain only when new to this connection: a message it already has
        // (live, or from an earlier read) must not make the drain think more arrived than did.
        let mut n = 0u64;
        for m in f.messages.iter().flatten() {
            let d = self.delivery(m, f, NO_LATENCY);
            last = Some(last.map_or(d.seq, |l| l.max(d.seq)));
            let seen = |x: &judge::Delivery| x.key == d.key && x.seq == d.seq;
            if d.owed_to(self.conn)
                && !rep.record.live.iter().any(seen)
                && !rep.record.recovered.iter().any(seen)
            {
                n += 1;
            }
            rep.record.recovered.push(d);
        }
        self.shared
            .counters
            .recovered
            .fetch_add(n, Ordering::Relaxed);
        let (Some(last), Some(true)) = (last, f.has_more) else {
            return false;
        };
        let room = &self.shared.room_names[rep.record.room as usize];
        let text = frames::history_after(room, last, HISTORY_LIMIT_MAX);
        // A failed send ends the read; the socket's failure shows on the next read.
        ws.send(Message::Text(text.into())).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        assert_eq!(ceiling(1), Duration::from_millis(100));
        assert_eq!(ceiling(2), Duration::from_millis(200));
        assert_eq!(ceiling(4), Duration::from_millis(800));
        assert_eq!(ceiling(7), RECONNECT_CAP);
        assert_eq!(ceiling(u32::MAX), RECONNECT_CAP);
    }

    #[test]
    fn backoff_is_jittered_within_the_ceiling() {
        for attempt in 1..10 {
            for r in [0, 1, 99_999, u64::MAX] {
                assert!(backoff(attempt, r) <= ceiling(attempt));
            }
        }
        assert_eq!(backoff(1, 0), Duration::ZERO);
        let waits: std::collections::HashSet<Duration> =
            (0..20).map(|i| backoff(5, random(i, 5))).collect();
        assert!(waits.len() > 10, "jitter spreads the waits: {waits:?}");
    }
}
