//! External issuers: RS256/ES256 tokens verified against the issuer's JSON Web Key Set. Their
//! users live in their own namespace ([`EXTERNAL_ID_PREFIX`], [`EXTERNAL_NAME_SUFFIX`]).
//!
//! The key set is fetched through a [`JwksSource`] (HTTP in production and in tests, against
//! a real server), cached, and fetched again when a token names a `kid` the cache does not
//! hold: that is how an issuer's key rotation is picked up. Refetches are rate-limited by
//! [`ExternalIssuerConfig::refetch_min_interval`].
//!
//! Each key is pinned to one algorithm (RS256 for RSA keys, ES256 for P-256 keys): the token's
//! `alg` header must match the key's, so an HS256 token "signed" with an RSA public key, or a
//! token whose header swaps algorithms, is refused before any signature check.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::jwt::{AuthError, Identity, JwtVerifier, identity, map_error};
use crate::config::ExternalIssuerConfig;

/// How long one key-set fetch may take. It runs inside a request (the authorizer or an HTTP
/// route): 5 s leaves most of API Gateway's 29 s integration timeout (and the authorizer's
/// 10 s default) for the rest, and an issuer slower than that is better treated as down.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest accepted key-set document. Real ones hold a handful of keys (a few KiB); the cap
/// keeps a misbehaving endpoint from filling the function's memory.
const JWKS_MAX_BYTES: usize = 256 * 1024;

/// The prefix of an external issuer's user ids (`ext:` + `sub`). Registered accounts' ids are
/// UUIDs, which never contain `:`, so no `sub` an issuer hands out can name a local account, its
/// private rooms or its messages.
pub const EXTERNAL_ID_PREFIX: &str = "ext:";

/// The suffix of an external user's display name (`name` + `@ext`). Local usernames are
/// `[A-Za-z0-9_.-]`, never `@`, so an external user cannot pass for a local one in messages and
/// presence.
pub const EXTERNAL_NAME_SUFFIX: &str = "@ext";

/// Why fetching the key set failed (logged; clients see `unauthorized` or `unavailable`).
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("the JWKS URL is invalid")]
    Url(#[source] http::uri::InvalidUri),
    #[error("fetching the key set failed")]
    Fetch(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("fetching the key set timed out after {0:?}")]
    Timeout(Duration),
    #[error("the key-set endpoint answered HTTP {0}")]
    Status(u16),
    #[error("the key set is not a JSON Web Key Set")]
    Parse(#[source] serde_json::Error),
}

/// Where a key set comes from (a port: the HTTP adapter is [`HttpJwksSource`]).
#[async_trait]
pub trait JwksSource: Send + Sync {
    /// The raw key-set document.
    async fn fetch(&self) -> Result<Bytes, JwksError>;
}

type HttpClient = hyper_util::client::legacy::Client<crate::https::HttpsConnector, Empty<Bytes>>;

/// Fetches a key set over HTTPS (or plain HTTP, for tests and local issuers on loopback).
pub struct HttpJwksSource {
    url: http::Uri,
    client: HttpClient,
}

impl HttpJwksSource {
    /// A source for `url`, trusting the platform's root certificates.
    pub fn new(url: &str) -> Result<Self, JwksError> {
        let url: http::Uri = url.parse().map_err(JwksError::Url)?;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(crate::https::connector(None));
        Ok(Self { url, client })
    }
}

#[async_trait]
impl JwksSource for HttpJwksSource {
    async fn fetch(&self) -> Result<Bytes, JwksError> {
        let request = http::Request::get(self.url.clone())
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| JwksError::Fetch(e.into()))?;
        let work = async {
            let resp = self
                .client
                .request(request)
                .await
                .map_err(|e| JwksError::Fetch(e.into()))?;
            if !resp.status().is_success() {
                return Err(JwksError::Status(resp.status().as_u16()));
            }
            let body = Limited::new(resp.into_body(), JWKS_MAX_BYTES)
                .collect()
                .await
                .map_err(JwksError::Fetch)?;
            Ok(body.to_bytes())
        };
        tokio::time::timeout(FETCH_TIMEOUT, work)
            .await
            .map_err(|_| JwksError::Timeout(FETCH_TIMEOUT))?
    }
}

/// The cached keys and when they were fetched.
struct KeyCache {
    /// kid -> (key, the one algorithm it may verify).
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    /// When the last fetch was attempted (success or not); `None` before the first.
    fetched_at: Option<Instant>,
}

/// The claims read from an external token; issuers differ in what else they carry.
#[derive(Deserialize)]
struct ExternalClaims {
    sub: String,
    exp: i64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    iat: Option<i64>,
}

/// Verifies RS256/ES256 tokens of one external issuer.
pub struct ExternalVerifier {
    cfg: ExternalIssuerConfig,
    source: Arc<dyn JwksSource>,
    /// An async mutex held across the fetch: concurrent verifications that all miss wait for
    /// one fetch instead of each starting their own (single flight).
    cache: tokio::sync::Mutex<KeyCache>,
}

/// Reads the keys hubbub can use from a key-set document, skipping the others (encryption
/// keys, other curves, symmetric keys): one odd key must not disable the issuer.
fn parse_keys(raw: &[u8]) -> Result<HashMap<String, (DecodingKey, Algorithm)>, JwksError> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let set: RawSet = serde_json::from_slice(raw).map_err(JwksError::Parse)?;
    let mut keys = HashMap::new();
    for value in set.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
        {
            continue;
        }
        let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
            (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
            (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
                if p.curve == EllipticCurve::P256 =>
            {
                Algorithm::ES256
            }
            _ => continue,
        };
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            keys.insert(kid, (key, alg));
        }
    }
    Ok(keys)
}

impl ExternalVerifier {
    /// A verifier for the configured issuer, fetching keys from `source` when first needed.
    pub fn new(cfg: ExternalIssuerConfig, source: Arc<dyn JwksSource>) -> Self {
        super::crypto::install();
        Self {
            cfg,
            source,
            cache: tokio::sync::Mutex::new(KeyCache {
                keys: HashMap::new(),
                fetched_at: None,
            }),
        }
    }

    /// The expected `iss`.
    pub fn issuer(&self) -> &str {
        &self.cfg.issuer
    }

    /// The key for `kid`, fetching the key set when it is unknown and the last fetch is older
    /// than the refetch interval.
    async fn key(&self, kid: &str) -> Result<(DecodingKey, Algorithm), AuthError> {
        let mut cache = self.cache.lock().await;
        if let Some(k) = cache.keys.get(kid) {
            return Ok(k.clone());
        }
        let may_fetch = cache
            .fetched_at
            .is_none_or(|t| t.elapsed() >= self.cfg.refetch_min_interval);
        if !may_fetch {
            return Err(AuthError::UnknownKey);
        }
        cache.fetched_at = Some(Instant::now());
        let fetched = match self.source.fetch().await {
            Ok(raw) => parse_keys(&raw),
            Err(e) => Err(e),
        };
        match fetched {
            Ok(keys) => {
                tracing::info!(
                    issuer = %self.cfg.issuer,
                    keys = keys.len(),
                    "fetched the external issuer's key set"
                );
                cache.keys = keys;
            }
            Err(e) => {
                tracing::error!(
                    issuer = %self.cfg.issuer,
                    error = %crate::error::chain(&e),
                    "fetching the external issuer's key set failed"
                );
                // Keep the old keys: tokens signed with them still verify during an outage.
                return Err(AuthError::KeysUnavailable);
            }
        }
        cache.keys.get(kid).cloned().ok_or(AuthError::UnknownKey)
    }

    /// Verifies a compact JWT of this issuer.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| map_error(e.kind()))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::UnsupportedAlgorithm);
        }
        let kid = header.kid.ok_or(AuthError::MissingClaim("kid".into()))?;
        let (key, alg) = self.key(&kid).await?;
        if alg != header.alg {
            return Err(AuthError::UnsupportedAlgorithm);
        }
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.set_issuer(&[&self.cfg.issuer]);
        validation.set_audience(&[&self.cfg.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = self.cfg.leeway.as_secs();
        let data = jsonwebtoken::decode::<ExternalClaims>(token, &key, &validation)
            .map_err(|e| map_error(e.kind()))?;
        let c = data.claims;
        let name = c
            .name
            .or(c.preferred_username)
            .unwrap_or_else(|| c.sub.clone());
        identity(
            format!("{EXTERNAL_ID_PREFIX}{}", c.sub),
            Some(format!("{name}{EXTERNAL_NAME_SUFFIX}")),
            c.exp,
            c.iat,
        )
    }
}

/// hubbub's own HS256 tokens and, when configured, one external issuer's RS256/ES256 tokens.
pub struct TokenVerifier {
    own: JwtVerifier,
    external: Option<ExternalVerifier>,
}

impl TokenVerifier {
    /// A verifier over both kinds of token.
    pub fn new(own: JwtVerifier, external: Option<ExternalVerifier>) -> Self {
        Self { own, external }
    }

    /// Verifies a token, choosing the verifier by its `alg` header: HS256 (and anything
    /// unreadable, which then fails with the precise reason) goes to hubbub's own verifier,
    /// RS256/ES256 to the external issuer's.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let alg = jsonwebtoken::decode_header(token).ok().map(|h| h.alg);
        match (alg, &self.external) {
            (Some(Algorithm::RS256 | Algorithm::ES256), Some(ext)) => ext.verify(token).await,
            (Some(Algorithm::RS256 | Algorithm::ES256), None) => {
                Err(AuthError::UnsupportedAlgorithm)
            }
            _ => {
                let keyring = self.own.keyring();
                keyring.refresh_if_stale().await;
                match self.own.verify(token) {
                    // Perhaps signed with a key rotated in since we last read the secret.
                    Err(AuthError::BadSignature) if keyring.refreshed().await => {
                        self.own.verify(token)
                    }
                    other => other,
                }
            }
        }
    }
}

impl From<JwtVerifier> for TokenVerifier {
    fn from(own: JwtVerifier) -> Self {
        Self::new(own, None)
    }
}
