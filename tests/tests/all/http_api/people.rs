//! Members and roles, direct rooms, read state and the paged room list over HTTP, on the
//! in-memory stores and on PostgreSQL. (Their live effects on WebSocket connections are tested
//! through hubbub-local, `local/people.rs`.)

use super::*;

fn put(path: &str, token: &str, body: Value) -> Http {
    post(path, token, body).route("PUT", path)
}

fn delete(path: &str, token: &str) -> Http {
    get(path, token).route("DELETE", path)
}

fn dm(username: &str, token: &str) -> Http {
    post(&format!("/dm/{username}"), token, json!({}))
}

fn names(a: &Answer, list: &str, field: &str) -> Vec<String> {
    a.body[list]
        .as_array()
        .unwrap_or_else(|| panic!("{a:?}"))
        .iter()
        .map(|v| v[field].as_str().expect("string").to_owned())
        .collect()
}

async fn commit(deps: &TestApi, r: &str, n: usize) {
    for i in 0..n {
        deps.messages
            .commit_message(&NewMessage {
                room: room(r),
                sender: user("someone"),
                body: MessageBody::parse("hi").expect("body"),
                client_msg_id: ClientMsgId::parse(format!("c{i}")).expect("cmid"),
                reply_to: None,
            })
            .await
            .expect("commit");
    }
}

async fn people_suite(deps: &TestApi) {
    let ann = register(deps, "ann").await;
    let bob = register(deps, "bob").await;
    let cat = register(deps, "cat").await;
    let made = call(
        deps,
        post(
            "/rooms",
            &ann.access,
            json!({"id": "club", "name": "Club", "private": true}),
        ),
    )
    .await;
    assert_eq!(
        (made.status, &made.body["readReceipts"], &made.body["kind"]),
        (201, &json!(true), &json!("room"))
    );

    // Adding: by username or id, owners only.
    let added = call(
        deps,
        post(
            "/rooms/club/members",
            &ann.access,
            json!({"username": "BOB"}),
        ),
    )
    .await;
    assert_eq!(added.status, 204, "{added:?}");
    call(
        deps,
        post(
            "/rooms/club/members",
            &bob.access,
            json!({"userId": cat.user_id}),
        ),
    )
    .await
    .assert_error(403, "forbidden");
    for body in [
        json!({}),
        json!({"userId": "x", "username": "y"}),
        json!({"userId": ""}),
    ] {
        call(deps, post("/rooms/club/members", &ann.access, body))
            .await
            .assert_error(400, "bad_request");
    }
    call(
        deps,
        post(
            "/rooms/club/members",
            &ann.access,
            json!({"username": "nobody"}),
        ),
    )
    .await
    .assert_error(404, "not_found");
    call(
        deps,
        post(
            "/rooms/club/members",
            &ann.access,
            json!({"userId": cat.user_id}),
        ),
    )
    .await;
    let members = call(deps, get("/rooms/club/members", &bob.access)).await;
    assert_eq!(members.status, 200, "{members:?}");
    let mut ids = vec![
        ann.user_id.clone(),
        bob.user_id.clone(),
        cat.user_id.clone(),
    ];
    ids.sort();
    assert_eq!(names(&members, "members", "id"), ids);
    let roles: Vec<(&str, &str)> = members.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("-"),
                m["role"].as_str().expect("role"),
            )
        })
        .collect();
    assert!(
        roles.contains(&("ann", "owner")) && roles.contains(&("bob", "member")),
        "{roles:?}"
    );
    let page = call(
        deps,
        get("/rooms/club/members", &bob.access).query("limit=2"),
    )
    .await;
    assert_eq!(names(&page, "members", "id").len(), 2);
    let next = page.body["next"].as_str().expect("next").to_owned();
    let rest = call(
        deps,
        get("/rooms/club/members", &bob.access).query(&format!("after={next}&limit=2")),
    )
    .await;
    assert_eq!(names(&rest, "members", "id"), vec![ids[2].clone()]);
    assert!(rest.body.get("next").is_none(), "{rest:?}");

    // Read state: monotonic, clamped, per user; receipts in the member list.
    commit(deps, "club", 4).await;
    let read = call(
        deps,
        put("/rooms/club/read", &bob.access, json!({"seq": 3})),
    )
    .await;
    assert_eq!(
        (read.status, &read.body),
        (200, &json!({"room": "club", "lastRead": 3, "unread": 1}))
    );
    let back = call(
        deps,
        put("/rooms/club/read", &bob.access, json!({"seq": 1})),
    )
    .await;
    assert_eq!(back.body["lastRead"], 3, "never backwards");
    let past = call(
        deps,
        put("/rooms/club/read", &bob.access, json!({"seq": 99})),
    )
    .await;
    assert_eq!(
        (&past.body["lastRead"], &past.body["unread"]),
        (&json!(4), &json!(0))
    );
    for body in [
        json!({"seq": -1}),
        json!({}),
        json!({"seq": "3"}),
        json!({"seq": 1, "x": 1}),
    ] {
        call(deps, put("/rooms/club/read", &bob.access, body))
            .await
            .assert_error(400, "bad_request");
    }
    let outsider = register(deps, "dan").await;
    call(
        deps,
        put("/rooms/club/read", &outsider.access, json!({"seq": 1})),
    )
    .await
    .assert_error(403, "forbidden");
    call(
        deps,
        put("/rooms/nowhere/read", &bob.access, json!({"seq": 1})),
    )
    .await
    .assert_error(404, "not_found");
    // Another user's read position: only to members, only where receipts are on.
    call(deps, get("/rooms/club/members", &outsider.access))
        .await
        .assert_error(403, "forbidden");
    let receipts = call(deps, get("/rooms/club/members", &ann.access)).await;
    let bobs = receipts.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["id"] == bob.user_id.as_str())
        .expect("bob listed")
        .clone();
    assert_eq!(bobs["lastRead"], 4, "{receipts:?}");
    call(
        deps,
        post(
            "/rooms",
            &ann.access,
            json!({"id": "quiet", "name": "Quiet", "private": true, "readReceipts": false}),
        ),
    )
    .await;
    let quiet = call(deps, get("/rooms/quiet/members", &ann.access)).await;
    assert!(
        quiet.body["members"][0].get("lastRead").is_none(),
        "{quiet:?}"
    );
    call(
        deps,
        post(
            "/rooms",
            &ann.access,
            json!({"id": "open", "name": "Open", "readReceipts": true}),
        ),
    )
    .await
    .assert_error(400, "bad_request");
    call(
        deps,
        post("/rooms", &ann.access, json!({"id": "open", "name": "Open"})),
    )
    .await;
    call(deps, get("/rooms/open/members", &ann.access))
        .await
        .assert_error(403, "forbidden");
    call(
        deps,
        post(
            "/rooms/open/members",
            &ann.access,
            json!({"userId": bob.user_id}),
        ),
    )
    .await
    .assert_error(403, "forbidden");

    // The room list: unread counts, roles, pages.
    let listed = call(deps, get("/rooms", &bob.access)).await;
    let club = listed.body["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["id"] == "club")
        .expect("club listed")
        .clone();
    assert_eq!(
        (
            &club["role"],
            &club["lastSeq"],
            &club["lastRead"],
            &club["unread"]
        ),
        (&json!("member"), &json!(4), &json!(4), &json!(0))
    );
    let anns = call(deps, get("/rooms", &ann.access)).await;
    let ann_ids = names(&anns, "rooms", "id");
    assert_eq!(ann_ids, vec!["club", "open", "quiet"]);
    let first = call(deps, get("/rooms", &ann.access).query("limit=2")).await;
    assert_eq!(names(&first, "rooms", "id"), vec!["club", "open"]);
    assert_eq!(first.body["next"], "open");
    let second = call(deps, get("/rooms", &ann.access).query("limit=2&after=open")).await;
    assert_eq!(names(&second, "rooms", "id"), vec!["quiet"]);
    assert!(second.body.get("next").is_none());
    for q in ["limit=0", "limit=1001", "limit=x", "after=Not!"] {
        call(deps, get("/rooms", &ann.access).query(q))
            .await
            .assert_error(400, "bad_request");
    }

    // Removing: owners remove anyone, members only themselves.
    call(
        deps,
        delete(&format!("/rooms/club/members/{}", ann.user_id), &bob.access),
    )
    .await
    .assert_error(403, "forbidden");
    call(
        deps,
        delete(
            &format!("/rooms/club/members/{}", cat.user_id),
            &outsider.access,
        ),
    )
    .await
    .assert_error(403, "forbidden");
    let removed = call(
        deps,
        delete(&format!("/rooms/club/members/{}", cat.user_id), &ann.access),
    )
    .await;
    assert_eq!(removed.status, 204, "{removed:?}");
    for gone in [
        get("/rooms/club/messages", &cat.access),
        get("/rooms/club/members", &cat.access),
    ] {
        call(deps, gone).await.assert_error(403, "forbidden");
    }
    assert!(
        !names(&call(deps, get("/rooms", &cat.access)).await, "rooms", "id")
            .contains(&"club".to_owned())
    );
    call(
        deps,
        delete(&format!("/rooms/club/members/{}", cat.user_id), &ann.access),
    )
    .await
    .assert_error(404, "not_found");
    let left = call(deps, delete("/rooms/club/members/me", &bob.access)).await;
    assert_eq!(left.status, 204, "{left:?}");
    call(deps, get("/rooms/club/messages", &bob.access))
        .await
        .assert_error(403, "forbidden");
    call(deps, delete("/rooms/nowhere/members/me", &bob.access))
        .await
        .assert_error(404, "not_found");

    // Direct rooms: one per pair, from either side.
    call(deps, dm("ann", &ann.access))
        .await
        .assert_error(400, "bad_request");
    call(deps, dm("nobody", &ann.access))
        .await
        .assert_error(404, "not_found");
    let opened = call(deps, dm("bob", &ann.access)).await;
    assert_eq!(opened.status, 201, "{opened:?}");
    assert_eq!(
        (
            &opened.body["kind"],
            &opened.body["private"],
            &opened.body["with"]["name"]
        ),
        (&json!("direct"), &json!(true), &json!("bob"))
    );
    let id = opened.body["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("dm-"), "{id}");
    let theirs = call(deps, dm("ANN", &bob.access)).await;
    assert_eq!((theirs.status, &theirs.body["id"]), (200, &json!(id)));
    assert_eq!(theirs.body["with"]["id"], ann.user_id.as_str());
    let bobs_rooms = call(deps, get("/rooms", &bob.access)).await;
    let listed = bobs_rooms.body["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["id"] == id.as_str())
        .expect("the direct room is listed")
        .clone();
    assert_eq!(
        (&listed["kind"], &listed["with"]["name"]),
        (&json!("direct"), &json!("ann"))
    );
    call(deps, get(&format!("/rooms/{id}/messages"), &cat.access))
        .await
        .assert_error(403, "forbidden");
    call(
        deps,
        delete(&format!("/rooms/{id}/members/me"), &bob.access),
    )
    .await
    .assert_error(403, "forbidden");
    call(
        deps,
        post(
            &format!("/rooms/{id}/members"),
            &ann.access,
            json!({"userId": cat.user_id}),
        ),
    )
    .await
    .assert_error(403, "forbidden");
    // The direct-room id space is nobody else's.
    call(
        deps,
        post("/rooms", &cat.access, json!({"id": "dm-mine", "name": "x"})),
    )
    .await
    .assert_error(400, "bad_request");

    // Every new route wants a bearer token.
    for ev in [
        get("/rooms/club/members", "x"),
        delete("/rooms/club/members/me", "x"),
        put("/rooms/club/read", "x", json!({"seq": 1})),
        dm("bob", "x"),
    ] {
        call(deps, ev).await.assert_error(401, "unauthorized");
    }
}

#[tokio::test]
async fn http_people_routes_memory() {
    people_suite(&memory_deps()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_people_routes_postgres() {
    people_suite(&postgres_deps_with(accounts_config()).await).await;
}
