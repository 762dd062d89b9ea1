//! The send path: acks, fan-out to the room exactly once, replays, refused sends, and a
//! failed commit on PostgreSQL.

use super::*;

// --- the send path ----------------------------------------------------------------------------

/// Three users in one room; every other member gets each message exactly once, the sender
/// gets the ack; a replay acks again and delivers nothing; a gone recipient is removed.
async fn chat_flow(rec: &Recorder, deps: &RouteDeps) {
    let (a, b, c) = ("ConnAlice00=", "ConnBob0000=", "ConnCarol00=");
    connect(deps, a, "alice").await;
    connect(deps, b, "bob").await;
    connect(deps, c, "carol").await;
    join(deps, a, "alice", "general").await;
    join(deps, b, "bob", "general").await;
    join(deps, c, "carol", "general").await;
    // Presence: alice saw bob and carol join, bob saw carol; nobody is told of their own join.
    // Without a presence sink each join is announced at once, to the whole room: alice saw
    // three frames (her own join, bob's, carol's), bob two, carol one, with the occupancy.
    assert_eq!(of_type(&rec.frames_to(a), "presence").len(), 3);
    assert_eq!(of_type(&rec.frames_to(b), "presence").len(), 2);
    assert_eq!(
        of_type(&rec.frames_to(c), "presence"),
        vec![json!({"type":"presence","room":"general",
            "joined":[{"id":"u-carol","name":"carol"}],"left":[],"count":3})]
    );

    let posts_before = rec.posts().len();
    let ack = send_via(rec, deps, a, "alice", "general", "hello, room", "m-1").await;
    assert_eq!(ack["type"], "ack");
    // Ack at commit: the sender's ack is posted before any member's copy of the message.
    let order: Vec<String> = rec.posts()[posts_before..]
        .iter()
        .map(|(to, _)| to.clone())
        .collect();
    assert_eq!(order.len(), 3, "{order:?}");
    assert_eq!(order[0], a, "the ack leaves first: {order:?}");
    assert_eq!(
        (
            ack["room"].as_str(),
            ack["clientMsgId"].as_str(),
            ack["seq"].as_i64()
        ),
        (Some("general"), Some("m-1"), Some(1))
    );
    for to in [b, c] {
        let msgs = of_type(&rec.frames_to(to), "message");
        assert_eq!(msgs.len(), 1, "exactly once to {to}");
        let m = &msgs[0];
        assert_eq!(
            (m["seq"].as_i64(), m["body"].as_str()),
            (Some(1), Some("hello, room"))
        );
        assert_eq!(m["sender"], json!({"id":"u-alice","name":"alice"}));
        assert_eq!(
            (m["id"].clone(), m["sentAt"].clone()),
            (ack["id"].clone(), ack["sentAt"].clone())
        );
    }
    assert!(
        of_type(&rec.frames_to(a), "message").is_empty(),
        "the sender gets the ack, not the message"
    );

    // Replay: the same ack, nothing delivered again.
    let posts_before = rec.posts().len();
    let again = send_via(rec, deps, a, "alice", "general", "hello, room", "m-1").await;
    assert_eq!(again, ack);
    assert_eq!(rec.posts().len(), posts_before);

    // bob answers in order.
    let ack2 = send_via(rec, deps, b, "bob", "general", "hi alice", "b-1").await;
    assert_eq!(ack2["seq"], 2);
    let to_carol: Vec<i64> = of_type(&rec.frames_to(c), "message")
        .iter()
        .filter_map(|m| m["seq"].as_i64())
        .collect();
    assert_eq!(to_carol, vec![1, 2]);

    // carol vanished without a close: her post answers 410, and she is removed; the sender stays.
    rec.make_gone(c);
    let ack3 = send_via(rec, deps, a, "alice", "general", "anyone there?", "m-2").await;
    assert_eq!(ack3["seq"], 3);
    assert!(
        deps.live
            .connections
            .get_connection(c)
            .await
            .expect("get")
            .is_none(),
        "gone recipient removed"
    );
    assert!(
        !deps
            .live
            .connections
            .is_member(c, &room("general"))
            .await
            .expect("member")
    );
    assert!(
        deps.live
            .connections
            .get_connection(a)
            .await
            .expect("get")
            .is_some(),
        "sender kept"
    );
    assert_eq!(
        of_type(&rec.frames_to(b), "message").len(),
        2,
        "bob got m-1 and m-2 (not his own)"
    );

    // history: everything, in seq order.
    let resp = rooms_route(
        deps,
        b,
        "bob",
        json!({"action":"history","room":"general","after":0}),
    )
    .await;
    let h = body_json(&resp);
    assert_eq!(h["type"], "history");
    let seqs: Vec<i64> = h["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["seq"].as_i64())
        .collect();
    assert_eq!((seqs, h["hasMore"].as_bool()), (vec![1, 2, 3], Some(false)));
    let resp = rooms_route(
        deps,
        b,
        "bob",
        json!({"action":"history","room":"general","before":3,"limit":1}),
    )
    .await;
    let h = body_json(&resp);
    assert_eq!(
        (h["messages"][0]["seq"].as_i64(), h["hasMore"].as_bool()),
        (Some(2), Some(true))
    );

    // typing goes to the others only and answers nothing.
    let resp = rooms_route(deps, b, "bob", json!({"action":"typing","room":"general"})).await;
    assert!(resp.body.is_none());
    assert_eq!(
        of_type(&rec.frames_to(a), "typing"),
        vec![json!({"type":"typing","room":"general","user":{"id":"u-bob","name":"bob"}})]
    );
    assert!(of_type(&rec.frames_to(b), "typing").is_empty());

    // leave: acknowledged, announced, and no more messages.
    let resp = rooms_route(
        deps,
        b,
        "bob",
        json!({"action":"leaveRoom","room":"general"}),
    )
    .await;
    assert_eq!(body_json(&resp), json!({"type":"left","room":"general"}));
    let left = of_type(&rec.frames_to(a), "presence");
    assert_eq!(
        left.last().expect("presence")["left"],
        json!([{"id":"u-bob","name":"bob"}])
    );
    send_via(rec, deps, a, "alice", "general", "bye bob", "m-3").await;
    assert_eq!(of_type(&rec.frames_to(b), "message").len(), 2);

    // $disconnect removes alice and tells the rooms she was in.
    join(deps, b, "bob", "general").await;
    let ev = Ws::sample("disconnect")
        .connection(a)
        .user("u-alice", "alice")
        .build();
    let resp = disconnect::handle(&deps.live, &ev).await;
    assert_eq!(resp.status_code, 200);
    assert!(
        deps.live
            .connections
            .get_connection(a)
            .await
            .expect("get")
            .is_none()
    );
    let last = of_type(&rec.frames_to(b), "presence")
        .pop()
        .expect("presence");
    assert_eq!(
        last,
        json!({"type":"presence","room":"general","joined":[],
            "left":[{"id":"u-alice","name":"alice"}],"count":1})
    );
}

#[tokio::test]
async fn chat_flow_on_memory_adapters() {
    let (rec, deps) = memory_deps().await;
    chat_flow(&rec, &deps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_flow_on_postgres_and_dynamodb() {
    let (rec, deps, _) = real_deps().await;
    chat_flow(&rec, &deps).await;
}

/// When posting the ack to the sender is refused, the ack rides the route response instead:
/// the sender is acked once either way, and the room still gets the message.
#[tokio::test]
async fn ack_falls_back_to_the_route_response_when_its_post_is_refused() {
    let (rec, deps) = memory_deps().await;
    let (a, b) = ("ConnAlice00=", "ConnBob0000=");
    connect(&deps, a, "alice").await;
    connect(&deps, b, "bob").await;
    join(&deps, a, "alice", "general").await;
    join(&deps, b, "bob", "general").await;
    // 403 is final (not retried): the ack certainly did not reach alice.
    rec.fail_next(a, &[403]);
    let ev = as_user(a, "alice")
        .frame(json!({"action":"sendMessage","room":"general","body":"hi","clientMsgId":"m-1"}))
        .build();
    let ack = body_json(&send_message::handle(&deps, &ev).await);
    assert_eq!(
        (ack["type"].as_str(), ack["seq"].as_i64()),
        (Some("ack"), Some(1))
    );
    assert!(of_type(&rec.frames_to(a), "ack").is_empty());
    assert_eq!(of_type(&rec.frames_to(b), "message").len(), 1);
}

#[tokio::test]
async fn every_bad_send_gets_a_stable_code_and_stores_nothing() {
    let (rec, deps) = memory_deps().await;
    let a = "ConnAlice00=";
    connect(&deps, a, "alice").await;
    join(&deps, a, "alice", "general").await;
    let secret = private_room("secret");
    deps.history
        .create_room(&secret, &user("zed"))
        .await
        .expect("private room");
    deps.history
        .ensure_public_room(&room("elsewhere"))
        .await
        .expect("room");

    let big = "x".repeat(4001);
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "bad_request"),
        (r#"{"action":"sendMessage"}"#.into(), "bad_request"),
        (
            r#"{"action":"sendMessage","room":"general","body":7,"clientMsgId":"c1"}"#.into(),
            "bad_request",
        ),
        (
            r#"{"action":"sendMessage","room":"General!","body":"x","clientMsgId":"c1"}"#.into(),
            "bad_request",
        ),
        (
            r#"{"action":"sendMessage","room":"general","body":"","clientMsgId":"c1"}"#.into(),
            "bad_request",
        ),
        (
            r#"{"action":"sendMessage","room":"general","body":"x","clientMsgId":"has space"}"#
                .into(),
            "bad_request",
        ),
        (
            json!({"action":"sendMessage","room":"general","body":big,"clientMsgId":"c1"})
                .to_string(),
            "payload_too_large",
        ),
        (
            r#"{"action":"sendMessage","room":"nowhere","body":"x","clientMsgId":"c1"}"#.into(),
            "not_found",
        ),
        (
            r#"{"action":"sendMessage","room":"secret","body":"x","clientMsgId":"c1"}"#.into(),
            "forbidden",
        ),
        (
            r#"{"action":"sendMessage","room":"elsewhere","body":"x","clientMsgId":"c1"}"#.into(),
            "forbidden",
        ),
        (
            r#"{"action":"joinRoom","room":"general"}"#.into(),
            "bad_request",
        ),
    ];
    for (raw, code) in &cases {
        let ev = as_user(a, "alice").body(raw).request_id("req-bad").build();
        let v = body_json(&send_message::handle(&deps, &ev).await);
        assert_error(&v, code);
        assert_eq!(v["requestId"], "req-bad");
        assert!(
            !v["message"]
                .as_str()
                .unwrap_or_default()
                .contains("xxxxxxxx"),
            "no input echo"
        );
    }
    // A well-formed clientMsgId and the action are echoed so the client can match the error.
    let ev = as_user(a, "alice")
        .body(r#"{"action":"sendMessage","room":"secret","body":"x","clientMsgId":"c-9"}"#)
        .build();
    let v = body_json(&send_message::handle(&deps, &ev).await);
    assert_eq!(
        (v["action"].as_str(), v["clientMsgId"].as_str()),
        (Some("sendMessage"), Some("c-9"))
    );
    // A binary frame.
    let ev = as_user(a, "alice")
        .with(|v| v["isBase64Encoded"] = json!(true))
        .build();
    assert_error(
        &body_json(&send_message::handle(&deps, &ev).await),
        "bad_request",
    );
    // Missing authorizer context (not invoked through API Gateway).
    let ev = as_user(a, "alice")
        .with(|v| v["requestContext"]["authorizer"] = json!({}))
        .build();
    assert_error(
        &body_json(&send_message::handle(&deps, &ev).await),
        "unauthorized",
    );

    for r in ["general", "secret", "elsewhere"] {
        let page = deps
            .history
            .history(
                &room(r),
                &HistoryQuery::new(None, None, None).expect("q"),
                "u-viewer",
            )
            .await
            .expect("history");
        assert!(page.messages.is_empty(), "nothing stored in {r}");
    }
    assert!(of_type(&rec.frames_to(a), "message").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_on_postgres_delivers_nothing_and_takes_no_seq() {
    let (rec, deps, url) = real_deps().await;
    let (a, b) = ("ConnAlice00=", "ConnBob0000=");
    connect(&deps, a, "alice").await;
    connect(&deps, b, "bob").await;
    join(&deps, a, "alice", "general").await;
    join(&deps, b, "bob", "general").await;

    // Make every insert into messages fail, as a broken database would.
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    admin
        .batch_execute("ALTER TABLE messages ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")
        .await
        .expect("break inserts");
    let v = send_via(&rec, &deps, a, "alice", "general", "lost?", "m-1").await;
    assert_error(&v, "unavailable");
    assert_eq!(v["clientMsgId"], "m-1");
    assert!(
        of_type(&rec.frames_to(b), "message").is_empty(),
        "nothing delivered"
    );

    // Once the database recovers, the retry commits with seq 1: the failure took no number.
    admin
        .batch_execute("ALTER TABLE messages DROP CONSTRAINT refuse_all")
        .await
        .expect("repair");
    let ack = send_via(&rec, &deps, a, "alice", "general", "lost?", "m-1").await;
    assert_eq!(
        (ack["type"].as_str(), ack["seq"].as_i64()),
        (Some("ack"), Some(1))
    );
    assert_eq!(of_type(&rec.frames_to(b), "message").len(), 1);
}
