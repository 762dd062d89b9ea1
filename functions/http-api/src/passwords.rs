//! Password hashing with argon2id (per-user random salt, parameters from config), off the
//! async executor.
//!
//! A login for an unknown user verifies the password against a dummy hash made with the same
//! parameters, so it costs as much as a wrong password for a real user: response time does
//! not tell which usernames exist.

use crate::config::Argon2Config;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

use crate::ApiError;

/// Why the hasher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("hashing the dummy password failed: {0}")]
    Dummy(String),
}

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// A hash of a random password nobody knows, verified against when the user is unknown.
    dummy: String,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

fn hasher(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &[u8]) -> Result<String, String> {
    hasher(params)
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

impl Passwords {
    /// A hasher with these costs; hashes the dummy password once (at init, not per login).
    pub fn new(cfg: &Argon2Config) -> Result<Self, PasswordError> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        let dummy = hash_with(&params, &secret).map_err(PasswordError::Dummy)?;
        Ok(Self { params, dummy })
    }

    /// The PHC string of `password` with a fresh random salt.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let params = self.params.clone();
        // argon2 is deliberately CPU- and memory-bound (tens of ms): keep it off the executor.
        tokio::task::spawn_blocking(move || hash_with(&params, password.as_bytes()))
            .await
            .map_err(|e| ApiError::internal("password hashing", e))?
            .map_err(|e| ApiError::internal("password hashing", e))
    }

    /// Whether `password` matches `stored`; with no stored hash, verifies against the dummy
    /// (always false) at the same cost.
    pub async fn verify(&self, password: String, stored: Option<String>) -> bool {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy.clone());
        let result = tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                tracing::error!("a stored password hash is not a PHC string");
                return false;
            };
            hasher(&Params::default())
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .await;
        match result {
            Ok(ok) => ok && known,
            Err(e) => {
                tracing::error!(error = %e, "password verification task failed");
                false
            }
        }
    }
}
