//! Fault injection on hubbub-local's `@connections` posts, off by default: a fraction of
//! `POST @connections/{id}` calls answer 429 (throttled), 500 (failed), or are slow.
//!
//! `--inject-post-faults 429=0.05,500=0.02,slow=0.05:2s` (or `HUBBUB_INJECT_POST_FAULTS`):
//!
//! - `429=P`: answered 429 `LimitExceededException`, nothing delivered (API Gateway's
//!   throttling);
//! - `500=P`: answered 500 `InternalServerErrorException`, nothing delivered;
//! - `slow=P:DELAY`: delivered after DELAY, then answered. With DELAY beyond the client's
//!   attempt timeout (`--post-timeout-ms`, 1.5 s by default) the sender gives up first and
//!   cannot know whether the frame arrived, while it does arrive: "slow, then delivered",
//!   the case where a retry would deliver a frame twice. The delivery is its own task, so a
//!   caller that stops waiting (its timeout, a closed HTTP connection) does not cancel it.
//!
//! Each post draws once, from one random sequence: seeded with `--fault-seed` (or
//! `HUBBUB_FAULT_SEED`) it is the same sequence on every run (which post gets which fault
//! still depends on the order concurrent posts arrive in); without, the seed is drawn at
//! start and logged so that a run can be repeated. Only posts are affected: GET and DELETE
//! are answered as usual. Both ways the handlers post, in-process and over HTTP
//! (`--management-client`), go through [`crate::delivery::post`], the one place faults are
//! applied, so both see the same faults.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The delay of `slow` when the spec names none: beyond the default attempt timeout (1.5 s),
/// so a slow post is an unknown outcome to the sender.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(2);
/// The longest `slow` delay accepted: a minute is far past any client timeout; longer only
/// keeps frames (and their tasks) waiting in memory.
pub const MAX_SLOW_DELAY: Duration = Duration::from_secs(60);

/// What fraction of posts get which fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultSpec {
    /// Answered 429, not delivered.
    pub throttle: f64,
    /// Answered 500, not delivered.
    pub error: f64,
    /// Delivered after `slow_delay`, then answered.
    pub slow: f64,
    pub slow_delay: Duration,
}

impl Default for FaultSpec {
    fn default() -> Self {
        Self {
            throttle: 0.0,
            error: 0.0,
            slow: 0.0,
            slow_delay: DEFAULT_SLOW_DELAY,
        }
    }
}

impl FaultSpec {
    /// Whether any post can be affected.
    pub fn is_active(&self) -> bool {
        self.throttle + self.error + self.slow > 0.0
    }
}

/// Why a fault spec cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} (expected e.g. 429=0.05,500=0.02,slow=0.05:2s)")]
pub struct FaultSpecError(String);

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| Err(FaultSpecError(why));
        let mut spec = FaultSpec::default();
        let mut seen = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((kind, value)) = part.split_once('=') else {
                return bad(format!("`{part}` is not KIND=FRACTION"));
            };
            let kind = kind.trim();
            if seen.contains(&kind) {
                return bad(format!("`{kind}` is given twice"));
            }
            seen.push(kind);
            let (fraction, delay) = match value.split_once(':') {
                Some((f, d)) if kind == "slow" => (f, Some(d)),
                Some(_) => return bad(format!("only `slow` takes a delay, not `{kind}`")),
                None => (value, None),
            };
            let fraction = match fraction.trim().parse::<f64>() {
                Ok(f) if (0.0..=1.0).contains(&f) => f,
                _ => return bad(format!("`{kind}`: the fraction must be in 0..=1")),
            };
            match kind {
                "429" => spec.throttle = fraction,
                "500" => spec.error = fraction,
                "slow" => {
                    spec.slow = fraction;
                    if let Some(d) = delay {
                        spec.slow_delay = parse_delay(d.trim()).map_err(FaultSpecError)?;
                    }
                }
                other => return bad(format!("unknown fault `{other}`: use 429, 500 or slow")),
            }
        }
        if seen.is_empty() {
            return bad("no fault given".into());
        }
        if spec.throttle + spec.error + spec.slow > 1.0 + f64::EPSILON {
            return bad("the fractions add up to more than 1".into());
        }
        Ok(spec)
    }
}

/// `300ms`, `2s`, `1.5s`.
fn parse_delay(d: &str) -> Result<Duration, String> {
    let parsed = if let Some(ms) = d.strip_suffix("ms") {
        ms.parse::<u64>().ok().map(Duration::from_millis)
    } else if let Some(secs) = d.strip_suffix('s') {
        secs.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    } else {
        None
    };
    match parsed {
        Some(delay) if delay > Duration::ZERO && delay <= MAX_SLOW_DELAY => Ok(delay),
        Some(_) => Err(format!(
            "the slow delay must be above 0 and at most {}s",
            MAX_SLOW_DELAY.as_secs()
        )),
        None => Err(format!("`{d}` is not a delay such as 300ms or 2s")),
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "429={},500={},slow={}:{}ms",
            self.throttle,
            self.error,
            self.slow,
            self.slow_delay.as_millis()
        )
    }
}

/// One post's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer 429; deliver nothing.
    Throttle,
    /// Answer 500; deliver nothing.
    Error,
    /// Deliver after the delay, then answer.
    Slow(Duration),
}

/// How many posts drew which fault.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Posts that drew (every post while faults are on).
    pub posts: u64,
    pub throttled: u64,
    pub errored: u64,
    pub slowed: u64,
}

/// The faults of one server: its spec, its random sequence and its counts.
#[derive(Debug)]
pub struct Faults {
    spec: FaultSpec,
    seed: u64,
    /// One sequence for every post. A std Mutex: held for one draw, never across an `.await`.
    rng: Mutex<StdRng>,
    posts: AtomicU64,
    throttled: AtomicU64,
    errored: AtomicU64,
    slowed: AtomicU64,
}

impl Faults {
    /// Faults by `spec`, drawn from `seed` (a random seed when `None`).
    pub fn new(spec: FaultSpec, seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or_else(rand::random);
        Self {
            spec,
            seed,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            posts: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            errored: AtomicU64::new(0),
            slowed: AtomicU64::new(0),
        }
    }

    pub fn spec(&self) -> &FaultSpec {
        &self.spec
    }

    /// The seed in use (to repeat a run with `--fault-seed`).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The next post's fault, if any.
    pub fn draw(&self) -> Option<Fault> {
        let x: f64 = self
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .random();
        self.posts.fetch_add(1, Ordering::Relaxed);
        let s = &self.spec;
        let (fault, counter) = if x < s.throttle {
            (Fault::Throttle, &self.throttled)
        } else if x < s.throttle + s.error {
            (Fault::Error, &self.errored)
        } else if x < s.throttle + s.error + s.slow {
            (Fault::Slow(s.slow_delay), &self.slowed)
        } else {
            return None;
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }

    /// The counts so far.
    pub fn stats(&self) -> FaultStats {
        FaultStats {
            posts: self.posts.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            errored: self.errored.load(Ordering::Relaxed),
            slowed: self.slowed.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse_and_print() {
        let spec: FaultSpec = "429=0.05,500=0.02,slow=0.05:300ms".parse().expect("spec");
        assert_eq!(
            spec,
            FaultSpec {
                throttle: 0.05,
                error: 0.02,
                slow: 0.05,
                slow_delay: Duration::from_millis(300)
            }
        );
        assert_eq!(spec.to_string(), "429=0.05,500=0.02,slow=0.05:300ms");
        assert_eq!(spec.to_string().parse::<FaultSpec>(), Ok(spec));
        let slow: FaultSpec = " slow = 0.5 : 1.5s ".parse().expect("spaces");
        assert_eq!(
            (slow.slow, slow.slow_delay, slow.throttle),
            (0.5, Duration::from_millis(1500), 0.0)
        );
        let default_delay: FaultSpec = "slow=1".parse().expect("no delay");
        assert_eq!(default_delay.slow_delay, DEFAULT_SLOW_DELAY);
        assert!(!"429=0".parse::<FaultSpec>().expect("zero").is_active());
        for bad in [
            "",
            "429",
            "429=1.5",
            "429=-0.1",
            "404=0.1",
            "429=0.1,429=0.2",
            "429=0.1:2s",
            "slow=0.1:2",
            "slow=0.1:0ms",
            "slow=0.1:61s",
            "429=0.6,500=0.5",
        ] {
            assert!(bad.parse::<FaultSpec>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn faults_follow_their_fractions_and_their_seed() {
        let spec: FaultSpec = "429=0.1,500=0.05,slow=0.2:1s".parse().expect("spec");
        let faults = Faults::new(spec, Some(42));
        let draws: Vec<Option<Fault>> = (0..20_000).map(|_| faults.draw()).collect();
        let stats = faults.stats();
        assert_eq!(stats.posts, 20_000);
        let count = |f: Fault| draws.iter().filter(|d| **d == Some(f)).count() as u64;
        assert_eq!(stats.throttled, count(Fault::Throttle));
        assert_eq!(stats.errored, count(Fault::Error));
        assert_eq!(stats.slowed, count(Fault::Slow(Duration::from_secs(1))));
        // Within 10 % of the expected counts (2,000, 1,000 and 4,000 of 20,000).
        let near = |got: u64, want: u64| got.abs_diff(want) * 10 < want;
        assert!(near(stats.throttled, 2000), "{stats:?}");
        assert!(near(stats.errored, 1000), "{stats:?}");
        assert!(near(stats.slowed, 4000), "{stats:?}");

        // The same seed draws the same sequence; another seed, another one.
        let again = Faults::new(spec, Some(42));
        let replay: Vec<Option<Fault>> = (0..20_000).map(|_| again.draw()).collect();
        assert_eq!(draws, replay);
        let other = Faults::new(spec, Some(43));
        let different: Vec<Option<Fault>> = (0..20_000).map(|_| other.draw()).collect();
        assert_ne!(draws, different);
        // Without a seed one is chosen, and reported.
        let unseeded = Faults::new(spec, None);
        let seeded_like_it = Faults::new(spec, Some(unseeded.seed()));
        for _ in 0..100 {
            assert_eq!(unseeded.draw(), seeded_like_it.draw());
        }
    }
}
