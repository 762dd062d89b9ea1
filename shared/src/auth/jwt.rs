//! HS256 JWTs: verification for the authorizer and the HTTP API, issuing for hubbub's own
//! tokens and for tests.
//!
//! Only the configured algorithm is accepted: `alg: none`, an RS/ES algorithm, or a header the
//! crate cannot read are refused before any signature check.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::JwtConfig;
use crate::secrets::CachedSecret;

/// Longest accepted `sub`: it becomes a DynamoDB attribute and a PostgreSQL key.
const SUB_MAX: usize = 128;
/// Longest accepted display name: it is copied into every message and presence frame.
const NAME_MAX: usize = 64;

/// Why a token was refused. The `Display` text is safe to log; clients only ever see
/// `unauthorized` (or a handshake 401/403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no token was presented")]
    Missing,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token uses an algorithm that is not accepted")]
    UnsupportedAlgorithm,
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(String),
    #[error("the token's `{0}` claim is unusable")]
    BadClaim(&'static str),
    #[error("the signing key is unusable")]
    Key,
    #[error("the token's key id is not in the issuer's key set")]
    UnknownKey,
    #[error("the issuer's key set could not be fetched")]
    KeysUnavailable,
    #[error("the token was revoked (its user logged out, or a spent refresh token was replayed)")]
    Revoked,
}

impl AuthError {
    /// A correctly signed token that is simply not meant for this API: the authorizer answers
    /// with a Deny policy (403) rather than Unauthorized (401).
    pub fn is_policy_denial(&self) -> bool {
        matches!(self, Self::WrongIssuer | Self::WrongAudience)
    }
}

/// The claims hubbub issues and reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    #[serde(default)]
    pub jti: String,
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub user_name: String,
    /// `exp` as Unix seconds.
    pub expires_at: i64,
    /// `iat` as Unix seconds, when the token has one (hubbub's own always do): a revocation
    /// marker refuses tokens issued before it.
    pub issued_at: Option<i64>,
}

/// One HS256 key: its id (the first 6 bytes of its SHA-256, hex, carried in the tokens'
/// `kid` header so that a rotated key is visible) and its signing and verifying forms.
pub struct JwtKey {
    kid: String,
    decoding: DecodingKey,
    encoding: EncodingKey,
}

impl JwtKey {
    /// The key of a shared secret (never an empty one: an HMAC with an empty key is a
    /// signature anyone can make).
    pub fn new(secret: &[u8]) -> Result<Self, AuthError> {
        if secret.is_empty() {
            return Err(AuthError::Key);
        }
        super::crypto::install();
        let digest = Sha256::digest(secret);
        Ok(Self {
            kid: digest[..6].iter().map(|b| format!("{b:02x}")).collect(),
            decoding: DecodingKey::from_secret(secret).map_err(|_| AuthError::Key)?,
            encoding: EncodingKey::from_secret(secret).map_err(|_| AuthError::Key)?,
        })
    }
}

/// The keys in force: the current one signs and verifies; during a rotation the previous one
/// still verifies, so tokens signed before it stay valid until they expire.
pub struct JwtKeys {
    pub current: JwtKey,
    pub previous: Option<JwtKey>,
}

impl JwtKeys {
    /// Keys from secret versions (the current and, if any, the previous).
    pub fn from_versions(current: &[u8], previous: Option<&[u8]>) -> Result<Self, AuthError> {
        Ok(Self {
            current: JwtKey::new(current)?,
            previous: previous
                .filter(|p| *p != current)
                .map(JwtKey::new)
                .transpose()?,
        })
    }
}

/// Where a verifier and an issuer find their keys: fixed at init (configuration, tests), or
/// a secret in Secrets Manager that may rotate ([`CachedSecret`]).
#[derive(Clone)]
pub enum JwtKeyring {
    Fixed(Arc<JwtKeys>),
    Secret(Arc<CachedSecret<JwtKeys>>),
}

impl JwtKeyring {
    /// A keyring of one fixed secret.
    pub fn fixed(secret: &[u8]) -> Result<Self, AuthError> {
        Ok(Self::Fixed(Arc::new(JwtKeys::from_versions(secret, None)?)))
    }

    fn keys(&self) -> Arc<JwtKeys> {
        match self {
            Self::Fixed(k) => k.clone(),
            Self::Secret(s) => s.now(),
        }
    }

    /// Reads the secret again if it is stale (see [`crate::secrets`]).
    pub async fn refresh_if_stale(&self) {
        if let Self::Secret(s) = self {
            s.fresh().await;
        }
    }

    /// After a token failed every key in hand: reads the secret again (rate-limited); true
    /// when the keys changed.
    pub async fn refreshed(&self) -> bool {
        match self {
            Self::Fixed(_) => false,
            Self::Secret(s) => s.refreshed().await.is_some(),
        }
    }
}

/// Verifies access tokens. Build once at init; cheap to share.
pub struct JwtVerifier {
    keyring: JwtKeyring,
    validation: Validation,
}

impl JwtVerifier {
    /// A verifier for HS256 tokens signed with the configured secret.
    pub fn hs256(cfg: &JwtConfig) -> Result<Self, AuthError> {
        Ok(Self::with_keyring(JwtKeyring::fixed(&cfg.secret)?, cfg))
    }

    /// A verifier over `keyring`; `cfg`'s issuer, audience and leeway (its secret is unused).
    pub fn with_keyring(keyring: JwtKeyring, cfg: &JwtConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&[&cfg.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = cfg.leeway.as_secs();
        Self {
            keyring,
            validation,
        }
    }

    /// The keyring, to refresh it.
    pub fn keyring(&self) -> &JwtKeyring {
        &self.keyring
    }

    /// Verifies a compact JWT and returns its identity.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let keys = self.keyring.keys();
        // The key the token names first; the `kid` is a hint, never a reason to accept.
        let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
        let mut order: Vec<&JwtKey> = std::iter::once(&keys.current)
            .chain(keys.previous.as_ref())
            .collect();
        if let Some(kid) = kid {
            order.sort_by_key(|k| k.kid != kid);
        }
        let mut last = AuthError::BadSignature;
        for key in order {
            match jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation) {
                Ok(data) => {
                    let c = data.claims;
                    return identity(c.sub, c.name, c.exp, Some(c.iat));
                }
                // Signatures are checked before claims: only a bad signature means "try the
                // other key".
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => {
                    last = AuthError::BadSignature;
                }
                Err(e) => return Err(map_error(e.kind())),
            }
        }
        Err(last)
    }
}

/// Checks the identity claims of a verified token (ours or an external issuer's).
pub(crate) fn identity(
    sub: String,
    name: Option<String>,
    exp: i64,
    iat: Option<i64>,
) -> Result<Identity, AuthError> {
    if sub.is_empty() || sub.len() > SUB_MAX || sub.chars().any(char::is_control) {
        return Err(AuthError::BadClaim("sub"));
    }
    let name = name.unwrap_or_else(|| sub.clone());
    if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(AuthError::BadClaim("name"));
    }
    Ok(Identity {
        user_id: sub,
        user_name: name,
        expires_at: exp,
        issued_at: iat,
    })
}

pub(crate) fn map_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => AuthError::UnsupportedAlgorithm,
        ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
        _ => AuthError::Malformed,
    }
}

/// Issues HS256 access tokens with the current key, its `kid` in the header.
pub struct JwtIssuer {
    keyring: JwtKeyring,
    issuer: String,
    audience: String,
}

impl JwtIssuer {
    /// An issuer over the same secret the verifier uses.
    pub fn hs256(cfg: &JwtConfig) -> Result<Self, AuthError> {
        Ok(Self::with_keyring(JwtKeyring::fixed(&cfg.secret)?, cfg))
    }

    /// An issuer over `keyring`; `cfg`'s issuer and audience (its secret is unused).
    pub fn with_keyring(keyring: JwtKeyring, cfg: &JwtConfig) -> Self {
        Self {
            keyring,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
        }
    }

    /// The keyring, to refresh it.
    pub fn keyring(&self) -> &JwtKeyring {
        &self.keyring
    }

    /// The claims a token for this user would carry, valid from now for `ttl`.
    pub fn claims(&self, user_id: &str, user_name: &str, ttl: time::Duration) -> Claims {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        Claims {
            sub: user_id.to_owned(),
            name: Some(user_name.to_owned()),
            iat: now,
            nbf: now,
            exp: now + ttl.whole_seconds(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Signs arbitrary claims (tests use it to forge expired or foreign tokens).
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let keys = self.keyring.keys();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(keys.current.kid.clone());
        jsonwebtoken::encode(&header, claims, &keys.current.encoding).map_err(|_| AuthError::Key)
    }

    /// Issues an access token for a user.
    pub fn issue(
        &self,
        user_id: &str,
        user_name: &str,
        ttl: time::Duration,
    ) -> Result<String, AuthError> {
        self.sign(&self.claims(user_id, user_name, ttl))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn b64(data: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
    }

    fn cfg(secret: &str) -> JwtConfig {
        JwtConfig {
            secret: secret.as_bytes().to_vec(),
            issuer: "hubbub".into(),
            audience: "hubbub".into(),
            leeway: Duration::from_secs(30),
        }
    }

    const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";

    #[test]
    fn the_previous_key_still_verifies_and_the_current_one_signs() {
        const NEW: &str = "the-rotated-secret-that-is-long-enough-too";
        let keys = JwtKeyring::Fixed(Arc::new(
            JwtKeys::from_versions(NEW.as_bytes(), Some(SECRET.as_bytes())).unwrap(),
        ));
        let verifier = JwtVerifier::with_keyring(keys.clone(), &cfg(""));
        let old = JwtIssuer::hs256(&cfg(SECRET)).unwrap();
        let token = old
            .issue("u-1", "alice", time::Duration::minutes(5))
            .unwrap();
        assert_eq!(verifier.verify(&token).unwrap().user_id, "u-1");
        let current = JwtIssuer::with_keyring(keys, &cfg(""));
        let token = current
            .issue("u-2", "bob", time::Duration::minutes(5))
            .unwrap();
        assert!(
            JwtVerifier::hs256(&cfg(NEW))
                .unwrap()
                .verify(&token)
                .is_ok()
        );
        assert_eq!(
            JwtVerifier::hs256(&cfg(SECRET)).unwrap().verify(&token),
            Err(AuthError::BadSignature)
        );
        assert!(JwtVerifier::hs256(&cfg("")).is_err(), "no empty key");
    }

    fn pair() -> (JwtIssuer, JwtVerifier) {
        (
            JwtIssuer::hs256(&cfg(SECRET)).unwrap(),
            JwtVerifier::hs256(&cfg(SECRET)).unwrap(),
        )
    }

    #[test]
    fn accepts_a_fresh_token() {
        let (i, v) = pair();
        let t = i
            .issue("u-1", "alice", time::Duration::minutes(15))
            .unwrap();
        let id = v.verify(&t).unwrap();
        assert_eq!(
            (id.user_id.as_str(), id.user_name.as_str()),
            ("u-1", "alice")
        );
        let header = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(header.kid.as_deref().map(str::len), Some(12));
    }

    #[test]
    fn rejects_every_bad_token() {
        let (i, v) = pair();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let base = i.claims("u-1", "alice", time::Duration::minutes(15));
        let signed = |c: Claims| i.sign(&c).unwrap();

        assert_eq!(v.verify(""), Err(AuthError::Missing));
        assert_eq!(v.verify("not.a.jwt"), Err(AuthError::Malformed));
        assert_eq!(
            v.verify(&signed(Claims {
                exp: now - 120,
                ..base.clone()
            })),
            Err(AuthError::Expired)
        );
        assert_eq!(
            v.verify(&signed(Claims {
                nbf: now + 600,
                ..base.clone()
            })),
            Err(AuthError::NotYetValid)
        );
        assert_eq!(
            v.verify(&signed(Claims {
                iss: "evil".into(),
                ..base.clone()
            })),
            Err(AuthError::WrongIssuer)
        );
        assert_eq!(
            v.verify(&signed(Claims {
                aud: "other-api".into(),
                ..base.clone()
            })),
            Err(AuthError::WrongAudience)
        );
        assert_eq!(
            v.verify(&signed(Claims {
                sub: String::new(),
                ..base.clone()
            })),
            Err(AuthError::BadClaim("sub"))
        );

        // Signed with another secret.
        let other = JwtIssuer::hs256(&cfg("another-secret-that-is-also-long-enough")).unwrap();
        assert_eq!(
            v.verify(&other.sign(&base).unwrap()),
            Err(AuthError::BadSignature)
        );

        // Tampered payload: same header and signature, different claims.
        let good = signed(base.clone());
        let parts: Vec<&str> = good.split('.').collect();
        let evil_payload = b64(serde_json::to_string(&Claims {
            sub: "admin".into(),
            ..base.clone()
        })
        .unwrap()
        .as_bytes());
        let tampered = format!("{}.{}.{}", parts[0], evil_payload, parts[2]);
        assert_eq!(v.verify(&tampered), Err(AuthError::BadSignature));

        // alg: none, with and without a signature.
        let payload = b64(serde_json::to_string(&base).unwrap().as_bytes());
        let none = b64(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(v.verify(&format!("{none}.{payload}.")).is_err());
        // jsonwebtoken has no `none` algorithm at all: the header itself does not parse.
        assert_eq!(
            v.verify(&format!("{none}.{payload}.{}", parts[2])),
            Err(AuthError::Malformed)
        );
        // An algorithm that is real but not configured (HS512 with the same secret).
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &base,
            &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(v.verify(&hs512), Err(AuthError::UnsupportedAlgorithm));

        // Missing required claims.
        let no_exp = b64(
            serde_json::json!({"sub":"u","nbf":now,"iat":now,"iss":"hubbub","aud":"hubbub"})
                .to_string()
                .as_bytes(),
        );
        let header = parts[0];
        let unsigned = format!("{header}.{no_exp}");
        let sig = {
            use jsonwebtoken::crypto::sign;
            sign(
                unsigned.as_bytes(),
                &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
                Algorithm::HS256,
            )
            .unwrap()
        };
        assert!(matches!(
            v.verify(&format!("{unsigned}.{sig}")),
            Err(AuthError::MissingClaim(_)) | Err(AuthError::Malformed)
        ));
    }

    #[test]
    fn policy_denials_are_foreign_tokens_only() {
        assert!(AuthError::WrongAudience.is_policy_denial());
        assert!(AuthError::WrongIssuer.is_policy_denial());
        assert!(!AuthError::Expired.is_policy_denial());
        assert!(!AuthError::BadSignature.is_policy_denial());
    }
}
