//! hubbub-local's configuration (the command line that builds it is [`crate::cli`]).
//!
//! Everything has a default that works on a laptop with nothing else running: loopback port
//! 3001, stage `local`, in-memory stores, a fixed development JWT secret (announced as
//! such in the banner, so nobody mistakes it for a real one), CORS open to every origin (as
//! the template's `CorsAllowOrigins` default) and the web client built into the binary.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use http_api::AccountsConfig;
use hubbub_core::config::{JwtConfig, vars};
use hubbub_core::limits::Limits;

use crate::delivery::DeliveryConfig;

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
/// A connection whose socket takes no queued frames for this long is dropped. A client that
/// stops reading fills its socket and then its queue (256 frames, after which posts to it are
/// refused 429); 30 s is far past any live client's pause (a mobile network stall, a
/// backgrounded tab), and without the bound its task would wait on the write for ever, deaf
/// to the idle, duration and shutdown limits.
pub const DEFAULT_WRITE_STALL: Duration = Duration::from_secs(30);
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
    /// Drop a connection whose socket accepts no queued frame for this long (a client that
    /// stopped reading).
    pub write_stall: Duration,
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
    /// The abuse limits ([`hubbub_core::limits`]), read from the same variables as on AWS.
    pub limits: Limits,
    /// Origins allowed to call the HTTP API from a browser (the HttpApi's
    /// `CorsConfiguration.AllowOrigins`); `*` allows every origin.
    pub cors_origins: Vec<String>,
    /// Serve the web client from this directory instead of the copy built into the binary.
    pub web_dir: Option<PathBuf>,
    /// The moderation hook as a webhook (`--moderation-url`; AWS invokes a Lambda function
    /// instead): every send and edit is posted to it before commit. `None`: no hook.
    pub moderation_url: Option<String>,
    /// How the in-process handlers reach connections.
    pub management_client: ManagementClient,
    /// The handlers' posts: their attempt timeout, budget and injected faults.
    pub delivery: DeliveryConfig,
}

/// How hubbub-local's handlers reach connections (the `ConnectionGateway` they get).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ManagementClient {
    /// Straight into the connections' queues, with the management API's answers (410, 413,
    /// 429): what a developer machine should spend its CPU on, since on AWS the receiving
    /// side of every post is API Gateway's work, not the account's.
    #[default]
    InProcess,
    /// Signed HTTP requests to this server's own `@connections` API through
    /// `ManagementGateway`, the client the Lambdas use: every post takes the AWS path.
    Http,
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
            write_stall: DEFAULT_WRITE_STALL,
            database_url: None,
            dynamodb_endpoint: None,
            dynamodb_table: DEFAULT_TABLE.to_owned(),
            region: DEFAULT_REGION.to_owned(),
            api_id: DEFAULT_API_ID.to_owned(),
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            management_client: ManagementClient::default(),
            delivery: DeliveryConfig::default(),
            accounts: default_accounts(),
            limits: Limits::default(),
            cors_origins: vec![DEFAULT_CORS_ORIGIN.to_owned()],
            web_dir: None,
            moderation_url: None,
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
