//! Settings every test shares: one JWT secret and config, and cheap password hashing.

use std::time::Duration;

use http_api::Argon2Config;
use hubbub_core::config::JwtConfig;

/// The HS256 secret of every test's own issuer (at least 32 bytes, as the config requires).
pub const SECRET: &str = "hubbub-tests-secret-at-least-32-bytes-long";

/// The password every test account registers with.
pub const PASSWORD: &str = "correct horse battery";

/// hubbub's own issuer, for `audience`, with the deployed 30 s leeway.
pub fn jwt_config(audience: &str) -> JwtConfig {
    JwtConfig {
        secret: SECRET.as_bytes().to_vec(),
        issuer: "hubbub".into(),
        audience: audience.into(),
        leeway: Duration::from_secs(30),
    }
}

/// Cheap argon2 costs: the tests hash many passwords in unoptimised builds on a shared CPU.
pub fn cheap_argon2() -> Argon2Config {
    Argon2Config {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    }
}
