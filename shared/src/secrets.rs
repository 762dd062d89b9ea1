//! Secrets read at run time from AWS Secrets Manager, never from the function's configuration:
//! the JWT signing key and the database URL (with its password). A function's environment
//! carries only the secret's ARN; it reads the value at init (failing fast), keeps it in memory,
//! and picks up a rotated value without a redeploy:
//!
//! - when the cached value is older than [`SECRET_TTL`] (read again on the next use), and
//! - at once when the value in hand is refused (PostgreSQL rejects the password, a token names
//!   a signing key we do not hold), at most once per [`FORCED_REFRESH_FLOOR`].
//!
//! A failed refresh keeps the value in hand (logged): a Secrets Manager hiccup must not take a
//! warm function down.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;

/// How long a secret is used before it is read again. Rotation (Secrets Manager's own, or an
/// operator's `put-secret-value`) keeps the previous version valid for a while, so a warm
/// function that learns the new value within 5 minutes never breaks; reading it more often
/// would cost one billed GetSecretValue per container per interval for nothing.
pub const SECRET_TTL: Duration = Duration::from_secs(300);

/// Least time between two reads forced by a refused value. A refusal can come from outside
/// (anyone can present a token with a made-up key id), so without a floor every bad request
/// would cost a Secrets Manager call; 10 s still picks a rotation up within seconds.
pub const FORCED_REFRESH_FLOOR: Duration = Duration::from_secs(10);

/// The field of the database secret holding the URL. Without it, the URL is built from RDS's
/// own secret format (`username`, `password`, `host`, `port`, `dbname`), the one RDS's managed
/// rotation updates.
pub const DATABASE_URL_FIELD: &str = "url";

/// The field of the JWT secret holding the HS256 key.
pub const JWT_KEY_FIELD: &str = "key";

/// A PostgreSQL URL from RDS's secret format, or `None` when a part is missing.
fn rds_url(json: &serde_json::Value) -> Option<String> {
    let enc = |s: &str| {
        form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    let user = json["username"].as_str()?;
    let password = json["password"].as_str()?;
    let host = json["host"].as_str()?;
    let port = match &json["port"] {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => "5432".to_owned(),
    };
    let db = json["dbname"].as_str().unwrap_or("postgres");
    Some(format!(
        "postgres://{}:{}@{host}:{port}/{}",
        enc(user),
        enc(password),
        enc(db)
    ))
}

/// Why a secret could not be read or used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretError {
    #[error("reading secret {arn}: {code}: {message}")]
    Fetch {
        arn: String,
        code: String,
        message: String,
    },
    #[error("secret {arn} has no string value")]
    NotAString { arn: String },
    #[error("secret {arn} is not a JSON object with a string \"{field}\"")]
    MissingField { arn: String, field: &'static str },
    #[error("the {what} secret is unusable: {reason}")]
    Unusable { what: &'static str, reason: String },
}

/// The versions of a secret a consumer may accept: the current one, and the previous one
/// (Secrets Manager's `AWSPREVIOUS` stage) while it exists, so that what was made with the
/// old value (a token signed before a rotation) stays valid until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersions {
    pub current: String,
    pub previous: Option<String>,
}

/// Reads a secret's versions (one field of its JSON).
#[async_trait]
pub trait SecretFetch: Send + Sync {
    /// The secret's current value and, when `with_previous`, the previous one.
    async fn fetch(&self, with_previous: bool) -> Result<SecretVersions, SecretError>;
}

/// A field of a JSON secret in AWS Secrets Manager (`{"url": "postgres://..."}`).
pub struct SecretsManagerField {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
    field: &'static str,
}

impl SecretsManagerField {
    pub fn new(client: aws_sdk_secretsmanager::Client, arn: String, field: &'static str) -> Self {
        Self { client, arn, field }
    }

    async fn stage(&self, stage: &str) -> Result<Option<String>, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.arn)
            .version_stage(stage)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            // No AWSPREVIOUS before the first rotation.
            Err(e)
                if stage != "AWSCURRENT"
                    && e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => {
                return Err(SecretError::Fetch {
                    arn: self.arn.clone(),
                    code: e.code().unwrap_or("unreachable").to_owned(),
                    message: e.message().map_or_else(|| e.to_string(), str::to_owned),
                });
            }
        };
        let raw = out.secret_string().ok_or_else(|| SecretError::NotAString {
            arn: self.arn.clone(),
        })?;
        let json: serde_json::Value =
            serde_json::from_str(raw).map_err(|_| SecretError::MissingField {
                arn: self.arn.clone(),
                field: self.field,
            })?;
        let value = json[self.field].as_str().map(str::to_owned);
        let value = match value {
            None if self.field == DATABASE_URL_FIELD => rds_url(&json),
            v => v,
        };
        value.map(Some).ok_or(SecretError::MissingField {
            arn: self.arn.clone(),
            field: self.field,
        })
    }
}

#[async_trait]
impl SecretFetch for SecretsManagerField {
    async fn fetch(&self, with_previous: bool) -> Result<SecretVersions, SecretError> {
        let current = self
            .stage("AWSCURRENT")
            .await?
            .ok_or_else(|| SecretError::NotAString {
                arn: self.arn.clone(),
            })?;
        let previous = if with_previous {
            // A previous version that is unreadable is simply not accepted.
            self.stage("AWSPREVIOUS").await.ok().flatten()
        } else {
            None
        };
        Ok(SecretVersions { current, previous })
    }
}

/// Turns a secret's versions into what its consumer uses (a parsed database URL, signing keys).
pub type Parse<T> = Box<dyn Fn(&SecretVersions) -> Result<T, String> + Send + Sync>;

struct Held<T> {
    raw: SecretVersions,
    value: Arc<T>,
    read_at: Instant,
    forced_at: Option<Instant>,
}

/// A secret's value, parsed, cached and refreshed as the module describes.
pub struct CachedSecret<T> {
    source: Box<dyn SecretFetch>,
    with_previous: bool,
    parse: Parse<T>,
    what: &'static str,
    held: RwLock<Held<T>>,
    /// One refresh at a time: concurrent users wait for it rather than each calling out.
    refreshing: tokio::sync::Mutex<()>,
    ttl: Duration,
}

impl<T: Send + Sync + 'static> CachedSecret<T> {
    /// Reads the secret now (init: an unreadable or unusable secret fails the function).
    pub async fn load(
        source: Box<dyn SecretFetch>,
        with_previous: bool,
        what: &'static str,
        parse: Parse<T>,
    ) -> Result<Self, SecretError> {
        let raw = source.fetch(with_previous).await?;
        let value = parse(&raw).map_err(|reason| SecretError::Unusable { what, reason })?;
        Ok(Self {
            source,
            with_previous,
            parse,
            what,
            held: RwLock::new(Held {
                raw,
                value: Arc::new(value),
                read_at: Instant::now(),
                forced_at: None,
            }),
            refreshing: tokio::sync::Mutex::new(()),
            ttl: SECRET_TTL,
        })
    }

    /// Uses a shorter time-to-live (tests of the refresh).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    fn held(&self) -> std::sync::RwLockReadGuard<'_, Held<T>> {
        self.held
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value in hand, without reading anything.
    pub fn now(&self) -> Arc<T> {
        self.held().value.clone()
    }

    /// The value, read again first if it is older than the time-to-live.
    pub async fn fresh(&self) -> Arc<T> {
        if self.held().read_at.elapsed() >= self.ttl {
            let _one = self.refreshing.lock().await;
            if self.held().read_at.elapsed() >= self.ttl {
                self.read_again().await;
            }
        }
        self.now()
    }

    /// After the value in hand was refused: reads the secret again (at most once per
    /// [`FORCED_REFRESH_FLOOR`]) and returns the new value if it changed.
    pub async fn refreshed(&self) -> Option<Arc<T>> {
        let before = self.now();
        let _one = self.refreshing.lock().await;
        // Someone else refreshed while we waited.
        let after = self.now();
        if !Arc::ptr_eq(&before, &after) {
            return Some(after);
        }
        if self
            .held()
            .forced_at
            .is_some_and(|at| at.elapsed() < FORCED_REFRESH_FLOOR)
        {
            return None;
        }
        {
            let mut held = self
                .held
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            held.forced_at = Some(Instant::now());
        }
        self.read_again().await.then(|| self.now())
    }

    /// Reads the secret; true when the value changed.
    async fn read_again(&self) -> bool {
        let raw = match self.source.fetch(self.with_previous).await {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!(secret = self.what, error = %e, "secret refresh failed; keeping the value in hand");
                // Not again at once: the next try waits for the time-to-live.
                self.mark_read();
                return false;
            }
        };
        if raw == self.held().raw {
            self.mark_read();
            return false;
        }
        match (self.parse)(&raw) {
            Ok(value) => {
                let mut held = self
                    .held
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                held.raw = raw;
                held.value = Arc::new(value);
                held.read_at = Instant::now();
                tracing::info!(secret = self.what, "rotated secret picked up");
                true
            }
            Err(reason) => {
                tracing::error!(secret = self.what, %reason, "the rotated secret is unusable; keeping the value in hand");
                self.mark_read();
                false
            }
        }
    }

    fn mark_read(&self) {
        let mut held = self
            .held
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.read_at = Instant::now();
    }
}

#[async_trait]
impl crate::store::pg_connect::TargetSource for CachedSecret<crate::store::pg_connect::DbTarget> {
    async fn current(&self) -> Arc<crate::store::pg_connect::DbTarget> {
        self.fresh().await
    }

    async fn refreshed(&self) -> Option<Arc<crate::store::pg_connect::DbTarget>> {
        CachedSecret::refreshed(self).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A secret held in memory, counting reads.
    struct Fake {
        value: Mutex<String>,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl SecretFetch for Arc<Fake> {
        async fn fetch(&self, _with_previous: bool) -> Result<SecretVersions, SecretError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(SecretVersions {
                current: self.value.lock().unwrap().clone(),
                previous: None,
            })
        }
    }

    async fn cached(fake: &Arc<Fake>) -> CachedSecret<String> {
        CachedSecret::load(
            Box::new(fake.clone()),
            false,
            "test",
            Box::new(|v: &SecretVersions| {
                if v.current.is_empty() {
                    Err("empty".into())
                } else {
                    Ok(v.current.clone())
                }
            }),
        )
        .await
        .unwrap()
    }

    fn fake(v: &str) -> Arc<Fake> {
        Arc::new(Fake {
            value: Mutex::new(v.into()),
            reads: AtomicUsize::new(0),
        })
    }

    #[tokio::test]
    async fn a_fresh_value_is_not_read_again_a_stale_one_is() {
        let f = fake("one");
        let c = cached(&f).await;
        *f.value.lock().unwrap() = "two".into();
        assert_eq!(*c.fresh().await, "one", "inside the time-to-live");
        assert_eq!(f.reads.load(Ordering::SeqCst), 1);
        let c = c.with_ttl(Duration::ZERO);
        assert_eq!(*c.fresh().await, "two", "past the time-to-live");
    }

    #[tokio::test]
    async fn forced_reads_are_rate_limited_and_an_unusable_rotation_keeps_the_old_value() {
        let f = fake("one");
        let c = cached(&f).await;
        *f.value.lock().unwrap() = "two".into();
        assert_eq!(c.refreshed().await.as_deref(), Some(&"two".to_owned()));
        *f.value.lock().unwrap() = "three".into();
        assert_eq!(c.refreshed().await, None, "within the floor: no read");
        assert_eq!(f.reads.load(Ordering::SeqCst), 2);

        let f = fake("one");
        let c = cached(&f).await.with_ttl(Duration::ZERO);
        *f.value.lock().unwrap() = String::new();
        assert_eq!(*c.fresh().await, "one", "an unusable value is not taken");
    }

    #[test]
    fn rds_format_secrets_become_urls() {
        let json = serde_json::json!({
            "engine": "postgres", "username": "hub bub", "password": "p@ss:w/rd",
            "host": "db.abc.eu-west-1.rds.amazonaws.com", "port": 5432, "dbname": "hubbub"
        });
        assert_eq!(
            rds_url(&json).unwrap(),
            "postgres://hub%20bub:p%40ss%3Aw%2Frd@db.abc.eu-west-1.rds.amazonaws.com:5432/hubbub"
        );
        assert_eq!(rds_url(&serde_json::json!({"username": "u"})), None);
    }
}
