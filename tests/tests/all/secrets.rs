//! Secrets at run time, against a Secrets Manager-compatible server (moto): the functions'
//! environment carries only ARNs; the JWT key and the database URL are read at init, and a
//! rotation is picked up without a redeploy.

use std::time::Duration;

use hubbub_core::auth::{JwtIssuer, JwtVerifier};
use hubbub_core::config::{AuthConfig, DatabaseConfig, FromLookup, JwtConfig, SecretArn};
use hubbub_core::runtime;
use hubbub_core::secrets::{CachedSecret, SecretVersions, SecretsManagerField};
use hubbub_core::store::postgres::Database;
use hubbub_tests::tls_postgres::{TestCa, TlsPostgres};
use hubbub_tests::{fresh_secret, rotate_secret, secrets_sdk_config};
use serde_json::json;

fn auth_config(arn: &str) -> AuthConfig {
    let arn = arn.to_owned();
    AuthConfig::from_lookup(&move |var: &str| (var == "HUBBUB_JWT_SECRET_ARN").then(|| arn.clone()))
        .expect("config with the secret's ARN")
}

fn fixed(settings: &JwtConfig, key: &str) -> JwtConfig {
    JwtConfig {
        secret: key.as_bytes().to_vec(),
        ..settings.clone()
    }
}

#[tokio::test]
async fn secretsmanager_jwt_key_is_read_at_init_and_a_rotation_is_picked_up() {
    let sdk = secrets_sdk_config();
    let (k1, k2) = ("first-key-".repeat(4), "second-key".repeat(4));
    let arn = fresh_secret(&json!({ "key": k1 })).await;
    let cfg = auth_config(&arn);
    let settings = cfg.jwt.settings().clone();

    let keyring = runtime::jwt_keyring(&sdk, &cfg.jwt)
        .await
        .expect("read at init");
    let verifier = runtime::token_verifier(keyring.clone(), &cfg).expect("verifier");
    let issuer = JwtIssuer::with_keyring(keyring, &settings);
    let before = issuer
        .issue("u-1", "alice", time::Duration::minutes(15))
        .expect("issue");
    assert_eq!(
        verifier.verify(&before).await.expect("valid").user_id,
        "u-1"
    );
    let with_k1 = JwtVerifier::hs256(&fixed(&settings, &k1)).expect("k1");
    let with_k2 = JwtVerifier::hs256(&fixed(&settings, &k2)).expect("k2");
    assert!(
        with_k1.verify(&before).is_ok(),
        "signed with the secret's key"
    );

    // Rotation: k2 becomes AWSCURRENT, k1 AWSPREVIOUS. A token another function already
    // signed with k2 is accepted at once: the key it names is unknown, so the secret is read
    // again (no redeploy, no cold start).
    rotate_secret(&arn, &json!({ "key": k2 })).await;
    let elsewhere = JwtIssuer::hs256(&fixed(&settings, &k2)).expect("k2 issuer");
    let after = elsewhere
        .issue("u-2", "bob", time::Duration::minutes(15))
        .expect("issue");
    assert_eq!(
        verifier.verify(&after).await.map(|i| i.user_id),
        Ok("u-2".to_owned()),
        "a token of the rotated key"
    );
    // Tokens signed before the rotation stay valid until they expire (AWSPREVIOUS).
    assert!(
        verifier.verify(&before).await.is_ok(),
        "the previous key still verifies"
    );
    // And this process now signs with the new key.
    let fresh = issuer
        .issue("u-1", "alice", time::Duration::minutes(15))
        .expect("issue");
    assert!(
        with_k2.verify(&fresh).is_ok(),
        "signed with the rotated key"
    );
    assert!(with_k1.verify(&fresh).is_err());
    // A forged token is still refused.
    let forger = JwtIssuer::hs256(&fixed(&settings, &"forged-key".repeat(4))).expect("forger");
    let forged = forger
        .issue("u-1", "alice", time::Duration::minutes(15))
        .expect("issue");
    assert!(verifier.verify(&forged).await.is_err());
}

#[tokio::test]
async fn secretsmanager_a_stale_secret_is_read_again_without_a_refusal() {
    let sdk = secrets_sdk_config();
    let arn = fresh_secret(&json!({ "key": "one" })).await;
    let source = SecretsManagerField::new(
        hubbub_core::aws_sdk_secretsmanager::Client::new(&sdk),
        arn.clone(),
        "key",
    );
    let cached = CachedSecret::load(
        Box::new(source),
        false,
        "test",
        Box::new(|v: &SecretVersions| Ok(v.current.clone())),
    )
    .await
    .expect("load")
    .with_ttl(Duration::ZERO);
    assert_eq!(*cached.fresh().await, "one");
    rotate_secret(&arn, &json!({ "key": "two" })).await;
    assert_eq!(*cached.fresh().await, "two", "past its time-to-live");
}

#[tokio::test]
async fn secretsmanager_an_unreadable_secret_fails_init() {
    let sdk = secrets_sdk_config();
    let missing = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hubbub/none-AbCdEf";
    let err = runtime::db_credentials(
        &sdk,
        &DatabaseConfig::Secret {
            arn: SecretArn(missing.into()),
            host: None,
        },
    )
    .await
    .err()
    .expect("no such secret");
    assert!(err.to_string().contains("ResourceNotFound"), "{err}");
    let arn = fresh_secret(&json!({ "key": "too short" })).await;
    let err = runtime::jwt_keyring(&sdk, &auth_config(&arn).jwt)
        .await
        .err()
        .expect("a short key");
    assert!(err.to_string().contains("32 bytes"), "{err}");
}

#[tokio::test]
async fn secretsmanager_postgres_password_rotation_is_picked_up_by_the_next_connection() {
    let sdk = secrets_sdk_config();
    let ca = TestCa::new("hubbub test CA");
    let pg = TlsPostgres::start(&ca);
    let root = pg.write_pem("ca.pem", ca.pem());
    let admin = pg.admin().await;
    admin
        .batch_execute("CREATE ROLE hubbub LOGIN PASSWORD 'first-password'")
        .await
        .expect("role");
    let url = |password: &str| {
        format!(
            "postgres://hubbub:{password}@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
            pg.port,
            root.display()
        )
    };
    let arn = fresh_secret(&json!({ "url": url("first-password") })).await;
    let cfg = DatabaseConfig::Secret {
        arn: SecretArn(arn.clone()),
        host: None,
    };
    let credentials = runtime::db_credentials(&sdk, &cfg)
        .await
        .expect("read at init");
    // Migrating needs a working session: it proves the login.
    let works =
        |db: Database| async move { db.migrate().await.map(drop).map_err(|e| format!("{e:?}")) };
    admin
        .batch_execute("GRANT ALL ON SCHEMA public TO hubbub")
        .await
        .expect("grant");
    let first = Database::with_credentials(credentials.clone(), 1).expect("pool");
    assert_eq!(works(first.clone()).await, Ok(()));

    // Rotation as Secrets Manager does it: the database gets the new password, then the
    // secret does. The next connection this process opens (a failover, a recycled
    // connection) is refused with the old password, reads the secret again and succeeds.
    admin
        .batch_execute("ALTER ROLE hubbub PASSWORD 'second-password'")
        .await
        .expect("rotate the password");
    rotate_secret(&arn, &json!({ "url": url("second-password") })).await;
    let next = Database::with_credentials(credentials, 1).expect("pool");
    assert_eq!(works(next).await, Ok(()), "picked up");
    // The connection opened before the rotation is untouched.
    assert_eq!(works(first).await, Ok(()));
}
