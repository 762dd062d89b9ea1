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
            (7, "0007_one_owner_record.sql".to_owned()),
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

/// Migrations 0006 (roles) and 0007 (one owner record) on a database populated under 0005:
/// every private room gets exactly one owner record, its earliest member, whatever
/// `created_by` said (NULL before 0005, the creator after it, a creator who had left); public
/// rooms keep `created_by`; rooms, members and messages survive and are served as before; and
/// the database refuses a private room's `created_by` from then on.
#[tokio::test]
async fn owner_roles_migration_keeps_data_and_gives_private_rooms_one_owner_on_postgres() {
    use hubbub_core::config::PostgresConfig;
    use hubbub_core::protocol::{ClientMsgId, HistoryQuery, RoomId, UserRef};
    use hubbub_core::store::migrate::MIGRATIONS;
    use hubbub_core::store::postgres::Database;
    use hubbub_core::store::{
        Change, Commit, HistoryStore, NewChange, PeopleStore, Role, RoomStore,
    };

    let url = hubbub_tests::fresh_database().await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let apply = |version: i64| {
        let sql = MIGRATIONS
            .iter()
            .find(|m| m.version == version)
            .unwrap_or_else(|| panic!("migration {version}"))
            .sql;
        let client = &client;
        async move {
            client
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("migration {version}: {e}"))
        }
    };
    for version in 1..=5 {
        apply(version).await;
    }
    // The data of a deployment running 0005: a private room made before 0005 (no
    // `created_by`), one made after it, one whose creator has left, and public rooms.
    client
        .batch_execute(
            "INSERT INTO rooms (id, name, private, created_by, last_seq) VALUES
               ('old-club', 'Old club', true, NULL, 3),
               ('new-club', 'New club', true, 'u-dan', 0),
               ('left-club', 'Left club', true, 'u-fay', 0),
               ('lobby', 'Lobby', false, 'u-hal', 2),
               ('legacy', 'Legacy', false, NULL, 0);
             INSERT INTO room_members (room_id, user_id, added_at) VALUES
               ('old-club', 'u-ann', '2026-01-01T00:00:00Z'),
               ('old-club', 'u-bob', '2026-01-02T00:00:00Z'),
               ('old-club', 'u-cat', '2026-01-03T00:00:00Z'),
               ('new-club', 'u-dan', '2026-02-01T00:00:00Z'),
               ('new-club', 'u-eve', '2026-02-01T00:00:01Z'),
               ('left-club', 'u-gil', '2026-03-01T00:00:00Z');
             INSERT INTO messages (room_id, seq, id, sender_id, sender_name, body, client_msg_id,
                                   kind, target_seq, reply_to, edit_seq, edited_at) VALUES
               ('old-club', 1, gen_random_uuid(), 'u-ann', 'ann', 'one, fixed', 'a1',
                'message', NULL, NULL, 2, now()),
               ('old-club', 2, gen_random_uuid(), 'u-ann', 'ann', 'one, fixed', 'a2',
                'edit', 1, NULL, NULL, NULL),
               ('old-club', 3, gen_random_uuid(), 'u-bob', 'bob', 're: one', 'b1',
                'message', NULL, 1, NULL, NULL),
               ('lobby', 1, gen_random_uuid(), 'u-ivy', 'ivy', 'hello', 'i1',
                'message', NULL, NULL, NULL, NULL),
               ('lobby', 2, gen_random_uuid(), 'u-jon', 'jon', 'hi ivy', 'j1',
                'message', NULL, NULL, NULL, NULL);
             INSERT INTO reactions (room_id, seq, user_id, emoji) VALUES
               ('lobby', 1, 'u-jon', '👍');",
        )
        .await
        .expect("populate under 0005");
    apply(6).await;
    apply(7).await;

    let roles: Vec<(String, String, String)> = client
        .query(
            "SELECT room_id, user_id, role FROM room_members ORDER BY room_id, user_id",
            &[],
        )
        .await
        .expect("roles")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected = [
        ("left-club", "u-gil", "owner"),
        ("new-club", "u-dan", "owner"),
        ("new-club", "u-eve", "member"),
        ("old-club", "u-ann", "owner"),
        ("old-club", "u-bob", "member"),
        ("old-club", "u-cat", "member"),
    ];
    assert_eq!(
        roles,
        expected
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect::<Vec<_>>(),
        "each private room's earliest member owns it"
    );
    let created_by: Vec<(String, Option<String>)> = client
        .query("SELECT id, created_by FROM rooms ORDER BY id", &[])
        .await
        .expect("rooms")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        created_by,
        vec![
            ("left-club".to_owned(), None),
            ("legacy".to_owned(), None),
            ("lobby".to_owned(), Some("u-hal".to_owned())),
            ("new-club".to_owned(), None),
            ("old-club".to_owned(), None),
        ],
        "`created_by` names public rooms' owners only"
    );
    let refused = client
        .execute(
            "UPDATE rooms SET created_by = 'u-bob' WHERE id = 'old-club'",
            &[],
        )
        .await
        .expect_err("a second owner record is refused");
    assert_eq!(
        refused.code(),
        Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION)
    );

    // The stores serve the migrated data as they serve their own.
    let db = Database::connect(&PostgresConfig { url: url.clone() }, 2).expect("pool");
    let store = db.history();
    let r = |id: &str| RoomId::parse(id).expect("room id");
    let page = store
        .history(
            &r("old-club"),
            &HistoryQuery::new(None, Some(0), Some(100)).expect("query"),
            "u-ann",
        )
        .await
        .expect("history");
    let seen: Vec<(i64, Option<&str>, Option<i64>)> = page
        .messages
        .iter()
        .map(|m| (m.seq, m.body.as_ref().map(|b| b.as_str()), m.edit_seq))
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, Some("one, fixed"), Some(2)),
            (2, Some("one, fixed"), None),
            (3, Some("re: one"), None),
        ]
    );
    assert_eq!(
        page.messages[2].reply_to.as_ref().map(|q| q.seq),
        Some(1),
        "the reply keeps its target"
    );
    let listed = store
        .room_list("u-ann", None, 100)
        .await
        .expect("room list");
    let club = listed
        .iter()
        .find(|e| e.room.id.as_str() == "old-club")
        .expect("ann's room is listed");
    assert_eq!(
        (club.role, club.last_seq, club.last_read),
        (Some(Role::Owner), 3, 0)
    );
    assert!(club.room.read_receipts, "private rooms get receipts");
    let members = store
        .member_list(&r("new-club"), None, 10)
        .await
        .expect("members");
    assert_eq!(
        members
            .iter()
            .map(|m| (m.user_id.as_str(), m.role))
            .collect::<Vec<_>>(),
        vec![("u-dan", Role::Owner), ("u-eve", Role::Member)]
    );
    // Ownership acts from the one record: the owner member deletes another's message, a plain
    // member may not, and a public room's creator moderates it.
    let delete = |room: &str, who: &str, target: i64, cmid: &str| NewChange {
        room: r(room),
        actor: UserRef {
            id: format!("u-{who}"),
            name: who.to_owned(),
        },
        target,
        change: Change::Delete,
        client_msg_id: ClientMsgId::parse(cmid).expect("cmid"),
    };
    assert!(
        store
            .commit_change(&delete("old-club", "bob", 1, "b-del"))
            .await
            .is_err(),
        "a member may not delete another's message"
    );
    assert!(matches!(
        store
            .commit_change(&delete("old-club", "ann", 3, "a-del"))
            .await,
        Ok(Commit::New(_))
    ));
    assert!(matches!(
        store
            .commit_change(&delete("lobby", "hal", 2, "h-del"))
            .await,
        Ok(Commit::New(_))
    ));
}
