//! The port contract suites against every adapter.

use hubbub_core::store::memory::{MemoryConnectionStore, MemoryHistoryStore, MemoryUserStore};
use hubbub_tests::{contract, fresh_connections, migrated_database};

#[tokio::test]
async fn connection_store_contract_memory() {
    contract::connection_store(&MemoryConnectionStore::new()).await;
}

#[tokio::test]
async fn connection_store_contract_dynamodb() {
    contract::connection_store(&fresh_connections().await).await;
}

#[tokio::test]
async fn connection_limits_contract_memory() {
    contract::connection_limits(
        std::sync::Arc::new(MemoryConnectionStore::new()),
        contract::Atomic::Yes,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_contract_dynamodb() {
    contract::connection_limits(
        std::sync::Arc::new(fresh_connections().await),
        contract::Atomic::NotOnThisEmulator,
    )
    .await;
}

#[tokio::test]
async fn history_limits_contract_memory() {
    contract::history_limits(std::sync::Arc::new(MemoryHistoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_limits_contract_postgres() {
    let (db, _) = migrated_database().await;
    contract::history_limits(std::sync::Arc::new(db.history())).await;
}

#[tokio::test]
async fn history_store_contract_memory() {
    contract::history_store(&MemoryHistoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_store_contract_postgres() {
    let (db, _) = migrated_database().await;
    contract::history_store(&db.history()).await;
}

#[tokio::test]
async fn user_store_contract_memory() {
    contract::user_store(&MemoryUserStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_store_contract_postgres() {
    let (db, _) = migrated_database().await;
    contract::user_store(&db.users()).await;
}

#[tokio::test]
async fn attempt_store_contract_memory() {
    contract::attempt_store(&MemoryUserStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempt_store_contract_postgres() {
    let (db, _) = migrated_database().await;
    contract::attempt_store(&db.users()).await;
}

#[tokio::test]
async fn migrations_are_recorded_and_safe_to_rerun_concurrently_on_postgres() {
    let (db, url) = migrated_database().await;
    // Five runners at once against an already-migrated database: all succeed, none reapplies.
    let runs = futures::future::join_all((0..5).map(|_| db.migrate())).await;
    for r in runs {
        assert_eq!(r.expect("migrate again"), Vec::<i64>::new());
    }
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT version, name FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("schema_migrations");
    let got: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![
            (1, "0001_init.sql".to_owned()),
            (2, "0002_accounts.sql".to_owned()),
            (3, "0003_room_quotas.sql".to_owned()),
            (4, "0004_usernames.sql".to_owned()),
        ]
    );
    // A tampered record (an edited migration) is refused, not silently accepted.
    client
        .execute(
            "UPDATE schema_migrations SET checksum = 'x' WHERE version = 1",
            &[],
        )
        .await
        .expect("tamper");
    let err = db.migrate().await.expect_err("checksum mismatch");
    assert!(err.to_string().contains("checksum"), "{err}");
}
