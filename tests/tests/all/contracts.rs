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
async fn message_changes_contract_memory() {
    contract::message_changes(&MemoryHistoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_changes_contract_postgres() {
    let (db, _) = migrated_database().await;
    contract::message_changes(&db.history()).await;
}

#[tokio::test]
async fn people_store_contract_memory() {
    contract::people_store(&MemoryHistoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_store_contract_postgres() {
    let (db, _) = migrated_database().await;
    contract::people_store(&db.history()).await;
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
            (5, "0005_message_events.sql".to_owned()),
            (6, "0006_read_state_roles.sql".to_owned()),
        ]
    );
    // A version below one already applied that is not recorded (a migration developed beside
    // a later-numbered one, landing after it) is still applied.
    client
        .batch_execute("DROP TABLE room_quotas; DELETE FROM schema_migrations WHERE version = 3")
        .await
        .expect("forget 0003");
    assert_eq!(db.migrate().await.expect("migrate"), vec![3]);
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

/// Migration 0004 on a database that already holds accounts differing only in case: the oldest
/// keeps its name, the later ones are renamed apart (even when registered within the same
/// minute, so their UUIDv7 ids share a prefix), and every name then logs in to its account.
#[tokio::test]
async fn usernames_migration_renames_case_duplicates_apart_on_postgres() {
    use hubbub_core::store::UserStore;
    use hubbub_core::store::migrate::MIGRATIONS;

    let (db, url) = migrated_database().await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    // The schema as it was before version 4: uniqueness of the name as given only.
    client
        .batch_execute("DROP INDEX users_username_lower_key")
        .await
        .expect("drop the case-insensitive index");
    let long = "L".repeat(32);
    let accounts = [
        ("alice", "2026-01-01T00:00:00Z"),
        ("Alice", "2026-01-02T00:00:00Z"),
        ("ALICE", "2026-01-02T00:00:01Z"),
        (long.as_str(), "2026-01-01T00:00:00Z"),
        (&long.to_lowercase(), "2026-01-03T00:00:00Z"),
        ("bob", "2026-01-01T00:00:00Z"),
    ];
    let mut ids = Vec::new();
    for (name, created) in accounts {
        let id = uuid::Uuid::now_v7().to_string();
        client
            .execute(
                "INSERT INTO users (id, username, password_hash, created_at)
                 VALUES ($1, $2, 'stand-in', $3::text::timestamptz)",
                &[&id, &name, &created],
            )
            .await
            .expect("insert");
        ids.push(id);
    }
    let v4 = MIGRATIONS
        .iter()
        .find(|m| m.version == 4)
        .expect("migration 4");
    client
        .batch_execute(v4.sql)
        .await
        .expect("migration 4 applies over case duplicates");

    let users = db.users();
    let name_of = |i: usize| {
        let users = &users;
        let id = ids[i].clone();
        async move {
            users
                .user_by_id(&id)
                .await
                .expect("by id")
                .expect("still there")
                .username
        }
    };
    assert_eq!(name_of(0).await, "alice", "the oldest keeps its name");
    assert_eq!(name_of(3).await, long, "the oldest keeps its name");
    assert_eq!(name_of(5).await, "bob", "no duplicate, no rename");
    let renamed = [
        (1, format!("Alice-{}", &ids[1][ids[1].len() - 8..])),
        (2, format!("ALICE-{}", &ids[2][ids[2].len() - 8..])),
        (
            4,
            format!(
                "{}-{}",
                &long.to_lowercase()[..23],
                &ids[4][ids[4].len() - 8..]
            ),
        ),
    ];
    for (i, expected) in renamed {
        let name = name_of(i).await;
        assert_eq!(name, expected);
        assert!(
            name.len() <= 32,
            "{name}: usernames are at most 32 characters"
        );
        let found = users.user_by_name(&name).await.expect("by name");
        assert_eq!(found.map(|u| u.id), Some(ids[i].clone()), "{name} logs in");
    }
}

/// A connections table made before the user index existed (hubbub-local's, a test server's)
/// gets the index from `ensure_table`, and a logout then finds the user's connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_table_without_the_user_index_gets_it_on_dynamodb() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    use hubbub_core::protocol::UserRef;
    use hubbub_core::store::dynamodb::DynamoConnectionStore;
    use hubbub_core::store::{Connection, ConnectionStore, SessionStore};

    let client = hubbub_tests::dynamodb_client();
    let table = format!("hubbub-old-{}", uuid::Uuid::new_v4().simple());
    let mut create = client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, kind) in [("pk", KeyType::Hash), ("sk", KeyType::Range)] {
        create = create
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(kind)
                    .build()
                    .expect("key"),
            );
    }
    create.send().await.expect("the table as it was");

    let store = DynamoConnectionStore::new(client.clone(), table.clone());
    store.ensure_table().await.expect("ensure");
    store
        .ensure_table()
        .await
        .expect("ensure again: nothing to do");
    let described = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("describe");
    let indexes: Vec<&str> = described
        .table()
        .map(|t| t.global_secondary_indexes())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    assert_eq!(indexes, ["byUser"]);

    let user = UserRef {
        id: "u-old".into(),
        name: "old".into(),
    };
    store
        .put_connection(&Connection::new(
            "old-tab",
            user,
            time::OffsetDateTime::now_utc(),
        ))
        .await
        .expect("put");
    assert_eq!(
        store.user_connections("u-old").await.expect("by user"),
        ["old-tab"]
    );
}
