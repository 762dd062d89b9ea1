//! The `hubbub-load` command line: every option of a run, parsed by clap, turned into a
//! [`Config`] and a [`TokenSource`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Parser};

use crate::config::{AuthMode, Config, Thresholds};
use crate::tokens::TokenSource;

/// hubbub-load: opens many WebSocket connections to a hubbub server, sends paced messages in
/// rooms, and judges every ack and delivery (exactly once, to every other member, never to the
/// sender or another room, with the ack's seq). Prints a report ending with `VERDICT: ok` or
/// `VERDICT: FAIL (...)`; the exit status is 1 on FAIL, 2 when the run could not be carried out.
#[derive(Debug, Clone, Parser)]
#[command(name = "hubbub-load", version)]
#[command(group(ArgGroup::new("token_source").required(true).args(["tokens", "token_cmd", "register"])))]
pub struct Args {
    /// WebSocket URL: ws://127.0.0.1:3001/ for hubbub-local, wss://{api}.execute-api.{region}.amazonaws.com/{stage} on AWS.
    #[arg(long, env = "HUBBUB_LOAD_URL", default_value = "ws://127.0.0.1:3001/")]
    pub url: String,
    /// Connections to open.
    #[arg(long, short = 'c', default_value_t = 100)]
    pub connections: usize,
    /// Rooms; connections are spread evenly, each joins one.
    #[arg(long, short = 'r', default_value_t = 1)]
    pub rooms: usize,
    /// Sending connections per room.
    #[arg(long, default_value_t = 1)]
    pub senders_per_room: usize,
    /// Messages per second per room, over all its senders.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Seconds of sending.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Message body size in bytes (1..=4000; at least the 10-odd bytes of the send-time stamp).
    #[arg(long, default_value_t = 64)]
    pub body_bytes: usize,
    /// Connections opened per second (the ramp), so that thousands do not arrive at once.
    #[arg(long, default_value_t = 500.0)]
    pub connect_rate: f64,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Seconds to wait for `joined` before a connection counts as failed.
    #[arg(long, default_value_t = 30.0)]
    pub join_timeout_secs: f64,
    /// Present the token as `?token=` (the default).
    #[arg(long, conflicts_with = "subprotocol")]
    pub query_token: bool,
    /// Present the token as the `bearer.<jwt>` subprotocol, as browsers do.
    #[arg(long)]
    pub subprotocol: bool,
    /// File of access tokens, one per line, reused round-robin.
    #[arg(long, env = "HUBBUB_LOAD_TOKENS")]
    pub tokens: Option<PathBuf>,
    /// Command printing tokens: without `{i}`, run once, one token a line (e.g. "hubbub-local
    /// token --user load --count 100"); with `{i}`, run per user, `{i}` = 0, 1, ...
    #[arg(long)]
    pub token_cmd: Option<String>,
    /// HTTP API base URL: register (or log into) users `{user-prefix}{i}` and use their tokens.
    #[arg(long)]
    pub register: Option<String>,
    /// Distinct users for --token-cmd with `{i}` and --register.
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Username prefix for --register (usernames are 3..=32 chars of [A-Za-z0-9_.-]).
    #[arg(long, default_value = "hubbub-load-")]
    pub user_prefix: String,
    /// Password for --register.
    #[arg(
        long,
        env = "HUBBUB_LOAD_PASSWORD",
        default_value = "hubbub-load-password"
    )]
    pub password: String,
    /// Room ids are `{prefix}{k}`; by default `load-{run id}-`, fresh rooms every run.
    #[arg(long)]
    pub room_prefix: Option<String>,
    /// Loopback source addresses to spread sockets over (127.0.0.1..=127.0.0.N) when the
    /// target is on 127.0.0.0/8; 0 = one per 20,000 connections.
    #[arg(long, default_value_t = 0)]
    pub source_addrs: usize,
    /// Longest wait, after the last send, for outstanding acks and deliveries.
    #[arg(long, default_value_t = 5.0)]
    pub drain_secs: f64,
    /// Skip the `history after` catch-up of missing messages at the end.
    #[arg(long)]
    pub no_catch_up: bool,
    /// Skip reading each room's stored history back at the end (the storage check).
    #[arg(long)]
    pub no_storage_check: bool,
    /// How long a connection that lost its socket mid-run keeps reconnecting, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub reconnect_window_secs: f64,
    /// The run spans faults on purpose: reconnects, `unavailable` errors and catch-up
    /// recoveries are reported but allowed; lost messages and storage duplicates still fail.
    #[arg(long)]
    pub faults: bool,
    /// Fail when the p99 of send-to-ack exceeds this many ms.
    #[arg(long)]
    pub max_ack_p99_ms: Option<f64>,
    /// Fail when the p99 of send-to-delivery exceeds this many ms.
    #[arg(long)]
    pub max_delivery_p99_ms: Option<f64>,
    /// Owed deliveries allowed to arrive only through catch-up.
    #[arg(long, default_value_t = 0)]
    pub max_recovered: u64,
    /// Print the report as JSON instead of the text table.
    #[arg(long)]
    pub json: bool,
}

/// A command line whose values cannot form a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{0} must be a positive number of seconds")]
pub struct BadSeconds(&'static str);

fn secs(what: &'static str, v: f64, allow_zero: bool) -> Result<Duration, BadSeconds> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| allow_zero || !d.is_zero())
        .ok_or(BadSeconds(what))
}

impl Args {
    /// Where the tokens come from (clap guarantees exactly one source).
    pub fn token_source(&self) -> TokenSource {
        if let Some(path) = &self.tokens {
            TokenSource::File(path.clone())
        } else if let Some(command) = &self.token_cmd {
            TokenSource::Command {
                command: command.clone(),
                users: self.users.min(self.connections),
            }
        } else {
            TokenSource::Register {
                base: self.register.clone().unwrap_or_default(),
                users: self.users.min(self.connections),
                prefix: self.user_prefix.clone(),
                password: self.password.clone(),
            }
        }
    }

    /// The run these options describe, with `tokens`.
    pub fn config(&self, tokens: Vec<String>) -> Result<Config, BadSeconds> {
        Ok(Config {
            url: self.url.clone(),
            connections: self.connections,
            rooms: self.rooms,
            senders_per_room: self.senders_per_room,
            rate: self.rate,
            duration: secs("duration", self.duration, false)?,
            body_bytes: self.body_bytes,
            connect_rate: self.connect_rate,
            connect_concurrency: self.connect_concurrency,
            join_timeout: secs("join-timeout-secs", self.join_timeout_secs, false)?,
            auth: if self.subprotocol {
                AuthMode::Subprotocol
            } else {
                AuthMode::QueryToken
            },
            tokens,
            room_prefix: self.room_prefix.clone(),
            source_addrs: self.source_addrs,
            drain: secs("drain-secs", self.drain_secs, true)?,
            catch_up: !self.no_catch_up,
            check_storage: !self.no_storage_check,
            reconnect_window: secs("reconnect-window-secs", self.reconnect_window_secs, true)?,
            thresholds: Thresholds {
                max_ack_p99_ms: self.max_ack_p99_ms,
                max_delivery_p99_ms: self.max_delivery_p99_ms,
                max_recovered: self.max_recovered,
                allow_faults: self.faults,
            },
            on_send_start: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("hubbub-load").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn options_become_a_config() {
        let a = parse(&[
            "--tokens",
            "t.txt",
            "-c",
            "1000",
            "--rooms",
            "4",
            "--senders-per-room",
            "2",
            "--rate",
            "100",
            "--duration",
            "2.5",
            "--subprotocol",
            "--max-delivery-p99-ms",
            "250",
        ])
        .unwrap();
        let c = a.config(vec!["t".into()]).unwrap();
        assert_eq!((c.connections, c.rooms, c.senders_per_room), (1000, 4, 2));
        assert_eq!(c.duration, Duration::from_millis(2500));
        assert_eq!(c.auth, AuthMode::Subprotocol);
        assert_eq!(c.thresholds.max_delivery_p99_ms, Some(250.0));
        assert!(c.catch_up);
        assert!(c.check_storage);
        assert!(!c.thresholds.allow_faults);
        assert!(matches!(a.token_source(), TokenSource::File(p) if p.as_os_str() == "t.txt"));
        let a = parse(&["--tokens", "t", "--faults", "--no-storage-check"]).unwrap();
        let c = a.config(vec!["t".into()]).unwrap();
        assert!(c.thresholds.allow_faults && !c.check_storage);
    }

    #[test]
    fn exactly_one_token_source_is_required() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--tokens", "a", "--register", "http://x"]).is_err());
        let a = parse(&["--token-cmd", "mint {i}", "-c", "5", "--users", "50"]).unwrap();
        assert!(matches!(
            a.token_source(),
            TokenSource::Command { users: 5, .. }
        ));
        let a = parse(&["--register", "http://127.0.0.1:3001"]).unwrap();
        assert!(matches!(
            a.token_source(),
            TokenSource::Register { users: 100, .. }
        ));
        assert_eq!(a.config(vec![]).unwrap().auth, AuthMode::QueryToken);
        assert!(parse(&["--tokens", "a", "--query-token", "--subprotocol"]).is_err());
    }

    #[test]
    fn bad_durations_are_refused() {
        let a = parse(&["--tokens", "a", "--duration", "0"]).unwrap();
        assert_eq!(a.config(vec![]).unwrap_err(), BadSeconds("duration"));
        let a = parse(&["--tokens", "a", "--drain-secs=-1"]).unwrap();
        assert_eq!(a.config(vec![]).unwrap_err(), BadSeconds("drain-secs"));
    }
}
