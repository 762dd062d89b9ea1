//! What a run does: the target, the shape of the load (connections, rooms, senders, rate), how
//! connections authenticate, and what makes the verdict fail. [`Config`] is the library's
//! input; the command line ([`crate::cli`]) builds one.

use std::time::Duration;

use serde::Serialize;

use crate::frames::{self, BODY_MAX_CHARS};

/// How a connection presents its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AuthMode {
    /// `?token=<jwt>` on the URL.
    QueryToken,
    /// `Sec-WebSocket-Protocol: hubbub.v1, bearer.<jwt>`, as browsers do.
    Subprotocol,
}

/// Limits that fail the verdict when exceeded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    /// Highest acceptable p99 of send-to-ack, in ms.
    pub max_ack_p99_ms: Option<f64>,
    /// Highest acceptable p99 of send-to-delivery, in ms.
    pub max_delivery_p99_ms: Option<f64>,
    /// How many owed deliveries may arrive only through catch-up. 0 by default: the server
    /// promises never to skip a member, so on a healthy server live delivery is complete.
    pub max_recovered: u64,
    /// The run spans faults on purpose (a store stopped, the server restarted): reconnects,
    /// `unavailable` and `rate_limited` refusals and deliveries recovered by catch-up are
    /// reported but do not fail the verdict. Lost messages, storage duplicates and seq gaps
    /// still do.
    pub allow_faults: bool,
}

/// One run.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ws://host:port/...` or `wss://...`, without a token.
    pub url: String,
    /// Connections to open.
    pub connections: usize,
    /// Rooms; connection `i` joins room `i % rooms`.
    pub rooms: usize,
    /// Connections per room that send (the room's first ones).
    pub senders_per_room: usize,
    /// Messages per second per room, over all its senders.
    pub rate: f64,
    /// How long the senders send.
    pub duration: Duration,
    /// Body size in bytes (at least the send-time stamp, at most 4000).
    pub body_bytes: usize,
    /// Connections opened per second.
    pub connect_rate: f64,
    /// Handshakes in flight at once.
    pub connect_concurrency: usize,
    /// Longest wait for `joined` before the connection counts as failed.
    pub join_timeout: Duration,
    pub auth: AuthMode,
    /// Tokens, used round-robin by connection index.
    pub tokens: Vec<String>,
    /// Room ids are `{room_prefix}{k}`; `None` picks `load-{run id}-`, fresh rooms per run.
    pub room_prefix: Option<String>,
    /// Loopback source addresses to spread client sockets over (127.0.0.1..=127.0.0.N); 0 picks
    /// one per 20,000 connections. Used only when the target is IPv4 loopback.
    pub source_addrs: usize,
    /// Longest wait after the last send for outstanding acks and deliveries.
    pub drain: Duration,
    /// Whether owed-but-missing messages are fetched with `history after` at the end.
    pub catch_up: bool,
    /// Whether each room's stored history is read back at the end (`history after 0`) to
    /// check that every acked message is stored once under a gap-free `seq`.
    pub check_storage: bool,
    /// How long a connection whose socket closed or failed mid-run keeps trying to reconnect
    /// (with backoff) before it counts as ended early.
    pub reconnect_window: Duration,
    pub thresholds: Thresholds,
    /// Notified once when the senders start (every connection has joined or failed): a caller
    /// running the load as a library injects its fault in the send phase from there.
    pub on_send_start: Option<std::sync::Arc<tokio::sync::Notify>>,
}

impl Config {
    /// A run against `url` with these tokens and small defaults: 10 connections in one room,
    /// one sender at 10 messages/s for 5 s.
    pub fn new(url: impl Into<String>, tokens: Vec<String>) -> Self {
        Self {
            url: url.into(),
            connections: 10,
            rooms: 1,
            senders_per_room: 1,
            rate: 10.0,
            duration: Duration::from_secs(5),
            body_bytes: 64,
            // 500 handshakes/s: 20,000 connections in 40 s, well under API Gateway's default
            // of 500 new connections per second per account.
            connect_rate: 500.0,
            // Bounds half-open handshakes when the server slows down, so a struggling server
            // sees at most 64 at once rather than the whole ramp's backlog.
            connect_concurrency: 64,
            // A join is a store write plus the presence fan-out; 30 s marks a connection failed
            // under a badly overloaded server instead of holding the whole run's start.
            join_timeout: Duration::from_secs(30),
            auth: AuthMode::QueryToken,
            tokens,
            room_prefix: None,
            source_addrs: 0,
            drain: Duration::from_secs(5),
            catch_up: true,
            check_storage: true,
            // A store's failover or a server restart takes seconds; 30 s rides those out
            // and still ends a run against a server that is gone for good.
            reconnect_window: Duration::from_secs(30),
            thresholds: Thresholds::default(),
            on_send_start: None,
        }
    }

    /// Checks that the run can be carried out as configured.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |what: &'static str, why: String| Err(ConfigError { what, why });
        if self.connections == 0 {
            return bad("connections", "must be at least 1".into());
        }
        if self.rooms == 0 || self.rooms > self.connections {
            return bad("rooms", format!("must be 1..={}", self.connections));
        }
        let smallest_room = self.connections / self.rooms;
        if self.senders_per_room == 0 || self.senders_per_room > smallest_room {
            return bad(
                "senders-per-room",
                format!("must be 1..={smallest_room} (the smallest room's size)"),
            );
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return bad("rate", "must be a positive number".into());
        }
        if self.duration.is_zero() {
            return bad("duration", "must be positive".into());
        }
        if self.body_bytes == 0 || self.body_bytes > BODY_MAX_CHARS {
            return bad("body-bytes", format!("must be 1..={BODY_MAX_CHARS}"));
        }
        if !(self.connect_rate.is_finite() && self.connect_rate > 0.0) {
            return bad("connect-rate", "must be a positive number".into());
        }
        if self.connect_concurrency == 0 {
            return bad("connect-concurrency", "must be at least 1".into());
        }
        if self.join_timeout.is_zero() {
            return bad("join-timeout-secs", "must be positive".into());
        }
        if self.tokens.is_empty() {
            return bad("tokens", "at least one token is needed".into());
        }
        if let Some(p) = &self.room_prefix {
            let last = format!("{p}{}", self.rooms - 1);
            if !frames::is_room_id(&format!("{p}0")) || !frames::is_room_id(&last) {
                return bad(
                    "room-prefix",
                    "`{prefix}{k}` must be a room id: [a-z0-9_-], starting with a letter or digit, at most 64 chars".into(),
                );
            }
        }
        Ok(())
    }

    /// Messages each room gets over the run.
    pub fn messages_per_room(&self) -> u64 {
        (self.rate * self.duration.as_secs_f64()).round() as u64
    }

    /// The room of connection `conn`.
    pub fn room_of(&self, conn: usize) -> usize {
        conn % self.rooms
    }

    /// If connection `conn` sends: its index among its room's senders.
    pub fn sender_index(&self, conn: usize) -> Option<usize> {
        let j = conn / self.rooms;
        (j < self.senders_per_room).then_some(j)
    }

    /// How many messages sender `j` of a room sends.
    pub fn sends_of(&self, j: usize) -> u64 {
        let n = self.messages_per_room();
        let s = self.senders_per_room as u64;
        n / s + u64::from((j as u64) < n % s)
    }

    /// When message `n` of sender `j` of room `room` is due, after the send phase starts: the
    /// room's sends are evenly spaced at `rate`, its senders take turns, and rooms are offset
    /// from each other so that they do not all send at the same instants.
    pub fn send_offset(&self, room: usize, j: usize, n: u64) -> Duration {
        let slot = j as f64 + n as f64 * self.senders_per_room as f64;
        let room_phase = room as f64 / self.rooms as f64;
        Duration::from_secs_f64((slot + room_phase) / self.rate)
    }

    /// Connections of room `room`.
    pub fn members_of(&self, room: usize) -> usize {
        self.connections / self.rooms + usize::from(room < self.connections % self.rooms)
    }
}

/// A configuration that cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{what} {why}")]
pub struct ConfigError {
    pub what: &'static str,
    pub why: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        let mut c = Config::new("ws://127.0.0.1:1/", vec!["t".into()]);
        c.connections = 10;
        c.rooms = 3;
        c.senders_per_room = 2;
        c.rate = 7.0;
        c.duration = Duration::from_secs(3);
        c
    }

    #[test]
    fn senders_share_each_rooms_messages() {
        let c = cfg();
        assert_eq!(c.messages_per_room(), 21);
        assert_eq!(c.sends_of(0) + c.sends_of(1), 21);
        assert_eq!((c.sends_of(0), c.sends_of(1)), (11, 10));
        assert_eq!(
            (0..10).filter_map(|i| c.sender_index(i)).count(),
            3 * 2,
            "two senders in each of three rooms"
        );
        assert_eq!((c.room_of(4), c.sender_index(4)), (1, Some(1)));
        assert_eq!(c.sender_index(6), None);
        assert_eq!(
            (0..3).map(|r| c.members_of(r)).collect::<Vec<_>>(),
            vec![4, 3, 3]
        );
    }

    #[test]
    fn a_rooms_sends_are_evenly_spaced() {
        let c = cfg();
        let mut offsets: Vec<Duration> = (0..2)
            .flat_map(|j| (0..c.sends_of(j)).map(move |n| (j, n)))
            .map(|(j, n)| c.send_offset(0, j, n))
            .collect();
        offsets.sort();
        for w in offsets.windows(2) {
            let gap = (w[1] - w[0]).as_secs_f64();
            assert!((gap - 1.0 / 7.0).abs() < 1e-9, "{gap}");
        }
        assert!(c.send_offset(1, 0, 0) > c.send_offset(0, 0, 0));
    }

    #[test]
    fn validation_names_the_bad_option() {
        assert_eq!(cfg().validate(), Ok(()));
        let mut c = cfg();
        c.senders_per_room = 4;
        assert_eq!(c.validate().unwrap_err().what, "senders-per-room");
        let mut c = cfg();
        c.rooms = 11;
        assert_eq!(c.validate().unwrap_err().what, "rooms");
        let mut c = cfg();
        c.body_bytes = 4001;
        assert_eq!(c.validate().unwrap_err().what, "body-bytes");
        let mut c = cfg();
        c.tokens.clear();
        assert_eq!(c.validate().unwrap_err().what, "tokens");
        let mut c = cfg();
        c.room_prefix = Some("Bad".into());
        assert_eq!(c.validate().unwrap_err().what, "room-prefix");
        let mut c = cfg();
        c.rate = 0.0;
        assert_eq!(c.validate().unwrap_err().what, "rate");
    }
}
