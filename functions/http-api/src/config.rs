//! The HTTP API's own configuration: token lifetimes, password hashing cost, body size and
//! login rate limits, on top of the token verification and database settings it shares with
//! the WebSocket functions ([`hubbub_core::config`]).

use hubbub_core::config::{
    AuthConfig, ConfigError, DatabaseConfig, DynamoConfig, FromLookup, GatewayConfig, Lookup,
    number,
};
use hubbub_core::limits::Limits;

/// The variables only the HTTP API reads.
pub mod vars {
    pub const ACCESS_TOKEN_TTL_SECS: &str = "HUBBUB_ACCESS_TOKEN_TTL_SECS";
    pub const REFRESH_TOKEN_TTL_SECS: &str = "HUBBUB_REFRESH_TOKEN_TTL_SECS";
    pub const ARGON2_MEMORY_KIB: &str = "HUBBUB_ARGON2_MEMORY_KIB";
    pub const ARGON2_ITERATIONS: &str = "HUBBUB_ARGON2_ITERATIONS";
    pub const ARGON2_PARALLELISM: &str = "HUBBUB_ARGON2_PARALLELISM";
    pub const MAX_BODY_BYTES: &str = "HUBBUB_MAX_BODY_BYTES";
    pub const LOGIN_MAX_FAILURES: &str = "HUBBUB_LOGIN_MAX_FAILURES";
    pub const LOGIN_WINDOW_SECS: &str = "HUBBUB_LOGIN_WINDOW_SECS";
}

/// Everything the HTTP API reads: token verification and issuing, the database, and the
/// account settings.
#[derive(Debug, Clone)]
pub struct HttpApiConfig {
    pub auth: AuthConfig,
    pub postgres: DatabaseConfig,
    pub accounts: AccountsConfig,
    /// The registration limit and the cap on rooms created, shared with the WebSocket
    /// routes ([`hubbub_core::limits`]).
    pub limits: Limits,
    /// Where a revoked login's sessions are ended: the connections table (`HUBBUB_TABLE`,
    /// revocation markers and the user index) and the WebSocket API's management endpoint
    /// (`HUBBUB_MANAGEMENT_ENDPOINT`, required here: an HTTP request has no WebSocket domain).
    pub dynamo: DynamoConfig,
    pub management_endpoint: String,
}

impl FromLookup for HttpApiConfig {
    fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let management_endpoint = GatewayConfig::from_lookup(get)?.endpoint.ok_or(
            ConfigError::Missing {
                var: hubbub_core::config::vars::MANAGEMENT_ENDPOINT,
                hint: "set it to the WebSocket API's https://{api-id}.execute-api.{region}.amazonaws.com/{stage}: a logout closes the user's connections through it",
            },
        )?;
        Ok(Self {
            auth: AuthConfig::from_lookup(get)?,
            postgres: DatabaseConfig::from_lookup(get)?,
            accounts: AccountsConfig::from_lookup(get)?,
            limits: Limits::from_lookup(get)?,
            dynamo: DynamoConfig::from_lookup(get)?,
            management_endpoint,
        })
    }
}

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Config {
    /// Memory per hash in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Config {
    /// OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane): tens of milliseconds per
    /// hash on a Lambda vCPU, and well inside a 128 MB function's memory.
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// What the HTTP API needs beyond the JWT and database settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsConfig {
    /// Access-token lifetime: short, because an access token cannot be revoked (15 min).
    pub access_ttl: time::Duration,
    /// Refresh-token lifetime (30 days): how long a client may stay signed in unused.
    pub refresh_ttl: time::Duration,
    pub argon2: Argon2Config,
    /// Largest accepted request body. Every body of the API is a small JSON object; 16 KiB
    /// leaves room for long names while refusing junk before it is parsed.
    pub max_body_bytes: usize,
    /// Failed logins allowed per username and per source IP in one window (5), then 429:
    /// enough for typos, too few for guessing.
    pub login_max_failures: u32,
    /// The window of `login_max_failures` (15 min).
    pub login_window: time::Duration,
}

impl AccountsConfig {
    /// Reads the optional `HUBBUB_ACCESS_TOKEN_TTL_SECS`, `HUBBUB_REFRESH_TOKEN_TTL_SECS`,
    /// `HUBBUB_ARGON2_*`, `HUBBUB_MAX_BODY_BYTES`, `HUBBUB_LOGIN_MAX_FAILURES` and
    /// `HUBBUB_LOGIN_WINDOW_SECS`.
    pub fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let secs = |n: u64| time::Duration::seconds(i64::try_from(n).unwrap_or(i64::MAX));
        let as_u32 = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Self {
            access_ttl: secs(number(get, vars::ACCESS_TOKEN_TTL_SECS, 900, 60, 86_400)?),
            refresh_ttl: secs(number(
                get,
                vars::REFRESH_TOKEN_TTL_SECS,
                30 * 86_400,
                300,
                365 * 86_400,
            )?),
            argon2: Argon2Config {
                // argon2 needs at least 8 KiB per lane; 1 GiB is beyond any Lambda we would use.
                memory_kib: as_u32(number(get, vars::ARGON2_MEMORY_KIB, 19 * 1024, 8, 1 << 20)?),
                iterations: as_u32(number(get, vars::ARGON2_ITERATIONS, 2, 1, 64)?),
                parallelism: as_u32(number(get, vars::ARGON2_PARALLELISM, 1, 1, 16)?),
            },
            max_body_bytes: usize::try_from(number(
                get,
                vars::MAX_BODY_BYTES,
                16 * 1024,
                256,
                1 << 20,
            )?)
            .unwrap_or(16 * 1024),
            login_max_failures: as_u32(number(get, vars::LOGIN_MAX_FAILURES, 5, 1, 1000)?),
            login_window: secs(number(get, vars::LOGIN_WINDOW_SECS, 900, 1, 86_400)?),
        })
    }
}
