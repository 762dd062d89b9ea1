//! Members, direct rooms and read state through hubbub-local with real WebSocket clients: a
//! removed member's connections leave the room at once and get nothing more, read marks reach
//! the reader's other tabs and (with receipts) the room, and a new direct room is announced to
//! the other person.

use hubbub_tests::local::{Client, TestLocal, drain, recv_type, send};
use serde_json::{Value, json};

async fn call(
    server: &TestLocal,
    method: &str,
    path: &str,
    token: &str,
    body: Value,
) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let body = body.to_string();
    let a = server
        .request(
            method,
            path,
            &[("Authorization", auth.as_str())],
            Some(&body),
        )
        .await;
    let json = if a.body.is_empty() {
        Value::Null
    } else {
        a.json()
    };
    (a.status, json)
}

async fn joined(server: &TestLocal, token: &str, room: &str) -> Client {
    let mut ws = server.ws_token(token).await;
    send(&mut ws, json!({"action":"joinRoom","room":room})).await;
    recv_type(&mut ws, "joined", &mut Vec::new()).await;
    ws
}

fn token(session: &Value) -> String {
    session["accessToken"].as_str().expect("token").to_owned()
}

async fn people_suite(server: &TestLocal) {
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let (ta, tb) = (token(&ann), token(&bob));
    let bob_id = bob["user"]["id"].as_str().expect("id").to_owned();
    let (s, _) = call(
        server,
        "POST",
        "/rooms",
        &ta,
        json!({"id":"club","name":"Club","private":true}),
    )
    .await;
    assert_eq!(s, 201);

    // A direct room opened by ann is announced on bob's connection.
    let mut bob_idle = server.ws_token(&tb).await;
    let (s, opened) = call(server, "POST", "/dm/bob", &ta, json!({})).await;
    assert_eq!(s, 201, "{opened}");
    let added = recv_type(&mut bob_idle, "added", &mut Vec::new()).await;
    assert_eq!(added["room"], opened["id"]);

    let (s, _) = call(
        server,
        "POST",
        "/rooms/club/members",
        &ta,
        json!({"username":"bob"}),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(
        recv_type(&mut bob_idle, "added", &mut Vec::new()).await["room"],
        "club"
    );

    let mut ann_ws = joined(server, &ta, "club").await;
    let mut ann_tab = server.ws_token(&ta).await;
    let mut bob_ws = joined(server, &tb, "club").await;
    send(
        &mut ann_ws,
        json!({"action":"sendMessage","room":"club","body":"one","clientMsgId":"m1"}),
    )
    .await;
    recv_type(&mut ann_ws, "ack", &mut Vec::new()).await;
    assert_eq!(
        recv_type(&mut bob_ws, "message", &mut Vec::new()).await["body"],
        "one"
    );

    // markRead: answered, shared with the reader's other tab, a receipt to the room.
    send(
        &mut bob_ws,
        json!({"action":"markRead","room":"club","seq":1}),
    )
    .await;
    let read = recv_type(&mut bob_ws, "read", &mut Vec::new()).await;
    assert_eq!(
        read,
        json!({"type":"read","room":"club","lastRead":1,"unread":0})
    );
    let receipt = recv_type(&mut ann_ws, "receipt", &mut Vec::new()).await;
    assert_eq!(
        (&receipt["user"]["name"], &receipt["lastRead"]),
        (&json!("bob"), &json!(1))
    );
    let synced = recv_type(&mut bob_idle, "read", &mut Vec::new()).await;
    assert_eq!(synced["lastRead"], 1, "the other tab learns the mark");
    // HTTP marks reach the reader's tabs too.
    send(
        &mut ann_ws,
        json!({"action":"sendMessage","room":"club","body":"two","clientMsgId":"m2"}),
    )
    .await;
    recv_type(&mut ann_ws, "ack", &mut Vec::new()).await;
    let (s, _) = call(server, "PUT", "/rooms/club/read", &ta, json!({"seq":2})).await;
    assert_eq!(s, 200);
    assert_eq!(
        recv_type(&mut ann_tab, "read", &mut Vec::new()).await["lastRead"],
        2
    );
    // Bad frames and rooms the user may not use are refused.
    for (frame, code) in [
        (
            json!({"action":"markRead","room":"club","seq":-1}),
            "bad_request",
        ),
        (json!({"action":"markRead","room":"club"}), "bad_request"),
        (
            json!({"action":"markRead","room":"nowhere","seq":1}),
            "not_found",
        ),
    ] {
        send(&mut bob_ws, frame.clone()).await;
        let e = recv_type(&mut bob_ws, "error", &mut Vec::new()).await;
        assert_eq!(e["code"], code, "{frame}: {e}");
    }
    let mut carl = server.ws("carl").await;
    send(
        &mut carl,
        json!({"action":"markRead","room":"club","seq":1}),
    )
    .await;
    assert_eq!(
        recv_type(&mut carl, "error", &mut Vec::new()).await["code"],
        "forbidden"
    );
    // A direct room's id is not created by a join.
    send(&mut carl, json!({"action":"joinRoom","room":"dm-0000"})).await;
    assert_eq!(
        recv_type(&mut carl, "error", &mut Vec::new()).await["code"],
        "not_found"
    );

    // bob is removed: his connection leaves at once, hears nothing more, cannot rejoin.
    drain(&mut bob_ws, &mut Vec::new()).await;
    let (s, _) = call(
        server,
        "DELETE",
        &format!("/rooms/club/members/{bob_id}"),
        &ta,
        json!({}),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(
        recv_type(&mut bob_ws, "removed", &mut Vec::new()).await["room"],
        "club"
    );
    send(
        &mut ann_ws,
        json!({"action":"sendMessage","room":"club","body":"after","clientMsgId":"m3"}),
    )
    .await;
    recv_type(&mut ann_ws, "ack", &mut Vec::new()).await;
    let mut after = Vec::new();
    drain(&mut bob_ws, &mut after).await;
    assert!(
        after.iter().all(|f| f["type"] != "message"),
        "nothing delivered after removal: {after:?}"
    );
    send(&mut bob_ws, json!({"action":"joinRoom","room":"club"})).await;
    assert_eq!(
        recv_type(&mut bob_ws, "error", &mut Vec::new()).await["code"],
        "forbidden"
    );
    send(
        &mut bob_ws,
        json!({"action":"sendMessage","room":"club","body":"x","clientMsgId":"b1"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut bob_ws, "error", &mut Vec::new()).await["code"],
        "forbidden"
    );
}

#[tokio::test]
async fn local_people_removal_reads_and_direct_rooms() {
    people_suite(&TestLocal::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_people_removal_reads_and_direct_rooms_postgres_dynamodb() {
    let server = TestLocal::over(
        hubbub_tests::local::Stores::PostgresAndDynamo,
        TestLocal::config(),
    )
    .await;
    people_suite(&server).await;
}
