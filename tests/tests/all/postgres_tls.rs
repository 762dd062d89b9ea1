//! TLS to PostgreSQL, as a deployment meets it: a server that refuses plaintext (RDS for
//! PostgreSQL 15+ forces TLS), reached through hubbub's own pool with `sslmode` from the URL.
//! The server's certificate comes from a throwaway CA ([`TlsPostgres`]); the client must prove
//! the server is who the URL names (`verify-full`) and refuse it otherwise.

use hubbub_core::config::PostgresConfig;
use hubbub_core::store::postgres::Database;
use hubbub_tests::tls_postgres::{TestCa, TlsPostgres};

/// Connects through hubbub's pool (migrating the database, which needs a working session)
/// and asks the server whether that session is encrypted.
async fn connect(pg: &TlsPostgres, url: &str) -> Result<bool, String> {
    let app = format!("tls-{}", uuid::Uuid::new_v4().simple());
    let url = format!("{url}&application_name={app}");
    let db = Database::connect(&PostgresConfig { url }, 1).map_err(|e| format!("pool: {e}"))?;
    db.migrate().await.map_err(|e| format!("{e:?}"))?;
    let row = pg
        .admin()
        .await
        .query_one(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .map_err(|e| format!("{e:?}"))?;
    drop(db);
    Ok(row.get::<_, Option<bool>>(0).unwrap_or(false))
}

#[tokio::test]
async fn postgres_tls_verify_full_connects_when_the_ca_is_given() {
    let ca = TestCa::new("hubbub test CA");
    let pg = TlsPostgres::start(&ca);
    let root = pg.write_pem("ca.pem", ca.pem());
    let url = pg.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", root.display()),
    );
    assert_eq!(connect(&pg, &url).await, Ok(true), "verify-full over TLS");
    // verify-ca checks the chain only: the same CA over the bare address is accepted.
    let url = pg.url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={}", root.display()),
    );
    assert_eq!(connect(&pg, &url).await, Ok(true), "verify-ca over TLS");
}

#[tokio::test]
async fn postgres_tls_refuses_a_certificate_that_does_not_verify() {
    let ca = TestCa::new("hubbub test CA");
    let pg = TlsPostgres::start(&ca);
    let root = pg.write_pem("ca.pem", ca.pem());
    let stranger = pg.write_pem("other-ca.pem", TestCa::new("another CA").pem());

    // A certificate from a CA we were not told to trust.
    for mode in ["verify-full", "verify-ca"] {
        let url = pg.url(
            "localhost",
            &format!("sslmode={mode}&sslrootcert={}", stranger.display()),
        );
        let err = connect(&pg, &url).await.expect_err("another CA's server");
        assert!(err.contains("UnknownIssuer"), "{mode}: {err}");
    }
    // The right CA, but the certificate names localhost, not 127.0.0.1.
    let url = pg.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", root.display()),
    );
    let err = connect(&pg, &url).await.expect_err("wrong host name");
    assert!(err.contains("NotValidForName"), "{err}");
    // Without sslrootcert, verify-full trusts the bundled RDS CAs only: not this test CA.
    let url = pg.url("localhost", "sslmode=verify-full");
    let err = connect(&pg, &url)
        .await
        .expect_err("RDS CAs do not know the test CA");
    assert!(err.contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn postgres_tls_require_encrypts_and_disable_is_refused_by_the_server() {
    let ca = TestCa::new("hubbub test CA");
    let pg = TlsPostgres::start(&ca);
    // require and prefer encrypt without checking the certificate (libpq's meaning).
    for mode in ["require", "prefer"] {
        let url = pg.url("127.0.0.1", &format!("sslmode={mode}"));
        assert_eq!(connect(&pg, &url).await, Ok(true), "{mode}");
    }
    // The server has no pg_hba entry for plaintext.
    let url = pg.url("127.0.0.1", "sslmode=disable");
    let err = connect(&pg, &url).await.expect_err("plaintext refused");
    assert!(err.contains("no encryption"), "{err}");
}
