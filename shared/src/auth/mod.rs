//! Access-token verification (and issuing, for hubbub's own HS256 tokens).

mod jwt;

pub use jwt::{AuthError, Claims, Identity, JwtIssuer, JwtVerifier};
