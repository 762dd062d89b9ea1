//! Members, direct rooms and read state through hubbub-local with real WebSocket clients: a
//! removed member's connections leave the room at once and get nothing more, read marks reach
//! the reader's other tabs and (with receipts) the room, and a new direct room is announced to
//! the other person. A client that connects after all of it reads the same memberships and
//! read positions from the server as the live frames told a client that was there.

use std::collections::{BTreeMap, BTreeSet};

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

/// Sends `frame` on `ws` and waits for the answer of type `ty`, keeping every frame (the
/// answer too) in `log`.
async fn ask(ws: &mut Client, frame: Value, ty: &str, log: &mut Vec<Value>) -> Value {
    send(ws, frame).await;
    let answer = recv_type(ws, ty, log).await;
    log.push(answer.clone());
    answer
}

/// What a client learns from live frames alone: the private rooms it was added to and not
/// removed from, and its read position per room.
fn fold(log: &[Value]) -> (BTreeSet<String>, BTreeMap<String, i64>) {
    let mut rooms = BTreeSet::new();
    let mut read = BTreeMap::new();
    for f in log {
        let room = f["room"].as_str().unwrap_or_default().to_owned();
        match f["type"].as_str() {
            Some("added") => {
                rooms.insert(room);
            }
            Some("removed") => {
                rooms.remove(&room);
            }
            Some("read") => {
                let at = f["lastRead"].as_i64().expect("lastRead");
                let held = read.entry(room).or_insert(0);
                *held = at.max(*held);
            }
            _ => {}
        }
    }
    (rooms, read)
}

#[tokio::test]
async fn a_client_that_missed_everything_converges_on_memberships_and_read_state() {
    let server = TestLocal::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let cat = server.register("cat").await;
    let (ta, tb, tc) = (token(&ann), token(&bob), token(&cat));
    let bob_id = bob["user"]["id"].as_str().expect("id").to_owned();
    let cat_id = cat["user"]["id"].as_str().expect("id").to_owned();
    // bob's first device is there all along; everything it learns is in `lb`.
    let mut lb = Vec::new();
    let mut bob_ws = server.ws_token(&tb).await;
    for (id, name) in [("club", "Club"), ("annex", "Annex")] {
        let (s, _) = call(
            &server,
            "POST",
            "/rooms",
            &ta,
            json!({"id": id, "name": name, "private": true}),
        )
        .await;
        assert_eq!(s, 201);
    }
    for (room, who) in [("club", "bob"), ("club", "cat"), ("annex", "bob")] {
        let (s, _) = call(
            &server,
            "POST",
            &format!("/rooms/{room}/members"),
            &ta,
            json!({"username": who}),
        )
        .await;
        assert_eq!(s, 204);
    }
    // `recv_type` hands back the frame it waited for: it goes into the log too.
    for _ in 0..2 {
        let added = recv_type(&mut bob_ws, "added", &mut lb).await;
        lb.push(added);
    }
    let (s, dm) = call(&server, "POST", "/dm/bob", &ta, json!({})).await;
    assert_eq!(s, 201);
    let dm = dm["id"].as_str().expect("dm id").to_owned();
    let added = recv_type(&mut bob_ws, "added", &mut lb).await;
    assert_eq!(added["room"], dm.as_str());
    lb.push(added);

    let mut ann_ws = joined(&server, &ta, "club").await;
    ask(
        &mut bob_ws,
        json!({"action":"joinRoom","room":"club"}),
        "joined",
        &mut lb,
    )
    .await;
    ask(
        &mut bob_ws,
        json!({"action":"joinRoom","room":"annex"}),
        "joined",
        &mut lb,
    )
    .await;
    let mut cat_ws = joined(&server, &tc, "club").await;
    for i in 1..=4 {
        send(
            &mut ann_ws,
            json!({"action":"sendMessage","room":"club","body":format!("m{i}"),"clientMsgId":format!("a{i}")}),
        )
        .await;
        recv_type(&mut ann_ws, "ack", &mut Vec::new()).await;
    }
    // bob reads on this device, then further on another (HTTP): the mark reaches this one.
    ask(
        &mut bob_ws,
        json!({"action":"markRead","room":"club","seq":2}),
        "read",
        &mut lb,
    )
    .await;
    let (s, _) = call(&server, "PUT", "/rooms/club/read", &tb, json!({"seq": 3})).await;
    assert_eq!(s, 200);
    let synced = recv_type(&mut bob_ws, "read", &mut lb).await;
    assert_eq!(
        (&synced["lastRead"], &synced["unread"]),
        (&json!(3), &json!(1))
    );
    lb.push(synced);
    // ann sees bob's position move (receipts are on in private rooms).
    let mut receipts = Vec::new();
    while receipts.last() != Some(&3) {
        let r = recv_type(&mut ann_ws, "receipt", &mut Vec::new()).await;
        if r["user"]["id"] == bob_id.as_str() {
            receipts.push(r["lastRead"].as_i64().expect("lastRead"));
        }
    }
    // cat is removed from the club, bob from the annex: each connection is told.
    for (room, who, ws) in [
        ("club", &cat_id, &mut cat_ws),
        ("annex", &bob_id, &mut bob_ws),
    ] {
        let (s, _) = call(
            &server,
            "DELETE",
            &format!("/rooms/{room}/members/{who}"),
            &ta,
            json!({}),
        )
        .await;
        assert_eq!(s, 204);
        let removed = recv_type(ws, "removed", &mut Vec::new()).await;
        assert_eq!(removed["room"], room);
        if who == &bob_id {
            lb.push(removed);
        }
    }
    drain(&mut bob_ws, &mut lb).await;
    let (live_rooms, live_read) = fold(&lb);
    assert_eq!(
        live_rooms,
        BTreeSet::from(["club".to_owned(), dm.clone()]),
        "{lb:?}"
    );
    assert_eq!(live_read.get("club"), Some(&3));

    // bob's new device reads the same from the server alone.
    let (s, listed) = call(&server, "GET", "/rooms", &tb, json!({})).await;
    assert_eq!(s, 200);
    let rooms = listed["rooms"].as_array().expect("rooms");
    let private: BTreeSet<String> = rooms
        .iter()
        .filter(|r| r["private"] == true)
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(private, live_rooms, "the same private rooms");
    let club = rooms.iter().find(|r| r["id"] == "club").expect("club");
    assert_eq!(
        (
            &club["role"],
            &club["lastSeq"],
            &club["lastRead"],
            &club["unread"]
        ),
        (
            &json!("member"),
            &json!(4),
            &json!(live_read["club"]),
            &json!(1)
        )
    );
    let direct = rooms.iter().find(|r| r["id"] == dm.as_str()).expect("dm");
    assert_eq!(
        (&direct["kind"], &direct["with"]["name"]),
        (&json!("direct"), &json!("ann"))
    );
    let mut fresh = server.ws_token(&tb).await;
    let mut lf = Vec::new();
    let refused = ask(
        &mut fresh,
        json!({"action":"joinRoom","room":"annex"}),
        "error",
        &mut lf,
    )
    .await;
    assert_eq!(refused["code"], "forbidden", "removed: no way back in");
    let page = ask(
        &mut fresh,
        json!({"action":"history","room":"club","after":0}),
        "history",
        &mut lf,
    )
    .await;
    assert_eq!(page["messages"].as_array().expect("messages").len(), 4);
    // ann's new device sees the members and bob's position as her live receipts said.
    let (s, members) = call(&server, "GET", "/rooms/club/members", &ta, json!({})).await;
    assert_eq!(s, 200);
    let mut members: Vec<(String, String, Option<i64>)> = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().expect("name").to_owned(),
                m["role"].as_str().expect("role").to_owned(),
                m["lastRead"].as_i64(),
            )
        })
        .collect();
    members.sort();
    let expected = vec![
        ("ann".to_owned(), "owner".to_owned(), Some(0)),
        (
            "bob".to_owned(),
            "member".to_owned(),
            receipts.last().copied(),
        ),
    ];
    assert_eq!(members, expected, "cat is gone, bob read up to 3");
    server.shutdown().await;
}
