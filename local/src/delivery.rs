//! How the handlers' posts reach connections in hubbub-local: the one `POST @connections/{id}`
//! path both management clients end in ([`post`], with the injected faults of
//! [`crate::faults`]), and its settings ([`DeliveryConfig`]): the attempt timeout, the post
//! budget and the faults, with their command-line flags ([`DeliveryArgs`]).
//!
//! The in-process client ([`crate::gateway::RegistryGateway`]) and the HTTP `@connections` API
//! ([`crate::management`], which `--management-client http` posts to through the Lambdas'
//! `ManagementGateway`) both call [`post`]; both clients bound an attempt by the same timeout
//! and retry by hubbub-core's one rule (`gateway::retry`), drawing from one budget per server.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, value_parser};
use hubbub_core::config::{Lookup, vars};
use hubbub_core::gateway::budget::BudgetConfig;
use hubbub_core::gateway::management::ATTEMPT_TIMEOUT;

use crate::cli::{CliError, with_env};
use crate::faults::{Fault, FaultSpec, Faults};
use crate::registry::{PostRefusal, Registry};

/// The variable that can give the fault spec instead of `--inject-post-faults`.
pub const ENV_INJECT_POST_FAULTS: &str = "HUBBUB_INJECT_POST_FAULTS";
/// The variable that can give the seed instead of `--fault-seed`.
pub const ENV_FAULT_SEED: &str = "HUBBUB_FAULT_SEED";

/// Injected faults: what and from which seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultConfig {
    pub spec: FaultSpec,
    /// `None`: drawn at start (and logged).
    pub seed: Option<u64>,
}

/// How the handlers' posts are bounded, paced and disturbed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliveryConfig {
    /// How long a handler waits for one post's answer before its outcome counts as unknown
    /// (and it is never retried): the Lambdas' attempt timeout, 1.5 s, by default.
    pub post_timeout: Duration,
    /// The server's share of an account's `@connections` quota (every post and retry draws
    /// from it); `None`: posts are not paced, as by default on AWS.
    pub budget: Option<BudgetConfig>,
    /// Injected faults; `None` (the default): none.
    pub faults: Option<FaultConfig>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            post_timeout: ATTEMPT_TIMEOUT,
            budget: None,
            faults: None,
        }
    }
}

/// What one `POST @connections/{id}` came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostOutcome {
    /// Queued for the client.
    Posted,
    /// Refused by the connection's state (410, 413, 429 for a client that is not reading).
    Refused(PostRefusal),
    /// An injected fault's answer (429 or 500); nothing was delivered.
    Injected(u16),
}

impl PostOutcome {
    /// The HTTP status the management API answers with.
    pub fn status(self) -> u16 {
        match self {
            Self::Posted => 200,
            Self::Refused(r) => r.status(),
            Self::Injected(status) => status,
        }
    }
}

/// Posts `data` to the connection `id`, as `POST @connections/{id}` does, after the fault the
/// post draws (if faults are on). A slow post is delivered by a task of its own after the
/// delay, so it arrives whether or not the caller is still waiting; this future ends when it
/// has.
pub async fn post(
    registry: &Arc<Registry>,
    faults: Option<&Faults>,
    id: &str,
    data: Bytes,
) -> PostOutcome {
    let outcome = |r: Result<(), PostRefusal>| match r {
        Ok(()) => PostOutcome::Posted,
        Err(refusal) => PostOutcome::Refused(refusal),
    };
    match faults.and_then(Faults::draw) {
        None => outcome(registry.post(id, data)),
        Some(Fault::Throttle) => PostOutcome::Injected(429),
        Some(Fault::Error) => PostOutcome::Injected(500),
        Some(Fault::Slow(delay)) => {
            let (registry, id) = (registry.clone(), id.to_owned());
            let delivery = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                registry.post(&id, data)
            });
            match delivery.await {
                Ok(r) => outcome(r),
                // The task cannot panic (a map lookup and a channel send) and is never
                // aborted; were it lost all the same, nothing was delivered: a 500.
                Err(_) => PostOutcome::Injected(500),
            }
        }
    }
}

/// The delivery flags of `serve`.
#[derive(Debug, Clone, Args)]
pub struct DeliveryArgs {
    /// How long the handlers wait for a @connections post before its outcome counts as
    /// unknown (never retried), with either management client
    #[arg(
        long,
        value_name = "N",
        default_value_t = u64::try_from(ATTEMPT_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
        value_parser = value_parser!(u64).range(1..=60_000)
    )]
    post_timeout_ms: u64,
    #[arg(
        long,
        value_name = "N",
        value_parser = value_parser!(u32).range(1..=10_000),
        help = with_env(
            "Pace the handlers' @connections calls (retries included) to N a second, as one \
             Lambda instance's share of the account quota [default: unpaced]",
            vars::POST_RATE_PER_SEC,
        )
    )]
    post_rate_per_sec: Option<u32>,
    #[arg(
        long,
        value_name = "N",
        value_parser = value_parser!(u32).range(1..=5_000),
        help = with_env(
            "Calls let through at once by --post-rate-per-sec [default: half its rate]",
            vars::POST_BURST,
        )
    )]
    post_burst: Option<u32>,
    #[arg(
        long,
        value_name = "SPEC",
        value_parser = fault_spec,
        help = with_env(
            "Inject faults into a fraction of @connections posts: 429 and 500 answers (not \
             delivered) and slow posts (delivered after DELAY, then answered), e.g. \
             429=0.05,500=0.02,slow=0.05:2s [default: none]",
            ENV_INJECT_POST_FAULTS,
        )
    )]
    inject_post_faults: Option<FaultSpec>,
    #[arg(
        long,
        value_name = "N",
        help = with_env(
            "Seed of the injected faults, to repeat a run [default: random, logged]",
            ENV_FAULT_SEED,
        )
    )]
    fault_seed: Option<u64>,
}

fn fault_spec(v: &str) -> Result<FaultSpec, String> {
    v.parse()
        .map_err(|e: crate::faults::FaultSpecError| e.to_string())
}

impl DeliveryArgs {
    /// The configuration: flags first, then their variables.
    pub fn into_config(self, env: Lookup<'_>) -> Result<DeliveryConfig, CliError> {
        let env_err = |var: &'static str| move |reason: String| CliError::Env { var, reason };
        // The flags stand in for their variables, so one reader checks both.
        let rate = self.post_rate_per_sec.map(|n| n.to_string());
        let burst = self.post_burst.map(|n| n.to_string());
        let lookup = |var: &str| match var {
            vars::POST_RATE_PER_SEC if rate.is_some() => rate.clone(),
            vars::POST_BURST if burst.is_some() => burst.clone(),
            _ => env(var),
        };
        let budget = BudgetConfig::from_lookup(&lookup)?;
        let spec = match self.inject_post_faults {
            Some(s) => Some(s),
            None => env(ENV_INJECT_POST_FAULTS)
                .map(|v| fault_spec(&v))
                .transpose()
                .map_err(env_err(ENV_INJECT_POST_FAULTS))?,
        };
        let seed = match self.fault_seed {
            Some(s) => Some(s),
            None => env(ENV_FAULT_SEED)
                .map(|v| v.trim().parse::<u64>().map_err(|e| e.to_string()))
                .transpose()
                .map_err(env_err(ENV_FAULT_SEED))?,
        };
        Ok(DeliveryConfig {
            post_timeout: Duration::from_millis(self.post_timeout_ms),
            budget,
            faults: spec
                .filter(FaultSpec::is_active)
                .map(|spec| FaultConfig { spec, seed }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Command, parse_args};

    fn serve(args: &[&str], env: Lookup<'_>) -> Result<DeliveryConfig, CliError> {
        let args = args.iter().map(|s| (*s).to_owned());
        match parse_args(args, env)? {
            Command::Serve(c) => Ok(c.delivery),
            other => panic!("{other:?}"),
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn delivery_is_plain_by_default() {
        let d = serve(&[], &no_env).expect("defaults");
        assert_eq!(d, DeliveryConfig::default());
        assert_eq!(d.post_timeout, Duration::from_millis(1500));
        assert_eq!((d.budget, d.faults), (None, None));
        // A spec with nothing in it turns nothing on.
        let d = serve(&["--inject-post-faults", "429=0"], &no_env).expect("zero");
        assert_eq!(d.faults, None);
    }

    #[test]
    fn delivery_flags_win_over_their_variables() {
        let env = |v: &str| match v {
            "HUBBUB_POST_RATE_PER_SEC" => Some("500".to_owned()),
            "HUBBUB_INJECT_POST_FAULTS" => Some("500=0.5".to_owned()),
            "HUBBUB_FAULT_SEED" => Some("9".to_owned()),
            _ => None,
        };
        let d = serve(&[], &env).expect("from the environment");
        assert_eq!(
            d.budget,
            Some(BudgetConfig {
                rate_per_sec: 500,
                burst: 250
            })
        );
        let faults = d.faults.expect("faults");
        assert_eq!((faults.spec.error, faults.spec.throttle), (0.5, 0.0));
        assert_eq!(faults.seed, Some(9));

        let d = serve(
            &[
                "--post-timeout-ms",
                "250",
                "--post-rate-per-sec",
                "40",
                "--post-burst",
                "3",
                "--inject-post-faults",
                "429=0.1,slow=0.2:700ms",
                "--fault-seed",
                "1",
            ],
            &env,
        )
        .expect("flags");
        assert_eq!(d.post_timeout, Duration::from_millis(250));
        assert_eq!(
            d.budget,
            Some(BudgetConfig {
                rate_per_sec: 40,
                burst: 3
            })
        );
        let faults = d.faults.expect("faults");
        assert_eq!(
            (
                faults.spec.throttle,
                faults.spec.slow,
                faults.spec.slow_delay
            ),
            (0.1, 0.2, Duration::from_millis(700))
        );
        assert_eq!(faults.seed, Some(1));
    }

    #[test]
    fn unusable_delivery_settings_are_refused() {
        for bad in [
            &["--inject-post-faults", "429=2"][..],
            &["--post-rate-per-sec", "0"],
            &["--post-rate-per-sec", "10001"],
            &["--post-burst", "5"],
            &["--post-timeout-ms", "0"],
            &["--fault-seed", "-1"],
        ] {
            assert!(serve(bad, &no_env).is_err(), "{bad:?}");
        }
        let bad_env = |v: &str| (v == "HUBBUB_INJECT_POST_FAULTS").then(|| "slow".to_owned());
        assert!(matches!(
            serve(&[], &bad_env),
            Err(CliError::Env {
                var: "HUBBUB_INJECT_POST_FAULTS",
                ..
            })
        ));
        let bad_seed = |v: &str| (v == "HUBBUB_FAULT_SEED").then(|| "x".to_owned());
        assert!(matches!(
            serve(&[], &bad_seed),
            Err(CliError::Env {
                var: "HUBBUB_FAULT_SEED",
                ..
            })
        ));
    }
}
