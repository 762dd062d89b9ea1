//! hubbub-local's configuration and its command line.
//!
//! Everything has a default that works on a laptop with nothing else running: loopback port
//! 3001, stage `local`, in-memory stores, a fixed development JWT secret (announced as
//! such in the banner, so nobody mistakes it for a real one), CORS open to every origin (as
//! the template's `CorsAllowOrigins` default) and the web client built into the binary.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use hubbub_core::config::{AccountsConfig, ConfigError, JwtConfig, Lookup, vars};

/// The port of docs/protocol.md's `ws://127.0.0.1:3001`.
pub const DEFAULT_PORT: u16 = 3001;
/// The stage name when none is given; `/{stage}` and `/` both reach the WebSocket.
pub const DEFAULT_STAGE: &str = "local";
/// The JWT secret when neither `--jwt-secret` nor `HUBBUB_JWT_SECRET` is set. Public by
/// design: it only ever signs development tokens, and the banner says so.
pub const DEV_JWT_SECRET: &str = "hubbub-local-development-secret-not-for-production";
/// API Gateway closes a connection that has been idle for 10 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// API Gateway closes every connection after 2 hours, idle or not.
pub const DEFAULT_MAX_CONNECTION: Duration = Duration::from_secs(2 * 60 * 60);
/// The region in method ARNs and in the SigV4 scope the handlers sign with; nothing reaches AWS.
pub const DEFAULT_REGION: &str = "us-east-1";
/// A placeholder 10-character API id, shaped like API Gateway's.
pub const DEFAULT_API_ID: &str = "hubbublcl1";
/// A placeholder 12-digit account id for method ARNs.
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";
/// The DynamoDB table used with `--dynamodb-endpoint` (created when missing).
pub const DEFAULT_TABLE: &str = "hubbub-local";
/// How long `hubbub-local token` tokens live: a working day, so a developer mints one token
/// in the morning. Lambda-issued access tokens are short-lived; these are for local use only.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(8 * 60 * 60);

/// The CORS origin when none is given: the template's `CorsAllowOrigins` default.
pub const DEFAULT_CORS_ORIGIN: &str = "*";

/// The environment variable that can name the PostgreSQL URL instead of `--database-url`.
pub const ENV_DATABASE_URL: &str = vars::DATABASE_URL;
/// The environment variable that can name the DynamoDB endpoint instead of `--dynamodb-endpoint`.
pub const ENV_DYNAMODB_ENDPOINT: &str = "HUBBUB_DYNAMODB_ENDPOINT";

/// How hubbub-local runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one (tests).
    pub port: u16,
    /// The stage name: `/{stage}` path, `stage` in events, the @connections path prefix.
    pub stage: String,
    /// How tokens are verified (and minted by `hubbub-local token`).
    pub jwt: JwtConfig,
    /// Whether `jwt.secret` is [`DEV_JWT_SECRET`] (reported in the banner).
    pub jwt_secret_is_dev_default: bool,
    /// Close a connection with no inbound frame for this long.
    pub idle_timeout: Duration,
    /// Close every connection after this long.
    pub max_connection: Duration,
    /// PostgreSQL history store instead of the in-memory one.
    pub database_url: Option<String>,
    /// DynamoDB-compatible endpoint for the connection store instead of the in-memory one.
    pub dynamodb_endpoint: Option<String>,
    /// The connections table on that endpoint.
    pub dynamodb_table: String,
    /// Region of method ARNs and of the SDK clients (signing only).
    pub region: String,
    /// API id of method ARNs and events.
    pub api_id: String,
    /// Account id of method ARNs.
    pub account_id: String,
    /// The HTTP API's account settings (token lifetimes, argon2 costs, body limit, login
    /// limits): the command line reads the same `HUBBUB_*` variables as the Lambda.
    pub accounts: AccountsConfig,
    /// Origins allowed to call the HTTP API from a browser (the HttpApi's
    /// `CorsConfiguration.AllowOrigins`); `*` allows every origin.
    pub cors_origins: Vec<String>,
    /// Serve the web client from this directory instead of the copy built into the binary.
    pub web_dir: Option<PathBuf>,
}

impl Config {
    /// The defaults, with the given JWT configuration.
    pub fn new(jwt: JwtConfig) -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: DEFAULT_PORT,
            stage: DEFAULT_STAGE.to_owned(),
            jwt,
            jwt_secret_is_dev_default: false,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connection: DEFAULT_MAX_CONNECTION,
            database_url: None,
            dynamodb_endpoint: None,
            dynamodb_table: DEFAULT_TABLE.to_owned(),
            region: DEFAULT_REGION.to_owned(),
            api_id: DEFAULT_API_ID.to_owned(),
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            accounts: default_accounts(),
            cors_origins: vec![DEFAULT_CORS_ORIGIN.to_owned()],
            web_dir: None,
        }
    }

    /// The defaults with the development secret (issuer and audience `hubbub`).
    pub fn dev() -> Self {
        let mut c = Self::new(dev_jwt_config());
        c.jwt_secret_is_dev_default = true;
        c
    }
}

/// The HTTP API's account settings with no variable set: hubbub-core's defaults.
fn default_accounts() -> AccountsConfig {
    // No lookup means every setting takes its built-in default, which hubbub-core's own tests
    // show to be valid: this cannot fail.
    AccountsConfig::from_lookup(&|_| None).expect("hubbub-core's account defaults are valid")
}

/// The JWT configuration of [`DEV_JWT_SECRET`].
pub fn dev_jwt_config() -> JwtConfig {
    JwtConfig {
        secret: DEV_JWT_SECRET.as_bytes().to_vec(),
        issuer: "hubbub".to_owned(),
        audience: "hubbub".to_owned(),
        leeway: Duration::from_secs(30),
    }
}

/// What to do, from the command line.
#[derive(Debug, Clone)]
pub enum Command {
    /// Run the server.
    Serve(Box<Config>),
    /// Print a development token.
    Token(TokenRequest),
    /// Print the usage.
    Help,
}

/// `hubbub-local token`.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub jwt: JwtConfig,
    pub user_id: String,
    pub user_name: String,
    pub ttl: Duration,
}

/// A command line that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("unknown argument `{0}`")]
    Unknown(String),
    #[error("`{0}` needs a value")]
    MissingValue(String),
    #[error("`{flag}` got `{value}`: {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("`token` needs `--user NAME`")]
    MissingUser,
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The usage text.
pub const USAGE: &str = "\
hubbub-local: API Gateway WebSocket + HTTP API emulator running hubbub's handlers in-process,
with the web client at http://HOST:PORT/

USAGE:
    hubbub-local [serve] [OPTIONS]
    hubbub-local token --user NAME [--user-id ID] [--ttl-secs N] [--jwt-secret S]

OPTIONS:
    --host ADDR                 listen address (default 127.0.0.1)
    --port N                    listen port, 0 for any free port (default 3001)
    --stage NAME                stage name (default local)
    --jwt-secret S              HS256 secret, at least 32 bytes (env HUBBUB_JWT_SECRET;
                                default: a fixed development secret)
    --idle-timeout-secs N       close idle connections after N s (default 600, as API Gateway)
    --max-connection-secs N     close every connection after N s (default 7200, as API Gateway)
    --database-url URL          PostgreSQL history store (env DATABASE_URL; default in-memory)
    --dynamodb-endpoint URL     DynamoDB-compatible connection store (env HUBBUB_DYNAMODB_ENDPOINT;
                                default in-memory)
    --dynamodb-table NAME       its table, created when missing (default hubbub-local)
    --region NAME               region of method ARNs and SigV4 scopes (default us-east-1)
    --cors-origin ORIGIN        origin allowed to call the HTTP API from a browser; repeat it or
                                separate with commas for several (default *, every origin)
    --web-dir DIR               serve the web client (the files of web/ but its tests) from DIR
                                instead of the copy built into the binary
    -h, --help                  this text

HUBBUB_JWT_ISSUER and HUBBUB_JWT_AUDIENCE (default hubbub) set the expected iss and aud; the
HTTP API reads the Lambda's HUBBUB_ACCESS_TOKEN_TTL_SECS, HUBBUB_REFRESH_TOKEN_TTL_SECS,
HUBBUB_ARGON2_*, HUBBUB_MAX_BODY_BYTES, HUBBUB_LOGIN_MAX_FAILURES and HUBBUB_LOGIN_WINDOW_SECS.
";

fn value(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<String, CliError> {
    args.next()
        .ok_or_else(|| CliError::MissingValue(flag.to_owned()))
}

fn number<T: std::str::FromStr>(
    args: &mut impl Iterator<Item = String>,
    flag: &'static str,
) -> Result<T, CliError> {
    let v = value(args, flag)?;
    v.parse().map_err(|_| CliError::Invalid {
        flag,
        value: v,
        reason: "not a valid number",
    })
}

fn secs(args: &mut impl Iterator<Item = String>, flag: &'static str) -> Result<Duration, CliError> {
    let n: u64 = number(args, flag)?;
    if n == 0 {
        return Err(CliError::Invalid {
            flag,
            value: n.to_string(),
            reason: "must be at least 1",
        });
    }
    Ok(Duration::from_secs(n))
}

/// Whether `stage` is usable as a stage name: API Gateway allows letters, digits, `-` and `_`.
pub fn valid_stage(stage: &str) -> bool {
    !stage.is_empty()
        && stage.len() <= 128
        && stage
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether `origin` can be a CORS allowed origin: `*`, or `scheme://host[:port]` without a
/// path (what a browser sends in `Origin`).
pub fn valid_origin(origin: &str) -> bool {
    if origin == "*" {
        return true;
    }
    match origin.split_once("://") {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
                && !rest.contains(['/', ' ', ','])
        }
        None => false,
    }
}

fn url(args: &mut impl Iterator<Item = String>, flag: &'static str) -> Result<String, CliError> {
    let v = value(args, flag)?;
    if flag == "--dynamodb-endpoint" && !(v.starts_with("http://") || v.starts_with("https://")) {
        return Err(CliError::Invalid {
            flag,
            value: v,
            reason: "must be an http(s):// URL",
        });
    }
    Ok(v)
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

/// Parses the arguments after the program name. `env` reads the environment (tests pass
/// their own).
pub fn parse_args(
    args: impl IntoIterator<Item = String>,
    env: Lookup<'_>,
) -> Result<Command, CliError> {
    let mut args = args.into_iter().peekable();
    match args.peek().map(String::as_str) {
        Some("token") => {
            args.next();
            return parse_token(args, env);
        }
        Some("serve") => {
            args.next();
        }
        _ => {}
    }
    let mut cfg = Config::dev();
    let mut secret = None;
    let mut cors_origins: Vec<String> = Vec::new();
    cfg.database_url = env(ENV_DATABASE_URL);
    cfg.dynamodb_endpoint = env(ENV_DYNAMODB_ENDPOINT);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--host" => {
                let v = value(&mut args, "--host")?;
                cfg.host = v.parse().map_err(|_| CliError::Invalid {
                    flag: "--host",
                    value: v,
                    reason: "not an IP address",
                })?;
            }
            "--port" => cfg.port = number(&mut args, "--port")?,
            "--stage" => {
                let v = value(&mut args, "--stage")?;
                if !valid_stage(&v) {
                    return Err(CliError::Invalid {
                        flag: "--stage",
                        value: v,
                        reason: "use letters, digits, `-` and `_`",
                    });
                }
                cfg.stage = v;
            }
            "--jwt-secret" => secret = Some(value(&mut args, "--jwt-secret")?),
            "--idle-timeout-secs" => cfg.idle_timeout = secs(&mut args, "--idle-timeout-secs")?,
            "--max-connection-secs" => {
                cfg.max_connection = secs(&mut args, "--max-connection-secs")?
            }
            "--database-url" => cfg.database_url = Some(url(&mut args, "--database-url")?),
            "--dynamodb-endpoint" => {
                cfg.dynamodb_endpoint = Some(url(&mut args, "--dynamodb-endpoint")?)
            }
            "--dynamodb-table" => cfg.dynamodb_table = value(&mut args, "--dynamodb-table")?,
            "--region" => cfg.region = value(&mut args, "--region")?,
            "--cors-origin" => {
                let v = value(&mut args, "--cors-origin")?;
                for origin in v.split(',').map(str::trim) {
                    if !valid_origin(origin) {
                        return Err(CliError::Invalid {
                            flag: "--cors-origin",
                            value: v.clone(),
                            reason: "use `*` or scheme://host[:port] origins",
                        });
                    }
                    cors_origins.push(origin.to_owned());
                }
            }
            "--web-dir" => {
                let v = value(&mut args, "--web-dir")?;
                let dir = PathBuf::from(&v);
                if !dir.is_dir() {
                    return Err(CliError::Invalid {
                        flag: "--web-dir",
                        value: v,
                        reason: "not a directory",
                    });
                }
                cfg.web_dir = Some(dir);
            }
            _ => return Err(CliError::Unknown(arg)),
        }
    }
    if !cors_origins.is_empty() {
        cfg.cors_origins = cors_origins;
    }
    let (jwt, is_dev) = jwt_config(secret, env)?;
    cfg.jwt = jwt;
    cfg.jwt_secret_is_dev_default = is_dev;
    cfg.accounts = AccountsConfig::from_lookup(env)?;
    Ok(Command::Serve(Box::new(cfg)))
}

fn parse_token(
    mut args: impl Iterator<Item = String>,
    env: Lookup<'_>,
) -> Result<Command, CliError> {
    let mut user = None;
    let mut user_id = None;
    let mut ttl = DEFAULT_TOKEN_TTL;
    let mut secret = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--user" => user = Some(value(&mut args, "--user")?),
            "--user-id" => user_id = Some(value(&mut args, "--user-id")?),
            "--ttl-secs" => ttl = secs(&mut args, "--ttl-secs")?,
            "--jwt-secret" => secret = Some(value(&mut args, "--jwt-secret")?),
            _ => return Err(CliError::Unknown(arg)),
        }
    }
    let user_name = user
        .filter(|u| !u.is_empty())
        .ok_or(CliError::MissingUser)?;
    let (jwt, _) = jwt_config(secret, env)?;
    Ok(Command::Token(TokenRequest {
        jwt,
        // The sample events' convention: user `alice` has the id `u-alice`.
        user_id: user_id.unwrap_or_else(|| format!("u-{user_name}")),
        user_name,
        ttl,
    }))
}
