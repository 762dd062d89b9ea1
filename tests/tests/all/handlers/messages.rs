//! Edits, deletes, replies and reactions through the send-message function: what the actor
//! gets, what the room gets, and every refusal's stable code.

use super::*;

/// Runs a frame through send-message as `name` on `conn`: the route response, else the last
/// ack posted to the connection at commit.
async fn write(rec: &Recorder, deps: &RouteDeps, conn: &str, name: &str, frame: Value) -> Value {
    let resp = send_message::handle(deps, &as_user(conn, name).frame(frame).build()).await;
    assert_eq!(resp.status_code, 200);
    if resp.body.is_some() {
        return body_json(&resp);
    }
    of_type(&rec.frames_to(conn), "ack")
        .pop()
        .expect("an ack posted at commit")
}

/// The `message` frames `conn` received, as (seq, kind, target, body).
fn entries(rec: &Recorder, conn: &str) -> Vec<(i64, String, Option<i64>, String)> {
    of_type(&rec.frames_to(conn), "message")
        .iter()
        .map(|m| {
            // What a client written before edits relied on still holds for every entry:
            // a `message` with an integer seq and a string body.
            assert!(m["seq"].is_i64() && m["body"].is_string(), "{m}");
            (
                m["seq"].as_i64().expect("seq"),
                m["kind"].as_str().expect("kind").to_owned(),
                m["target"].as_i64(),
                m["body"].as_str().expect("body").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn edits_deletes_replies_and_reactions_reach_the_room() {
    let (rec, deps) = memory_deps().await;
    let (o, a, b, c) = (
        "ConnOlga000=",
        "ConnAlice00=",
        "ConnBob0000=",
        "ConnCarol00=",
    );
    for (conn, name) in [(o, "olga"), (a, "alice"), (b, "bob"), (c, "carol")] {
        connect(&deps, conn, name).await;
        // olga's join creates the room: she is its owner.
        join(&deps, conn, name, "general").await;
    }
    let send = |conn, name, frame: Value| write(&rec, &deps, conn, name, frame);

    let ack = send(
        a,
        "alice",
        json!({"action":"sendMessage","room":"general","body":"hello","clientMsgId":"a1"}),
    )
    .await;
    assert_eq!(ack["seq"], 1);
    assert!(
        ack.get("kind").is_none(),
        "a send's ack is as it was: {ack}"
    );
    let ack = send(b, "bob", json!({"action":"sendMessage","room":"general","body":"hi alice","clientMsgId":"b1","replyTo":1})).await;
    assert_eq!(ack["seq"], 2);
    let reply = of_type(&rec.frames_to(c), "message").pop().expect("reply");
    assert_eq!(
        reply["replyTo"],
        json!({"seq":1,"sender":{"id":"u-alice","name":"alice"},"bodyPreview":"hello"})
    );

    // alice edits her message: the next seq, acked, delivered to the others as an entry.
    let ack = send(a, "alice", json!({"action":"editMessage","room":"general","seq":1,"body":"hello, all","clientMsgId":"a2"})).await;
    assert_eq!(
        (
            ack["type"].as_str(),
            ack["seq"].as_i64(),
            ack["kind"].as_str(),
            ack["target"].as_i64()
        ),
        (Some("ack"), Some(3), Some("edit"), Some(1))
    );
    let again = send(
        a,
        "alice",
        json!({"action":"editMessage","room":"general","seq":1,"body":"other","clientMsgId":"a2"}),
    )
    .await;
    assert_eq!(again, ack, "a replayed edit is acked again");
    for refused in [
        json!({"action":"editMessage","room":"general","seq":1,"body":"mine","clientMsgId":"b2"}),
        json!({"action":"deleteMessage","room":"general","seq":1,"clientMsgId":"b3"}),
    ] {
        assert_error(&send(b, "bob", refused).await, "forbidden");
    }
    assert_error(
        &send(
            a,
            "alice",
            json!({"action":"editMessage","room":"general","seq":99,"body":"x","clientMsgId":"a3"}),
        )
        .await,
        "not_found",
    );
    assert_error(
        &send(
            a,
            "alice",
            json!({"action":"editMessage","room":"general","seq":3,"body":"x","clientMsgId":"a3"}),
        )
        .await,
        "not_found",
    );
    let long = "x".repeat(4001);
    assert_error(
        &send(
            a,
            "alice",
            json!({"action":"editMessage","room":"general","seq":1,"body":long,"clientMsgId":"a3"}),
        )
        .await,
        "payload_too_large",
    );

    // reactions: the reactor gets the frame as its answer, the others live, once per change.
    let r = send(
        b,
        "bob",
        json!({"action":"react","room":"general","seq":1,"emoji":"👍"}),
    )
    .await;
    assert_eq!(
        r,
        json!({"type":"reaction","room":"general","seq":1,"emoji":"👍","count":1,
            "user":{"id":"u-bob","name":"bob"},"added":true})
    );
    let again = send(
        b,
        "bob",
        json!({"action":"react","room":"general","seq":1,"emoji":"👍"}),
    )
    .await;
    assert_eq!(again, r, "adding twice changes nothing");
    for conn in [o, a, c] {
        assert_eq!(
            of_type(&rec.frames_to(conn), "reaction"),
            vec![r.clone()],
            "{conn}"
        );
    }
    assert!(
        of_type(&rec.frames_to(b), "reaction").is_empty(),
        "no broadcast back to bob"
    );
    assert_error(
        &send(
            b,
            "bob",
            json!({"action":"react","room":"general","seq":3,"emoji":"👍"}),
        )
        .await,
        "not_found",
    );

    // the owner deletes bob's message; alice deletes her own.
    let ack = send(
        o,
        "olga",
        json!({"action":"deleteMessage","room":"general","seq":2,"clientMsgId":"o1"}),
    )
    .await;
    assert_eq!(
        (ack["seq"].as_i64(), ack["kind"].as_str()),
        (Some(4), Some("delete"))
    );
    let ack = send(
        a,
        "alice",
        json!({"action":"deleteMessage","room":"general","seq":1,"clientMsgId":"a4"}),
    )
    .await;
    assert_eq!(ack["seq"], 5);
    for refused in [
        json!({"action":"editMessage","room":"general","seq":1,"body":"back","clientMsgId":"a5"}),
        json!({"action":"deleteMessage","room":"general","seq":1,"clientMsgId":"a6"}),
        json!({"action":"sendMessage","room":"general","body":"re","clientMsgId":"a7","replyTo":1}),
        json!({"action":"react","room":"general","seq":1,"emoji":"🎉"}),
    ] {
        assert_error(&send(a, "alice", refused).await, "gone");
    }

    let want = vec![
        (1, "message".to_owned(), None, "hello".to_owned()),
        (2, "message".into(), None, "hi alice".into()),
        (3, "edit".into(), Some(1), "hello, all".into()),
        (4, "delete".into(), Some(2), String::new()),
        (5, "delete".into(), Some(1), String::new()),
    ];
    assert_eq!(entries(&rec, c), want, "carol saw every entry in order");
    assert_eq!(entries(&rec, b).len(), 4, "bob: all but his own");

    // history: the tombstones, and the events in the sequence.
    let h = body_json(
        &rooms::handle(
            &deps,
            &as_user(c, "carol")
                .frame(json!({"action":"history","room":"general"}))
                .build(),
        )
        .await,
    );
    let msgs = h["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 5);
    assert_eq!(
        (
            msgs[0]["deleted"].as_bool(),
            msgs[0]["body"].as_str(),
            msgs[0]["editSeq"].as_i64()
        ),
        (Some(true), Some(""), Some(3))
    );
    assert!(
        msgs[0].get("reactions").is_none(),
        "a tombstone has no reactions"
    );
    assert_eq!(msgs[1]["replyTo"]["deleted"], true);
}

#[tokio::test]
async fn changes_need_the_room_and_a_join() {
    let (rec, deps) = memory_deps().await;
    let (a, b) = ("ConnAlice00=", "ConnBob0000=");
    connect(&deps, a, "alice").await;
    connect(&deps, b, "bob").await;
    deps.history
        .create_room(&private_room("secret"), &user("alice"))
        .await
        .expect("room");
    join(&deps, a, "alice", "secret").await;
    join(&deps, a, "alice", "open").await;
    let ack = write(
        &rec,
        &deps,
        a,
        "alice",
        json!({"action":"sendMessage","room":"secret","body":"psst","clientMsgId":"a1"}),
    )
    .await;
    assert_eq!(ack["seq"], 1);
    let cases = [
        (
            b,
            "bob",
            json!({"action":"react","room":"secret","seq":1,"emoji":"👍"}),
            "forbidden",
        ),
        (
            b,
            "bob",
            json!({"action":"editMessage","room":"secret","seq":1,"body":"x","clientMsgId":"b1"}),
            "forbidden",
        ),
        (
            b,
            "bob",
            json!({"action":"deleteMessage","room":"nowhere","seq":1,"clientMsgId":"b2"}),
            "not_found",
        ),
        // Not joined: a change fans out to the room like a send.
        (
            b,
            "bob",
            json!({"action":"react","room":"open","seq":1,"emoji":"👍"}),
            "forbidden",
        ),
        (
            a,
            "alice",
            json!({"action":"react","room":"secret","seq":1,"emoji":"lol"}),
            "bad_request",
        ),
        (
            a,
            "alice",
            json!({"action":"react","room":"secret","seq":0,"emoji":"👍"}),
            "bad_request",
        ),
        (
            a,
            "alice",
            json!({"action":"deleteMessage","room":"secret","seq":1}),
            "bad_request",
        ),
    ];
    for (conn, name, frame, code) in cases {
        let v = write(&rec, &deps, conn, name, frame.clone()).await;
        assert_error(&v, code);
        assert!(v["action"].is_string(), "{frame}: {v}");
    }
}

/// The same story over PostgreSQL and DynamoDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_and_react_on_postgres_and_dynamodb() {
    let (rec, deps, _) = real_deps().await;
    let (a, b) = ("ConnAlice00=", "ConnBob0000=");
    connect(&deps, a, "alice").await;
    connect(&deps, b, "bob").await;
    join(&deps, a, "alice", "general").await;
    join(&deps, b, "bob", "general").await;
    write(
        &rec,
        &deps,
        a,
        "alice",
        json!({"action":"sendMessage","room":"general","body":"v1","clientMsgId":"a1"}),
    )
    .await;
    let ack = write(
        &rec,
        &deps,
        a,
        "alice",
        json!({"action":"editMessage","room":"general","seq":1,"body":"v2","clientMsgId":"a2"}),
    )
    .await;
    assert_eq!(
        (ack["seq"].as_i64(), ack["kind"].as_str()),
        (Some(2), Some("edit"))
    );
    let r = write(
        &rec,
        &deps,
        b,
        "bob",
        json!({"action":"react","room":"general","seq":1,"emoji":"🎉"}),
    )
    .await;
    assert_eq!(r["count"], 1);
    assert_error(
        &write(
            &rec,
            &deps,
            b,
            "bob",
            json!({"action":"editMessage","room":"general","seq":1,"body":"x","clientMsgId":"b1"}),
        )
        .await,
        "forbidden",
    );
    assert_eq!(
        entries(&rec, b),
        vec![
            (1, "message".to_owned(), None, "v1".to_owned()),
            (2, "edit".into(), Some(1), "v2".into()),
        ]
    );
    let h = body_json(
        &rooms::handle(
            &deps,
            &as_user(b, "bob")
                .frame(json!({"action":"history","room":"general"}))
                .build(),
        )
        .await,
    );
    assert_eq!(h["messages"][0]["body"], "v2");
    assert_eq!(
        h["messages"][0]["reactions"],
        json!([{"emoji":"🎉","count":1,"me":true}])
    );
}
