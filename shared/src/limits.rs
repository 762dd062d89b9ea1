//! Abuse limits: what one connection, one user or one client address may do, so that one
//! client cannot turn frames into thousands of posts, flood a room, or spend the account's
//! shared API Gateway quota (10,000 requests/s) and Lambda concurrency.
//!
//! | limit | default | where it is kept |
//! |---|---|---|
//! | `sendMessage` per connection | 5/s sustained, bursts of 20 | the connection's record ([`crate::store::ConnectionStore::take_token`]) |
//! | every other WebSocket route but `typing` and `ping` | 10/s, bursts of 120 | the same record, its own bucket |
//! | `typing` fan-outs per user and room | one per 3 s, extra frames dropped silently | [`crate::store::ConnectionStore::typing_gate`] |
//! | rooms joined per connection | 50 at once | counted atomically with each join |
//! | rooms created per user | 100 (`POST /rooms` and `joinRoom` of a new room) | counted atomically with each creation |
//! | registrations per client address | 10 per hour | the failed-attempt counters ([`crate::store::AttemptStore`]) |
//!
//! The rate limits are token buckets, kept as the generic cell rate algorithm (GCRA) keeps
//! them: one number per bucket, the *theoretical arrival time* (TAT) at which the bucket would
//! be full again. A frame at `now` is allowed when `TAT - now <= (burst - 1) * interval` and
//! then moves the TAT to `max(TAT, now) + interval`; otherwise it is refused and may retry
//! when the TAT has come down to the limit. That is exactly a bucket of `burst` tokens
//! refilled at `rate` per second, but with one number and no refill arithmetic, so a store can
//! apply it with a single conditional write ([`Bucket::check`] is the arithmetic; the DynamoDB
//! adapter runs the same rule as condition expressions).
//!
//! Why the state lives in the connection store and not in the function: on AWS each frame is
//! its own Lambda invocation and may land in any execution environment, so a counter in memory
//! would let a flood spread over N warm environments through N times the limit.

use std::time::Duration;

use crate::config::{ConfigError, Lookup, number, vars};
use crate::error::RouteError;
use crate::store::ConnectionStore;

/// What a client is told when it has joined too many rooms on one connection.
pub const JOINED_TOO_MANY: &str =
    "this connection has joined as many rooms as it may; leave one first";
/// What a client is told when its user has created as many rooms as it may.
pub const CREATED_TOO_MANY: &str = "you have created as many rooms as you may";

/// A token bucket: `rate` tokens a second, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Sustained frames per second.
    pub rate_per_sec: u32,
    /// Frames allowed back to back after a quiet spell.
    pub burst: u32,
}

/// What [`Bucket::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed: store this TAT (Unix milliseconds).
    Allowed { tat_ms: i64 },
    /// Refused: the next frame is allowed in this many milliseconds (at least 1).
    Limited { retry_after_ms: u64 },
}

impl Bucket {
    /// Milliseconds per token (1 at the fastest).
    pub fn interval_ms(&self) -> i64 {
        i64::from(1000 / self.rate_per_sec.max(1)).max(1)
    }

    /// How far the TAT may run ahead of now: the burst beyond the frame being checked.
    pub fn tolerance_ms(&self) -> i64 {
        i64::from(self.burst.max(1) - 1) * self.interval_ms()
    }

    /// Whether a frame at `now_ms` is allowed given the stored TAT (`None`: never used).
    pub fn check(&self, tat_ms: Option<i64>, now_ms: i64) -> Verdict {
        let tat = tat_ms.unwrap_or(now_ms).max(now_ms);
        let limit = now_ms + self.tolerance_ms();
        if tat <= limit {
            Verdict::Allowed {
                tat_ms: tat + self.interval_ms(),
            }
        } else {
            Verdict::Limited {
                retry_after_ms: u64::try_from(tat - limit).unwrap_or(1).max(1),
            }
        }
    }
}

/// Which of a connection's buckets a frame spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketKind {
    /// `sendMessage`.
    Send,
    /// `joinRoom`, `leaveRoom`, `history`.
    Route,
}

impl BucketKind {
    /// Every bucket a connection has.
    pub const ALL: [Self; 2] = [Self::Send, Self::Route];

    /// The attribute holding this bucket's TAT on the connection's record.
    pub fn attribute(self) -> &'static str {
        match self {
            Self::Send => "sendTat",
            Self::Route => "routeTat",
        }
    }
}

/// What taking a token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// A token was taken: go on.
    Allowed,
    /// The bucket is empty: refuse with `rate_limited` and this hint.
    Limited { retry_after_ms: u64 },
}

/// A fixed window: at most `max` in each `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub max: u32,
    pub window: time::Duration,
}

/// Every abuse limit, read once at init (docs/protocol.md, "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `sendMessage` per connection. 5/s sustained is several times the fastest typist
    /// (a message a second is already a lot for a person), and a burst of 20 lets a client
    /// flush an outbox after a reconnect; a script posting faster is what this stops.
    pub send: Bucket,
    /// `joinRoom`, `leaveRoom` and `history` per connection. Looser than sends, because a
    /// reconnecting client joins every room and catches each one up at once: the burst of
    /// 120 covers [`Limits::max_joined_rooms`] joins plus a history page each, with room to spare.
    pub routes: Bucket,
    /// At most one typing fan-out per user and room in this interval (3 s): typing
    /// indicators are shown for a few seconds anyway, so more is noise that costs a post to
    /// every member.
    pub typing_interval: Duration,
    /// Rooms one connection may have joined at once (50): each joined room is a
    /// membership record and a share of every fan-out in it.
    pub max_joined_rooms: u32,
    /// Rooms one user may create (100): rooms are never deleted, and `GET /rooms` lists at
    /// most 1000, so one account must not be able to fill the list.
    pub max_rooms_created: u32,
    /// Registrations per client address (10 an hour): enough for a family or an office
    /// behind one address, too few to farm accounts.
    pub registrations: Window,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            send: Bucket {
                rate_per_sec: 5,
                burst: 20,
            },
            routes: Bucket {
                rate_per_sec: 10,
                burst: 120,
            },
            typing_interval: Duration::from_secs(3),
            max_joined_rooms: 50,
            max_rooms_created: 100,
            registrations: Window {
                max: 10,
                window: time::Duration::hours(1),
            },
        }
    }
}

impl Limits {
    /// Reads the optional `HUBBUB_SEND_RATE_PER_SEC`, `HUBBUB_SEND_BURST`,
    /// `HUBBUB_ROUTE_RATE_PER_SEC`, `HUBBUB_ROUTE_BURST`, `HUBBUB_TYPING_INTERVAL_MS`,
    /// `HUBBUB_MAX_JOINED_ROOMS`, `HUBBUB_MAX_ROOMS_CREATED`, `HUBBUB_REGISTER_MAX` and
    /// `HUBBUB_REGISTER_WINDOW_SECS`; each unset one keeps its default.
    pub fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let n = |var, default: u32, min, max| -> Result<u32, ConfigError> {
            let v = number(get, var, u64::from(default), min, max)?;
            Ok(u32::try_from(v).unwrap_or(u32::MAX))
        };
        Ok(Self {
            // Bounds: at least one frame a second (slower would make the web client's
            // ordinary use fail); at most 1000/s, where the interval reaches 1 ms.
            send: Bucket {
                rate_per_sec: n(vars::SEND_RATE_PER_SEC, d.send.rate_per_sec, 1, 1000)?,
                burst: n(vars::SEND_BURST, d.send.burst, 1, 10_000)?,
            },
            routes: Bucket {
                rate_per_sec: n(vars::ROUTE_RATE_PER_SEC, d.routes.rate_per_sec, 1, 1000)?,
                burst: n(vars::ROUTE_BURST, d.routes.burst, 1, 10_000)?,
            },
            typing_interval: Duration::from_millis(number(
                get,
                vars::TYPING_INTERVAL_MS,
                3000,
                0,
                60_000,
            )?),
            max_joined_rooms: n(vars::MAX_JOINED_ROOMS, d.max_joined_rooms, 1, 10_000)?,
            max_rooms_created: n(vars::MAX_ROOMS_CREATED, d.max_rooms_created, 1, 1_000_000)?,
            registrations: Window {
                max: n(vars::REGISTER_MAX, d.registrations.max, 1, 1_000_000)?,
                window: time::Duration::seconds(i64::from(n(
                    vars::REGISTER_WINDOW_SECS,
                    3600,
                    1,
                    86_400,
                )?)),
            },
        })
    }

    /// The bucket a frame of `kind` spends.
    pub fn bucket(&self, kind: BucketKind) -> Bucket {
        match kind {
            BucketKind::Send => self.send,
            BucketKind::Route => self.routes,
        }
    }
}

/// Spends one token of the calling connection's `kind` bucket, or refuses the frame with
/// `rate_limited` and its retry hint. Runs before the route touches anything else, so a
/// refused frame costs the bucket update and nothing more.
pub async fn spend(
    connections: &dyn ConnectionStore,
    limits: &Limits,
    connection_id: &str,
    kind: BucketKind,
) -> Result<(), RouteError> {
    match connections
        .take_token(connection_id, kind, limits.bucket(kind), now_ms())
        .await?
    {
        Take::Allowed => Ok(()),
        Take::Limited { retry_after_ms } => {
            tracing::info!(?kind, retry_after_ms, "frame rate-limited");
            Err(RouteError::RateLimited { retry_after_ms })
        }
    }
}

/// Now as Unix milliseconds, the clock of every bucket and typing gate.
pub fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_BURST_20: Bucket = Bucket {
        rate_per_sec: 5,
        burst: 20,
    };

    #[test]
    fn a_burst_then_the_rate() {
        let b = FIVE_BURST_20;
        let mut tat = None;
        let now = 1_000_000;
        for i in 0..20 {
            match b.check(tat, now) {
                Verdict::Allowed { tat_ms } => tat = Some(tat_ms),
                Verdict::Limited { .. } => panic!("frame {i} of the burst refused"),
            }
        }
        assert_eq!(
            b.check(tat, now),
            Verdict::Limited {
                retry_after_ms: 200
            }
        );
        // 200 ms later one token has come back, and only one.
        assert!(matches!(b.check(tat, now + 199), Verdict::Limited { .. }));
        let Verdict::Allowed { tat_ms } = b.check(tat, now + 200) else {
            panic!("a token came back after the interval");
        };
        assert_eq!(
            b.check(Some(tat_ms), now + 200),
            Verdict::Limited {
                retry_after_ms: 200
            }
        );
    }

    #[test]
    fn a_quiet_spell_refills_to_the_burst_not_beyond() {
        let b = FIVE_BURST_20;
        // Last used an hour ago: exactly a burst is allowed now.
        let mut tat = Some(0);
        let now = 3_600_000;
        let mut allowed = 0;
        while let Verdict::Allowed { tat_ms } = b.check(tat, now) {
            tat = Some(tat_ms);
            allowed += 1;
        }
        assert_eq!(allowed, 20);
    }

    #[test]
    fn sustained_rate_is_never_refused() {
        let b = FIVE_BURST_20;
        let mut tat = None;
        for i in 0..1000 {
            match b.check(tat, i * 200) {
                Verdict::Allowed { tat_ms } => tat = Some(tat_ms),
                Verdict::Limited { .. } => panic!("frame {i} at exactly the rate refused"),
            }
        }
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(Limits::from_lookup(&|_| None), Ok(Limits::default()));
        let set = |var: &'static str, val: &'static str| {
            move |k: &str| (k == var).then(|| val.to_owned())
        };
        let l = Limits::from_lookup(&set(vars::SEND_RATE_PER_SEC, "50")).expect("valid");
        assert_eq!(l.send.rate_per_sec, 50);
        assert_eq!(l.send.interval_ms(), 20);
        for (var, val) in [
            (vars::SEND_RATE_PER_SEC, "0"),
            (vars::ROUTE_BURST, "0"),
            (vars::MAX_JOINED_ROOMS, "-1"),
            (vars::TYPING_INTERVAL_MS, "60001"),
        ] {
            let err = Limits::from_lookup(&set(var, val)).expect_err(var);
            assert!(err.to_string().contains(var), "{err}");
        }
    }
}
