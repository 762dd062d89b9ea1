//! hubbub-local's command line (clap): `hubbub-local [serve] [OPTIONS]` runs the emulator,
//! `hubbub-local token --user NAME [--count N]` prints development tokens.
//!
//! A flag wins over its environment variable. The variables are read through a [`Lookup`],
//! as the rest of hubbub's configuration is (the binary passes the process environment, tests
//! their own), so an empty variable counts as unset here too; `--help` names each flag's
//! variable and default.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand, value_parser};
use http_api::AccountsConfig;
use hubbub_core::auth::{AuthError, JwtIssuer};
use hubbub_core::config::{ConfigError, JwtConfig, Lookup, vars};
use hubbub_core::limits::Limits;

use crate::config::{
    Config, DEFAULT_CORS_ORIGIN, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTION, DEFAULT_PORT,
    DEFAULT_REGION, DEFAULT_STAGE, DEFAULT_TABLE, DEFAULT_TOKEN_TTL, DEV_JWT_SECRET,
    ENV_DATABASE_URL, ENV_DYNAMODB_ENDPOINT, ManagementClient, valid_origin, valid_stage,
};
use crate::delivery::DeliveryArgs;

/// Most tokens one `token --count` prints: enough for any load test this emulator can hold
/// (each connection costs it a task and a socket), few enough (~25 MB of output) that a typo
/// in the count does not fill a disk.
pub const MAX_TOKEN_COUNT: u32 = 100_000;

const ABOUT: &str = "API Gateway WebSocket + HTTP API emulator running hubbub's handlers \
in-process, with the web client at http://HOST:PORT/";

const ENVIRONMENT: &str = "\
Environment:
  HUBBUB_JWT_ISSUER and HUBBUB_JWT_AUDIENCE (default hubbub) set the expected iss and aud; the
  HTTP API reads the Lambda's HUBBUB_ACCESS_TOKEN_TTL_SECS, HUBBUB_REFRESH_TOKEN_TTL_SECS,
  HUBBUB_ARGON2_*, HUBBUB_MAX_BODY_BYTES, HUBBUB_LOGIN_MAX_FAILURES and HUBBUB_LOGIN_WINDOW_SECS;
  the abuse limits come from HUBBUB_SEND_RATE_PER_SEC, HUBBUB_SEND_BURST, HUBBUB_ROUTE_RATE_PER_SEC,
  HUBBUB_ROUTE_BURST, HUBBUB_TYPING_INTERVAL_MS, HUBBUB_MAX_JOINED_ROOMS, HUBBUB_MAX_ROOMS_CREATED,
  HUBBUB_REGISTER_MAX and HUBBUB_REGISTER_WINDOW_SECS (docs/protocol.md, Limits). Injected
  @connections faults are for testing clients and hubbub's retry rule: see README, \"Fault
  injection\".";

/// The command line. Without a command, the options are `serve`'s.
#[derive(Debug, Parser)]
#[command(
    name = "hubbub-local",
    version,
    about = ABOUT,
    after_help = ENVIRONMENT,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Run the emulator until Ctrl-C (the default when no command is given)
    #[command(after_help = ENVIRONMENT)]
    Serve(Box<ServeArgs>),
    /// Print development tokens signed with the configured secret, one per line
    Token(TokenArgs),
}

/// `[env: VAR]` after a flag's help, for the flags that fall back to a variable.
pub(crate) fn with_env(help: &str, var: &str) -> String {
    format!("{help} [env: {var}]")
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Listen address
    #[arg(long, value_name = "ADDR", default_value_t = IpAddr::from([127, 0, 0, 1]))]
    host: IpAddr,
    /// Listen port, 0 for any free port
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PORT)]
    port: u16,
    /// Stage name: the `/{stage}` path prefix, `stage` in events, the @connections prefix
    #[arg(long, value_name = "NAME", default_value = DEFAULT_STAGE, value_parser = stage)]
    stage: String,
    #[arg(
        long,
        value_name = "S",
        help = with_env(
            "HS256 secret, at least 32 bytes [default: a fixed development secret]",
            vars::JWT_SECRET,
        )
    )]
    jwt_secret: Option<String>,
    /// Close connections idle for N seconds (as API Gateway)
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs(),
        value_parser = value_parser!(u64).range(1..)
    )]
    idle_timeout_secs: u64,
    /// Close every connection after N seconds (as API Gateway)
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MAX_CONNECTION.as_secs(),
        value_parser = value_parser!(u64).range(1..)
    )]
    max_connection_secs: u64,
    #[arg(
        long,
        value_name = "URL",
        help = with_env(
            "PostgreSQL history and user store [default: in-memory]",
            ENV_DATABASE_URL,
        )
    )]
    database_url: Option<String>,
    #[arg(
        long,
        value_name = "URL",
        value_parser = endpoint,
        help = with_env(
            "DynamoDB-compatible connection store, http(s):// [default: in-memory]",
            ENV_DYNAMODB_ENDPOINT,
        )
    )]
    dynamodb_endpoint: Option<String>,
    /// The connections table on --dynamodb-endpoint, created when missing
    #[arg(long, value_name = "NAME", default_value = DEFAULT_TABLE)]
    dynamodb_table: String,
    /// Region of method ARNs and SigV4 scopes (nothing reaches AWS)
    #[arg(long, value_name = "NAME", default_value = DEFAULT_REGION)]
    region: String,
    /// Origin allowed to call the HTTP API from a browser (`*`: every origin); repeat it or
    /// separate with commas for several
    #[arg(
        long = "cors-origin",
        value_name = "ORIGIN",
        value_delimiter = ',',
        value_parser = origin,
        default_value = DEFAULT_CORS_ORIGIN
    )]
    cors_origins: Vec<String>,
    /// Serve the web client (the files of web/ but its tests) from DIR [default: the copy
    /// built into the binary]
    #[arg(long, value_name = "DIR", value_parser = directory)]
    web_dir: Option<PathBuf>,
    /// Post every message and edit to this URL before commit, for a verdict (docs/protocol.md,
    /// "Moderation"); the AWS deployment invokes a Lambda function instead [default: no hook]
    #[arg(long, value_name = "URL")]
    moderation_url: Option<String>,
    /// How the handlers post to connections: in-process (straight into the connections'
    /// queues) or http (signed requests to this server's @connections API, the Lambdas'
    /// client)
    #[arg(long, value_enum, value_name = "CLIENT", default_value_t = ManagementClient::InProcess)]
    management_client: ManagementClient,
    #[command(flatten)]
    delivery: DeliveryArgs,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The user's name; with --count N > 1, the prefix of the names NAME-0 .. NAME-{N-1}
    #[arg(long, value_name = "NAME", value_parser = non_empty)]
    user: String,
    /// The user's id [default: u-NAME]; with --count N > 1, the prefix of ID-0 .. ID-{N-1}
    #[arg(long, value_name = "ID", value_parser = non_empty)]
    user_id: Option<String>,
    /// How long the tokens live, in seconds
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_TOKEN_TTL.as_secs(),
        value_parser = value_parser!(u64).range(1..)
    )]
    ttl_secs: u64,
    /// How many tokens to print, one per line, in user order
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        value_parser = value_parser!(u32).range(1..=i64::from(MAX_TOKEN_COUNT))
    )]
    count: u32,
    #[arg(
        long,
        value_name = "S",
        help = with_env(
            "HS256 secret, at least 32 bytes [default: a fixed development secret]",
            vars::JWT_SECRET,
        )
    )]
    jwt_secret: Option<String>,
}

fn stage(v: &str) -> Result<String, String> {
    if valid_stage(v) {
        Ok(v.to_owned())
    } else {
        Err("use letters, digits, `-` and `_`".to_owned())
    }
}

fn origin(v: &str) -> Result<String, String> {
    let v = v.trim();
    if valid_origin(v) {
        Ok(v.to_owned())
    } else {
        Err("use `*` or scheme://host[:port] origins".to_owned())
    }
}

fn endpoint(v: &str) -> Result<String, String> {
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(v.to_owned())
    } else {
        Err("must be an http(s):// URL".to_owned())
    }
}

fn directory(v: &str) -> Result<PathBuf, String> {
    let dir = PathBuf::from(v);
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err("not a directory".to_owned())
    }
}

fn non_empty(v: &str) -> Result<String, String> {
    if v.is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(v.to_owned())
    }
}

/// What to do, from the command line.
#[derive(Debug, Clone)]
pub enum Command {
    /// Run the server.
    Serve(Box<Config>),
    /// Print development tokens.
    Token(TokenRequest),
    /// Print this text (`--help`, `--version`, `help`) and exit successfully.
    Help(String),
}

/// A command line that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Unknown flag, missing or malformed value: clap's message, with the usage.
    #[error("{0}")]
    Usage(#[from] clap::Error),
    /// A variable's value is unusable.
    #[error("{var}: {reason}")]
    Env { var: &'static str, reason: String },
    /// The flags parse but do not make a configuration (a short JWT secret, a bad variable).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Parses the arguments after the program name. `env` reads the environment (tests pass
/// their own).
pub fn parse_args(
    args: impl IntoIterator<Item = String>,
    env: Lookup<'_>,
) -> Result<Command, CliError> {
    let argv = std::iter::once("hubbub-local".to_owned()).chain(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            return Ok(Command::Help(e.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    match cli.command {
        Some(Sub::Token(t)) => token_request(t, env).map(Command::Token),
        Some(Sub::Serve(s)) => serve_config(*s, env).map(|c| Command::Serve(Box::new(c))),
        None => serve_config(cli.serve, env).map(|c| Command::Serve(Box::new(c))),
    }
}

/// The JWT configuration: the explicit secret, else `HUBBUB_JWT_SECRET`, else the development
/// secret; issuer and audience from the environment. Returns whether the dev secret is used.
fn jwt_config(explicit: Option<String>, env: Lookup<'_>) -> Result<(JwtConfig, bool), CliError> {
    let secret = explicit.or_else(|| env(vars::JWT_SECRET));
    let is_dev = secret.is_none();
    let secret = secret.unwrap_or_else(|| DEV_JWT_SECRET.to_owned());
    let lookup = |var: &str| {
        if var == vars::JWT_SECRET {
            Some(secret.clone())
        } else {
            env(var)
        }
    };
    Ok((JwtConfig::from_lookup(&lookup)?, is_dev))
}

fn serve_config(a: ServeArgs, env: Lookup<'_>) -> Result<Config, CliError> {
    let (jwt, is_dev) = jwt_config(a.jwt_secret, env)?;
    let dynamodb_endpoint = match a.dynamodb_endpoint {
        Some(e) => Some(e),
        None => env(ENV_DYNAMODB_ENDPOINT)
            .map(|v| endpoint(&v))
            .transpose()
            .map_err(|reason| CliError::Env {
                var: ENV_DYNAMODB_ENDPOINT,
                reason,
            })?,
    };
    let mut cfg = Config::new(jwt);
    cfg.jwt_secret_is_dev_default = is_dev;
    cfg.host = a.host;
    cfg.port = a.port;
    cfg.stage = a.stage;
    cfg.idle_timeout = Duration::from_secs(a.idle_timeout_secs);
    cfg.max_connection = Duration::from_secs(a.max_connection_secs);
    cfg.database_url = a.database_url.or_else(|| env(ENV_DATABASE_URL));
    cfg.dynamodb_endpoint = dynamodb_endpoint;
    cfg.dynamodb_table = a.dynamodb_table;
    cfg.region = a.region;
    cfg.cors_origins = a.cors_origins;
    cfg.web_dir = a.web_dir;
    cfg.moderation_url = a.moderation_url;
    cfg.management_client = a.management_client;
    cfg.delivery = a.delivery.into_config(env)?;
    cfg.accounts = AccountsConfig::from_lookup(env)?;
    cfg.limits = Limits::from_lookup(env)?;
    Ok(cfg)
}

fn token_request(a: TokenArgs, env: Lookup<'_>) -> Result<TokenRequest, CliError> {
    let (jwt, _) = jwt_config(a.jwt_secret, env)?;
    Ok(TokenRequest {
        jwt,
        // The sample events' convention: user `alice` has the id `u-alice`.
        user_id: a.user_id.unwrap_or_else(|| format!("u-{}", a.user)),
        user_name: a.user,
        ttl: Duration::from_secs(a.ttl_secs),
        count: a.count,
    })
}

/// `hubbub-local token`.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub jwt: JwtConfig,
    /// The user id, or with `count > 1` the prefix of `{user_id}-{i}`.
    pub user_id: String,
    /// The user name, or with `count > 1` the prefix of `{user_name}-{i}`.
    pub user_name: String,
    pub ttl: Duration,
    /// How many tokens, `1..=`[`MAX_TOKEN_COUNT`].
    pub count: u32,
}

/// `hubbub-local token` could not print its tokens.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("could not sign a token")]
    Sign(#[source] AuthError),
    #[error("could not write the tokens")]
    Write(#[source] std::io::Error),
}

impl TokenRequest {
    /// The `(id, name)` of each token's user, in output order: the user itself for one token,
    /// else `{id}-{i}` / `{name}-{i}` for `i` in `0..count`.
    pub fn users(&self) -> impl Iterator<Item = (String, String)> + '_ {
        (0..self.count).map(move |i| {
            if self.count == 1 {
                (self.user_id.clone(), self.user_name.clone())
            } else {
                (
                    format!("{}-{i}", self.user_id),
                    format!("{}-{i}", self.user_name),
                )
            }
        })
    }

    /// Signs the tokens and writes them to `out`, one per line.
    pub fn write_tokens(&self, out: &mut impl Write) -> Result<(), TokenError> {
        let issuer = JwtIssuer::hs256(&self.jwt).map_err(TokenError::Sign)?;
        let ttl = time::Duration::seconds(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX));
        for (id, name) in self.users() {
            let token = issuer.issue(&id, &name, ttl).map_err(TokenError::Sign)?;
            writeln!(out, "{token}").map_err(TokenError::Write)?;
        }
        out.flush().map_err(TokenError::Write)
    }
}

#[cfg(test)]
mod tests {
    use hubbub_core::auth::JwtVerifier;

    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn help(a: &[&str]) -> String {
        match parse_args(args(a), &no_env) {
            Ok(Command::Help(text)) => text,
            other => panic!("{a:?}: {other:?}"),
        }
    }

    #[test]
    fn help_names_every_flag_with_its_default_and_variable() {
        for text in [help(&["--help"]), help(&["serve", "--help"])] {
            for needle in [
                "--host <ADDR>",
                "[default: 127.0.0.1]",
                "--port <N>",
                "[default: 3001]",
                "--stage <NAME>",
                "[default: local]",
                "--jwt-secret <S>",
                "[env: HUBBUB_JWT_SECRET]",
                "a fixed development secret",
                "--idle-timeout-secs <N>",
                "[default: 600]",
                "--max-connection-secs <N>",
                "[default: 7200]",
                "--database-url <URL>",
                "[env: DATABASE_URL]",
                "--dynamodb-endpoint <URL>",
                "[env: HUBBUB_DYNAMODB_ENDPOINT]",
                "--dynamodb-table <NAME>",
                "[default: hubbub-local]",
                "--region <NAME>",
                "[default: us-east-1]",
                "--cors-origin <ORIGIN>",
                "[default: *]",
                "--web-dir <DIR>",
                "--post-timeout-ms <N>",
                "[default: 1500]",
                "--post-rate-per-sec <N>",
                "[env: HUBBUB_POST_RATE_PER_SEC]",
                "--post-burst <N>",
                "[env: HUBBUB_POST_BURST]",
                "--inject-post-faults <SPEC>",
                "[env: HUBBUB_INJECT_POST_FAULTS]",
                "--fault-seed <N>",
                "[env: HUBBUB_FAULT_SEED]",
                "HUBBUB_JWT_ISSUER",
                "HUBBUB_MAX_BODY_BYTES",
            ] {
                assert!(text.contains(needle), "{needle} missing from:\n{text}");
            }
        }
        let top = help(&["--help"]);
        assert!(top.contains("serve") && top.contains("token"), "{top}");
        let token = help(&["token", "--help"]);
        for needle in [
            "--user <NAME>",
            "--user-id <ID>",
            "--ttl-secs <N>",
            "[default: 28800]",
            "--count <N>",
            "[default: 1]",
            "[env: HUBBUB_JWT_SECRET]",
        ] {
            assert!(token.contains(needle), "{needle} missing from:\n{token}");
        }
        assert!(help(&["--version"]).contains(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn serve_is_the_default_command() {
        let Ok(Command::Serve(bare)) = parse_args(args(&["--port", "0"]), &no_env) else {
            panic!("bare options")
        };
        let Ok(Command::Serve(explicit)) = parse_args(args(&["serve", "--port", "0"]), &no_env)
        else {
            panic!("serve")
        };
        assert_eq!((bare.port, explicit.port), (0, 0));
        // Options belong either before no command or after `serve`, not both.
        assert!(parse_args(args(&["--port", "0", "token", "--user", "a"]), &no_env).is_err());
    }

    #[test]
    fn flags_win_over_variables() {
        let env = |v: &str| match v {
            "DATABASE_URL" => Some("postgres://env@h/db".to_owned()),
            "HUBBUB_DYNAMODB_ENDPOINT" => Some("http://env:8000".to_owned()),
            _ => None,
        };
        let Ok(Command::Serve(c)) = parse_args(args(&[]), &env) else {
            panic!("env")
        };
        assert_eq!(c.database_url.as_deref(), Some("postgres://env@h/db"));
        assert_eq!(c.dynamodb_endpoint.as_deref(), Some("http://env:8000"));
        let Ok(Command::Serve(c)) = parse_args(
            args(&[
                "--database-url",
                "postgres://flag@h/db",
                "--dynamodb-endpoint",
                "https://flag",
            ]),
            &env,
        ) else {
            panic!("flags")
        };
        assert_eq!(c.database_url.as_deref(), Some("postgres://flag@h/db"));
        assert_eq!(c.dynamodb_endpoint.as_deref(), Some("https://flag"));
        // A variable gets the flag's checks.
        let bad = |v: &str| (v == "HUBBUB_DYNAMODB_ENDPOINT").then(|| "localhost:8000".to_owned());
        assert!(matches!(
            parse_args(args(&[]), &bad),
            Err(CliError::Env {
                var: "HUBBUB_DYNAMODB_ENDPOINT",
                ..
            })
        ));
    }

    #[test]
    fn token_count_mints_numbered_users() {
        let Ok(Command::Token(one)) = parse_args(args(&["token", "--user", "bob"]), &no_env) else {
            panic!("token")
        };
        assert_eq!(one.count, 1);
        assert_eq!(
            one.users().collect::<Vec<_>>(),
            [("u-bob".to_owned(), "bob".to_owned())]
        );
        let Ok(Command::Token(many)) = parse_args(
            args(&[
                "token",
                "--user",
                "load",
                "--count",
                "3",
                "--ttl-secs",
                "60",
            ]),
            &no_env,
        ) else {
            panic!("token --count")
        };
        let users: Vec<_> = many.users().collect();
        assert_eq!(
            users,
            [
                ("u-load-0".to_owned(), "load-0".to_owned()),
                ("u-load-1".to_owned(), "load-1".to_owned()),
                ("u-load-2".to_owned(), "load-2".to_owned()),
            ]
        );
        let mut out = Vec::new();
        many.write_tokens(&mut out).expect("tokens");
        let text = String::from_utf8(out).expect("UTF-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let verifier = JwtVerifier::hs256(&many.jwt).expect("verifier");
        for (line, (id, name)) in lines.iter().zip(&users) {
            let who = verifier.verify(line).expect("a valid token");
            assert_eq!((&who.user_id, &who.user_name), (id, name));
        }
        for bad in [
            &["token", "--user", "x", "--count", "0"][..],
            &["token", "--user", "x", "--count", "100001"],
            &["token", "--user", ""],
            &["token", "--count", "2"],
        ] {
            assert!(parse_args(args(bad), &no_env).is_err(), "{bad:?}");
        }
        let top = format!("{MAX_TOKEN_COUNT}");
        assert!(parse_args(args(&["token", "--user", "x", "--count", &top]), &no_env).is_ok());
    }
}
