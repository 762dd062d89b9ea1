//! Configuration from the environment, read once at init, failing fast with a message that
//! names the variable.
//!
//! Each Lambda reads only the parts it needs, so a function's environment in `template.yaml`
//! lists exactly its own variables. Every reader takes a lookup function so tests need not
//! touch the process environment.

use std::time::Duration;

use crate::gateway::budget::BudgetConfig;
use crate::limits::Limits;

/// A configuration variable is missing or unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is not set; {hint}")]
    Missing {
        var: &'static str,
        hint: &'static str,
    },
    #[error("{var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// Reads a variable; an empty value counts as unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as a [`Lookup`].
pub fn env_lookup(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

fn required(get: Lookup<'_>, var: &'static str, hint: &'static str) -> Result<String, ConfigError> {
    get(var).ok_or(ConfigError::Missing { var, hint })
}

/// Variable names of the settings more than one function reads, in one place for the template
/// consistency check and the docs (the HTTP API's own are in `http_api::config::vars`).
pub mod vars {
    pub const JWT_SECRET: &str = "HUBBUB_JWT_SECRET";
    pub const JWT_SECRET_ARN: &str = "HUBBUB_JWT_SECRET_ARN";
    pub const DATABASE_SECRET_ARN: &str = "HUBBUB_DATABASE_SECRET_ARN";
    pub const DATABASE_HOST: &str = "HUBBUB_DATABASE_HOST";
    pub const JWT_ISSUER: &str = "HUBBUB_JWT_ISSUER";
    pub const JWT_AUDIENCE: &str = "HUBBUB_JWT_AUDIENCE";
    pub const TABLE: &str = "HUBBUB_TABLE";
    pub const DATABASE_URL: &str = "DATABASE_URL";
    pub const MANAGEMENT_ENDPOINT: &str = "HUBBUB_MANAGEMENT_ENDPOINT";
    pub const FANOUT_QUEUE_URL: &str = "HUBBUB_FANOUT_QUEUE_URL";
    pub const PRESENCE_QUEUE_URL: &str = "HUBBUB_PRESENCE_QUEUE_URL";
    /// The moderation hook's Lambda function (name or ARN) (`crate::moderation`).
    pub const MODERATION_FUNCTION: &str = "HUBBUB_MODERATION_FUNCTION";
    pub const EXTERNAL_ISSUER: &str = "HUBBUB_EXTERNAL_ISSUER";
    pub const EXTERNAL_AUDIENCE: &str = "HUBBUB_EXTERNAL_AUDIENCE";
    pub const EXTERNAL_JWKS_URL: &str = "HUBBUB_EXTERNAL_JWKS_URL";
    pub const JWKS_REFETCH_SECS: &str = "HUBBUB_JWKS_REFETCH_SECS";
    // Abuse limits (crate::limits): read by the WebSocket routes and the HTTP API alike.
    pub const SEND_RATE_PER_SEC: &str = "HUBBUB_SEND_RATE_PER_SEC";
    pub const SEND_BURST: &str = "HUBBUB_SEND_BURST";
    pub const ROUTE_RATE_PER_SEC: &str = "HUBBUB_ROUTE_RATE_PER_SEC";
    pub const ROUTE_BURST: &str = "HUBBUB_ROUTE_BURST";
    pub const TYPING_INTERVAL_MS: &str = "HUBBUB_TYPING_INTERVAL_MS";
    pub const MAX_JOINED_ROOMS: &str = "HUBBUB_MAX_JOINED_ROOMS";
    pub const MAX_ROOMS_CREATED: &str = "HUBBUB_MAX_ROOMS_CREATED";
    pub const REGISTER_MAX: &str = "HUBBUB_REGISTER_MAX";
    pub const REGISTER_WINDOW_SECS: &str = "HUBBUB_REGISTER_WINDOW_SECS";
    // The instance's share of the account's @connections quota (crate::gateway::budget).
    pub const POST_RATE_PER_SEC: &str = "HUBBUB_POST_RATE_PER_SEC";
    pub const POST_BURST: &str = "HUBBUB_POST_BURST";
}

/// Reads an optional unsigned number in `min..=max`, or `default` when unset.
pub fn number(
    get: Lookup<'_>,
    var: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = get(var) else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::Invalid {
            var,
            reason: format!("must be a whole number in {min}..={max}"),
        }),
    }
}

/// Shortest accepted HS256 secret. RFC 7518 §3.2 asks for a key at least as long as the
/// hash output (256 bits); shorter secrets are brute-forceable offline from one token.
pub const JWT_SECRET_MIN_BYTES: usize = 32;

/// How access tokens are verified.
#[derive(Clone)]
pub struct JwtConfig {
    /// The HS256 shared secret.
    pub secret: Vec<u8>,
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// Clock skew tolerated on `exp`/`nbf`. 30 s covers NTP drift between the issuer and
    /// Lambda hosts without meaningfully extending a 15-minute token.
    pub leeway: Duration,
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl JwtConfig {
    /// Reads `HUBBUB_JWT_SECRET` (required), `HUBBUB_JWT_ISSUER` and `HUBBUB_JWT_AUDIENCE`
    /// (both default to `hubbub`).
    pub fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let secret = required(
            get,
            vars::JWT_SECRET,
            "set it to a random string of at least 32 bytes (the HS256 signing key)",
        )?;
        if secret.len() < JWT_SECRET_MIN_BYTES {
            return Err(ConfigError::Invalid {
                var: vars::JWT_SECRET,
                reason: format!("must be at least {JWT_SECRET_MIN_BYTES} bytes"),
            });
        }
        Ok(Self {
            secret: secret.into_bytes(),
            issuer: get(vars::JWT_ISSUER).unwrap_or_else(|| "hubbub".into()),
            audience: get(vars::JWT_AUDIENCE).unwrap_or_else(|| "hubbub".into()),
            leeway: Duration::from_secs(30),
        })
    }

    /// [`Self::from_lookup`] over the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&env_lookup)
    }

    /// Issuer, audience and leeway with no secret: the keys come from elsewhere.
    fn without_secret(get: Lookup<'_>) -> Self {
        Self {
            secret: Vec::new(),
            issuer: get(vars::JWT_ISSUER).unwrap_or_else(|| "hubbub".into()),
            audience: get(vars::JWT_AUDIENCE).unwrap_or_else(|| "hubbub".into()),
            leeway: Duration::from_secs(30),
        }
    }
}

/// hubbub's own HS256 key: in the environment (hubbub-local, tests) or a Secrets Manager
/// secret read at run time and followed through rotations (deployments).
#[derive(Debug, Clone)]
pub enum JwtSource {
    /// `HUBBUB_JWT_SECRET`.
    Inline(JwtConfig),
    /// `HUBBUB_JWT_SECRET_ARN`: a JSON secret with a `key`. `settings.secret` is empty and
    /// unused: the keys come from the secret.
    Secret { arn: SecretArn, settings: JwtConfig },
}

impl JwtSource {
    /// Issuer, audience and leeway (and, inline, the secret).
    pub fn settings(&self) -> &JwtConfig {
        match self {
            Self::Inline(c) | Self::Secret { settings: c, .. } => c,
        }
    }
}

impl FromLookup for JwtSource {
    /// Reads exactly one of `HUBBUB_JWT_SECRET` and `HUBBUB_JWT_SECRET_ARN`, and the issuer
    /// and audience.
    fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        match SecretArn::from_lookup(get, vars::JWT_SECRET_ARN)? {
            Some(_) if get(vars::JWT_SECRET).is_some() => Err(ConfigError::Invalid {
                var: vars::JWT_SECRET,
                reason: "set HUBBUB_JWT_SECRET or HUBBUB_JWT_SECRET_ARN, not both".into(),
            }),
            Some(arn) => Ok(Self::Secret {
                arn,
                settings: JwtConfig::without_secret(get),
            }),
            None => Ok(Self::Inline(JwtConfig::from_lookup(get)?)),
        }
    }
}

/// Where the stores live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoConfig {
    /// The single DynamoDB table holding connections and memberships.
    pub table: String,
}

impl DynamoConfig {
    /// Reads `HUBBUB_TABLE`. The endpoint comes from the SDK's own `AWS_ENDPOINT_URL_DYNAMODB`.
    pub fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            table: required(get, vars::TABLE, "set it to the connections table name")?,
        })
    }
}

/// The PostgreSQL history database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// A `postgres://` URL or key=value connection string.
    pub url: String,
}

impl PostgresConfig {
    /// Reads `DATABASE_URL`.
    pub fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let url = required(
            get,
            vars::DATABASE_URL,
            "set it to postgres://user:password@host:5432/db",
        )?;
        crate::store::pg_connect::DbTarget::parse(&url).map_err(|e| ConfigError::Invalid {
            var: vars::DATABASE_URL,
            reason: e.to_string(),
        })?;
        Ok(Self { url })
    }
}

/// The ARN of a Secrets Manager secret: the value lives there, never in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretArn(pub String);

impl SecretArn {
    fn from_lookup(get: Lookup<'_>, var: &'static str) -> Result<Option<Self>, ConfigError> {
        let Some(arn) = get(var) else {
            return Ok(None);
        };
        if !(arn.starts_with("arn:aws") && arn.contains(":secretsmanager:")) {
            return Err(ConfigError::Invalid {
                var,
                reason: "must be a Secrets Manager ARN (arn:aws:secretsmanager:...)".into(),
            });
        }
        Ok(Some(Self(arn)))
    }
}

/// Where a function finds its database: a URL in its environment (hubbub-local, tests, a
/// local `cargo lambda` run) or a Secrets Manager secret read at run time (deployments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseConfig {
    /// `DATABASE_URL`.
    Url(PostgresConfig),
    /// `HUBBUB_DATABASE_SECRET_ARN`: a JSON secret with a `url`, or RDS's own format
    /// (`username`, `password`, `host`, `port`, `dbname`); `HUBBUB_DATABASE_HOST` (RDS Proxy's
    /// endpoint) replaces its host when set.
    Secret {
        arn: SecretArn,
        host: Option<String>,
    },
}

impl FromLookup for DatabaseConfig {
    /// Reads exactly one of `DATABASE_URL` and `HUBBUB_DATABASE_SECRET_ARN`.
    fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        match SecretArn::from_lookup(get, vars::DATABASE_SECRET_ARN)? {
            Some(_) if get(vars::DATABASE_URL).is_some() => Err(ConfigError::Invalid {
                var: vars::DATABASE_URL,
                reason: "set DATABASE_URL or HUBBUB_DATABASE_SECRET_ARN, not both".into(),
            }),
            Some(arn) => Ok(Self::Secret {
                arn,
                host: get(vars::DATABASE_HOST),
            }),
            None => Ok(Self::Url(PostgresConfig::from_lookup(get)?)),
        }
    }
}

/// How to reach the API Gateway Management API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Overrides `https://{domainName}/{stage}` from the event: needed behind a custom domain
    /// (the management API only answers on the execute-api host) and for hubbub-local.
    pub endpoint: Option<String>,
    /// The SQS queue of large rooms' fan-out jobs (`HUBBUB_FANOUT_QUEUE_URL`). Without it,
    /// every fan-out is posted inline by the route, whatever the room's size.
    pub fanout_queue_url: Option<String>,
    /// The SQS queue presence changes are coalesced on (`HUBBUB_PRESENCE_QUEUE_URL`).
    /// Without it, each join and leave is announced at once, on its own.
    pub presence_queue_url: Option<String>,
    /// The instance's share of the account's `@connections` quota
    /// (`HUBBUB_POST_RATE_PER_SEC`, `HUBBUB_POST_BURST`); `None`: calls are not paced.
    pub post_budget: Option<BudgetConfig>,
}

impl GatewayConfig {
    /// Reads the optional `HUBBUB_MANAGEMENT_ENDPOINT`, `HUBBUB_FANOUT_QUEUE_URL`,
    /// `HUBBUB_PRESENCE_QUEUE_URL` and the post budget ([`BudgetConfig::from_lookup`]).
    pub fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let endpoint = get(vars::MANAGEMENT_ENDPOINT);
        if let Some(e) = &endpoint
            && !(e.starts_with("https://") || e.starts_with("http://"))
        {
            return Err(ConfigError::Invalid {
                var: vars::MANAGEMENT_ENDPOINT,
                reason: "must be an http(s):// URL such as https://abc123.execute-api.eu-west-1.amazonaws.com/prod".into(),
            });
        }
        Ok(Self {
            endpoint,
            fanout_queue_url: get(vars::FANOUT_QUEUE_URL),
            presence_queue_url: get(vars::PRESENCE_QUEUE_URL),
            post_budget: BudgetConfig::from_lookup(get)?,
        })
    }
}

/// A configuration a function reads at init. Each function crate names its own as
/// `pub type Config`, its `main.rs` reads it, and the template consistency test reads it with
/// the environment `template.yaml` gives the function: a missing variable fails the test.
pub trait FromLookup: Sized {
    /// Reads the configuration.
    fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError>;

    /// Reads it from the process environment.
    fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&env_lookup)
    }
}

/// A function that reads no configuration (`$default`).
impl FromLookup for () {
    fn from_lookup(_: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(())
    }
}

macro_rules! from_lookup {
    ($($t:ty),*) => {$(
        impl FromLookup for $t {
            fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
                <$t>::from_lookup(get)
            }
        }
    )*};
}
from_lookup!(JwtConfig, DynamoConfig, PostgresConfig, GatewayConfig);

/// The live side: the connections table and the management API (`$disconnect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    pub dynamo: DynamoConfig,
    pub gateway: GatewayConfig,
}

impl FromLookup for LiveConfig {
    fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            dynamo: DynamoConfig::from_lookup(get)?,
            gateway: GatewayConfig::from_lookup(get)?,
        })
    }
}

/// The live side plus the history database (`sendMessage`, the room routes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    pub live: LiveConfig,
    pub postgres: DatabaseConfig,
    pub limits: Limits,
    /// The moderation hook's Lambda function (`HUBBUB_MODERATION_FUNCTION`, optional: no hook
    /// without it); only send-message calls it.
    pub moderation_function: Option<String>,
}

impl FromLookup for RouteConfig {
    fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            live: LiveConfig::from_lookup(get)?,
            postgres: DatabaseConfig::from_lookup(get)?,
            limits: Limits::from_lookup(get)?,
            moderation_function: get(vars::MODERATION_FUNCTION).filter(|f| !f.is_empty()),
        })
    }
}

/// An external token issuer (an OIDC provider) whose RS256/ES256 tokens are accepted beside
/// hubbub's own HS256 ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIssuerConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// Where the issuer publishes its JSON Web Key Set.
    pub jwks_url: String,
    /// Shortest time between two fetches of the key set. A token with an unknown `kid`
    /// triggers a refetch (the issuer rotated its keys); without this floor anyone could
    /// make every request fetch the key set by sending made-up `kid`s, hammering the issuer
    /// (which may then rate-limit us) and slowing every verification. 60 s picks up a
    /// rotation within a minute.
    pub refetch_min_interval: Duration,
    /// Clock skew tolerated on `exp`/`nbf` (as for hubbub's own tokens).
    pub leeway: Duration,
}

impl ExternalIssuerConfig {
    /// Reads `HUBBUB_EXTERNAL_ISSUER`, `HUBBUB_EXTERNAL_AUDIENCE` and
    /// `HUBBUB_EXTERNAL_JWKS_URL` (all three, or none: then `None`) and the optional
    /// `HUBBUB_JWKS_REFETCH_SECS` (default 60).
    pub fn from_lookup(get: Lookup<'_>) -> Result<Option<Self>, ConfigError> {
        // Empty counts as unset: the deploy template passes empty parameters through.
        let get_set = |var: &str| get(var).filter(|v| !v.trim().is_empty());
        let issuer = get_set(vars::EXTERNAL_ISSUER);
        let audience = get_set(vars::EXTERNAL_AUDIENCE);
        let jwks_url = get_set(vars::EXTERNAL_JWKS_URL);
        let (issuer, audience, jwks_url) = match (issuer, audience, jwks_url) {
            (None, None, None) => return Ok(None),
            (Some(i), Some(a), Some(u)) => (i, a, u),
            (i, a, _) => {
                let var = if i.is_none() {
                    vars::EXTERNAL_ISSUER
                } else if a.is_none() {
                    vars::EXTERNAL_AUDIENCE
                } else {
                    vars::EXTERNAL_JWKS_URL
                };
                return Err(ConfigError::Missing {
                    var,
                    hint: "an external issuer needs HUBBUB_EXTERNAL_ISSUER, HUBBUB_EXTERNAL_AUDIENCE and HUBBUB_EXTERNAL_JWKS_URL together",
                });
            }
        };
        if !(jwks_url.starts_with("https://") || jwks_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                var: vars::EXTERNAL_JWKS_URL,
                reason: "must be an http(s):// URL".into(),
            });
        }
        let refetch = number(get, vars::JWKS_REFETCH_SECS, 60, 0, 86_400)?;
        Ok(Some(Self {
            issuer,
            audience,
            jwks_url,
            refetch_min_interval: Duration::from_secs(refetch),
            leeway: Duration::from_secs(30),
        }))
    }
}

/// How access tokens are verified: hubbub's own HS256 tokens, and optionally an external
/// issuer's (the authorizer's configuration).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub jwt: JwtSource,
    pub external: Option<ExternalIssuerConfig>,
}

impl FromLookup for AuthConfig {
    fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            jwt: JwtSource::from_lookup(get)?,
            external: ExternalIssuerConfig::from_lookup(get)?,
        })
    }
}

/// A lookup over fixed pairs, for the unit tests of every `from_lookup`.
#[cfg(test)]
pub(crate) fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_config_requires_a_long_secret() {
        let e = JwtConfig::from_lookup(&lookup(&[])).unwrap_err();
        assert!(e.to_string().starts_with("HUBBUB_JWT_SECRET is not set"));
        let e = JwtConfig::from_lookup(&lookup(&[("HUBBUB_JWT_SECRET", "short")])).unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { .. }));
        let c = JwtConfig::from_lookup(&lookup(&[("HUBBUB_JWT_SECRET", &"k".repeat(32))])).unwrap();
        assert_eq!(
            (c.issuer.as_str(), c.audience.as_str()),
            ("hubbub", "hubbub")
        );
        assert!(
            !format!("{c:?}").contains("kkkk"),
            "Debug must not print the secret"
        );
    }

    #[test]
    fn store_and_gateway_config() {
        assert!(DynamoConfig::from_lookup(&lookup(&[])).is_err());
        assert!(
            PostgresConfig::from_lookup(&lookup(&[("DATABASE_URL", "postgres://u@h/db")])).is_ok()
        );
        assert!(matches!(
            PostgresConfig::from_lookup(&lookup(&[("DATABASE_URL", "postgres://u@h:notaport/db")])),
            Err(ConfigError::Invalid { .. })
        ));
        assert_eq!(
            GatewayConfig::from_lookup(&lookup(&[])).unwrap().endpoint,
            None
        );
        assert!(
            GatewayConfig::from_lookup(&lookup(&[("HUBBUB_MANAGEMENT_ENDPOINT", "ftp://x")]))
                .is_err()
        );
    }

    #[test]
    fn secrets_come_from_an_arn_or_the_environment_never_both() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hubbub/jwt-AbCdEf";
        let src = JwtSource::from_lookup(&lookup(&[("HUBBUB_JWT_SECRET_ARN", arn)])).unwrap();
        assert!(matches!(&src, JwtSource::Secret { arn: a, .. } if a.0 == arn));
        assert_eq!(src.settings().issuer, "hubbub");
        let k = "k".repeat(32);
        assert!(
            JwtSource::from_lookup(&lookup(&[
                ("HUBBUB_JWT_SECRET_ARN", arn),
                ("HUBBUB_JWT_SECRET", &k)
            ]))
            .is_err()
        );
        assert!(
            JwtSource::from_lookup(&lookup(&[("HUBBUB_JWT_SECRET_ARN", "hubbub/jwt")])).is_err()
        );
        let db = DatabaseConfig::from_lookup(&lookup(&[
            ("HUBBUB_DATABASE_SECRET_ARN", arn),
            ("HUBBUB_DATABASE_HOST", "proxy.example.com"),
        ]))
        .unwrap();
        assert!(
            matches!(db, DatabaseConfig::Secret { host: Some(h), .. } if h == "proxy.example.com")
        );
        assert!(matches!(
            DatabaseConfig::from_lookup(&lookup(&[("DATABASE_URL", "postgres://u@h/db")])),
            Ok(DatabaseConfig::Url(_))
        ));
        assert!(DatabaseConfig::from_lookup(&lookup(&[])).is_err());
    }

    #[test]
    fn external_issuer_config() {
        assert_eq!(
            ExternalIssuerConfig::from_lookup(&lookup(&[])).unwrap(),
            None
        );
        let e = ExternalIssuerConfig::from_lookup(&lookup(&[(
            "HUBBUB_EXTERNAL_ISSUER",
            "https://idp",
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("HUBBUB_EXTERNAL_AUDIENCE"), "{e}");
        let c = ExternalIssuerConfig::from_lookup(&lookup(&[
            ("HUBBUB_EXTERNAL_ISSUER", "https://idp"),
            ("HUBBUB_EXTERNAL_AUDIENCE", "hubbub"),
            (
                "HUBBUB_EXTERNAL_JWKS_URL",
                "https://idp/.well-known/jwks.json",
            ),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.refetch_min_interval, Duration::from_secs(60));
    }
}
