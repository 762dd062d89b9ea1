//! Rooms and history over HTTP, on the in-memory stores and on PostgreSQL.

use super::*;

async fn rooms_suite(deps: &TestApi) {
    let alice = register(deps, "alice").await;
    let bob = register(deps, "bob").await;

    // create
    let lobby = call(
        deps,
        post(
            "/rooms",
            &alice.access,
            json!({"id": "lobby", "name": "The lobby"}),
        ),
    )
    .await;
    assert_eq!(lobby.status, 201, "{lobby:?}");
    assert_eq!(lobby.body["id"], "lobby");
    assert_eq!(lobby.body["name"], "The lobby");
    assert_eq!(lobby.body["private"], false);
    assert!(
        time::OffsetDateTime::parse(
            lobby.body["createdAt"].as_str().expect("createdAt"),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
    call(
        deps,
        post(
            "/rooms",
            &bob.access,
            json!({"id": "lobby", "name": "Mine"}),
        ),
    )
    .await
    .assert_error(409, "conflict");
    for (body, needle) in [
        (json!({"id": "Lobby!", "name": "x"}), "`id`"),
        (json!({"name": "x"}), "missing field `id`"),
        (json!({"id": "x"}), "missing field `name`"),
        (json!({"id": "x", "name": "   "}), "`name`"),
        (json!({"id": "x", "name": "n".repeat(101)}), "`name`"),
        (
            json!({"id": "x", "name": "x", "private": "yes"}),
            "`private`",
        ),
    ] {
        let a = call(deps, post("/rooms", &alice.access, body.clone())).await;
        a.assert_error(400, "bad_request");
        assert!(a.message().contains(needle), "{body}: {a:?}");
    }
    let secret = call(
        deps,
        post(
            "/rooms",
            &alice.access,
            json!({"id": "secret", "name": "Secret", "private": true}),
        ),
    )
    .await;
    assert_eq!(
        (secret.status, &secret.body["private"]),
        (201, &json!(true))
    );

    // list: private rooms only for members
    let ids = |a: &Answer| -> Vec<String> {
        a.body["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let mine = call(deps, get("/rooms", &alice.access)).await;
    assert_eq!(ids(&mine), vec!["lobby", "secret"]);
    for (field, value) in lobby.body.as_object().expect("room") {
        assert_eq!(
            &mine.body["rooms"][0][field], value,
            "list and create agree: {field}"
        );
    }
    assert_eq!(
        (
            &mine.body["rooms"][0]["unread"],
            &mine.body["rooms"][0]["kind"]
        ),
        (&json!(0), &json!("room"))
    );
    assert_eq!(
        ids(&call(deps, get("/rooms", &bob.access)).await),
        vec!["lobby"]
    );

    // a non-member may neither read nor add members
    call(deps, get("/rooms/secret/messages", &bob.access))
        .await
        .assert_error(403, "forbidden");
    call(
        deps,
        post(
            "/rooms/secret/members",
            &bob.access,
            json!({"userId": bob.user_id}),
        ),
    )
    .await
    .assert_error(403, "forbidden");
    call(
        deps,
        post(
            "/rooms/nowhere/members",
            &alice.access,
            json!({"userId": bob.user_id}),
        ),
    )
    .await
    .assert_error(404, "not_found");
    call(
        deps,
        post(
            "/rooms/secret/members",
            &alice.access,
            json!({"user": bob.user_id}),
        ),
    )
    .await
    .assert_error(400, "bad_request");
    // a member adds bob
    let added = call(
        deps,
        post(
            "/rooms/secret/members",
            &alice.access,
            json!({"userId": bob.user_id}),
        ),
    )
    .await;
    assert_eq!(
        (added.status, &added.body),
        (204, &Value::Null),
        "{added:?}"
    );
    assert_eq!(
        ids(&call(deps, get("/rooms", &bob.access)).await),
        vec!["lobby", "secret"]
    );

    // history by keyset
    for i in 1..=7 {
        deps.messages
            .commit_message(&NewMessage {
                room: room("secret"),
                sender: user("alice"),
                body: MessageBody::parse(format!("m{i}")).expect("body"),
                client_msg_id: ClientMsgId::parse(format!("c{i}")).expect("cmid"),
                reply_to: None,
            })
            .await
            .expect("commit");
    }
    let page = |query: &str| {
        call(
            deps,
            get("/rooms/secret/messages", &bob.access).query(query),
        )
    };
    let seqs = |a: &Answer| -> Vec<i64> {
        a.body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["seq"].as_i64().expect("seq"))
            .collect()
    };
    let latest = page("limit=3").await;
    assert_eq!(
        (seqs(&latest), &latest.body["hasMore"]),
        (vec![5, 6, 7], &json!(true))
    );
    assert_eq!(latest.body["messages"][2]["body"], "m7");
    assert_eq!(latest.body["messages"][2]["clientMsgId"], "c7");
    let back = page("before=5&limit=3").await;
    assert_eq!(
        (seqs(&back), &back.body["hasMore"]),
        (vec![2, 3, 4], &json!(true))
    );
    let after = page("after=5").await;
    assert_eq!(
        (seqs(&after), &after.body["hasMore"]),
        (vec![6, 7], &json!(false))
    );
    assert_eq!(seqs(&page("").await), (1..=7).collect::<Vec<_>>());
    for (query, needle) in [
        ("limit=0", "`limit`"),
        ("limit=101", "`limit`"),
        ("before=abc", "`before`"),
        ("after=1.5", "`after`"),
        ("before=3&after=1", "at most one"),
    ] {
        let a = page(query).await;
        a.assert_error(400, "bad_request");
        assert!(a.message().contains(needle), "{query}: {a:?}");
    }
    call(deps, get("/rooms/nowhere/messages", &bob.access))
        .await
        .assert_error(404, "not_found");
    call(deps, get("/rooms/Not%20A%20Room/messages", &bob.access))
        .await
        .assert_error(400, "bad_request");

    // every authenticated route wants a bearer token
    for ev in [
        get("/rooms", "x"),
        post("/rooms", "x", json!({"id": "y", "name": "y"})),
        post("/rooms/lobby/members", "x", json!({"userId": "u"})),
        get("/rooms/lobby/messages", "x"),
    ] {
        let a = call(deps, ev.clone()).await;
        a.assert_error(401, "unauthorized");
        assert_eq!(a.header("www-authenticate"), Some("Bearer"));
        call(deps, ev.header("authorization", None))
            .await
            .assert_error(401, "unauthorized");
    }
    call(
        deps,
        get("/rooms", "x").header("authorization", Some(&format!("Basic {}", alice.access))),
    )
    .await
    .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn rooms_and_history_on_memory_stores() {
    rooms_suite(&memory_deps()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_history_on_postgres() {
    rooms_suite(&postgres_deps_with(accounts_config()).await).await;
}
