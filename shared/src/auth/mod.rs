//! Access-token verification (and issuing, for hubbub's own HS256 tokens).
//!
//! - [`JwtVerifier`] / [`JwtIssuer`]: hubbub's own HS256 tokens;
//! - [`ExternalVerifier`]: RS256/ES256 tokens of one configured external issuer, verified
//!   against its JWKS (fetched through a [`JwksSource`], cached, refetched on an unknown `kid`);
//! - [`TokenVerifier`]: both, choosing by the token's `alg` header. The authorizer and the
//!   HTTP API use it.
//! - [`crypto`]: the signatures underneath, on ring.

pub mod crypto;
mod jwks;
mod jwt;

pub use jwks::{
    EXTERNAL_ID_PREFIX, EXTERNAL_NAME_SUFFIX, ExternalVerifier, HttpJwksSource, JwksError,
    JwksSource, TokenVerifier,
};
pub use jwt::{AuthError, Claims, Identity, JwtIssuer, JwtKey, JwtKeyring, JwtKeys, JwtVerifier};
