//! Chat through hubbub-local: fan-out to every member exactly once, concurrent senders,
//! vanished clients and catching up with history, in memory and on PostgreSQL/DynamoDB.

use hubbub_core::store::ConnectionStore;
use hubbub_tests::local::{
    FRAME_WAIT, Stores, TestLocal, drain, next_frame, recv_presence_left, recv_type, send,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// Three users in `general`, each sending one message: every other member gets each
/// message exactly once, the sender gets the ack, and a departure is announced.
async fn chat_scenario(server: &TestLocal) {
    let names = ["alice", "bob", "carol"];
    let mut clients = vec![
        server.ws("alice").await,
        server.ws_subprotocol("bob").await,
        server.ws("carol").await,
    ];
    let mut logs: Vec<Vec<Value>> = vec![Vec::new(), Vec::new(), Vec::new()];
    assert_eq!(server.connection_ids().len(), 3);

    for i in 0..3 {
        send(
            &mut clients[i],
            json!({"action":"joinRoom","room":"general"}),
        )
        .await;
        let joined = recv_type(&mut clients[i], "joined", &mut logs[i]).await;
        assert_eq!(joined["room"], "general");
    }
    for i in 0..3 {
        let msg_id = format!("m-{}", names[i]);
        send(
            &mut clients[i],
            json!({"action":"sendMessage","room":"general","body":format!("hi from {}", names[i]),"clientMsgId":msg_id}),
        )
        .await;
        let ack = recv_type(&mut clients[i], "ack", &mut logs[i]).await;
        assert_eq!(ack["clientMsgId"], msg_id);
        assert_eq!(ack["seq"], json!(i + 1), "seq is gap-free per room");
    }
    for i in 0..3 {
        let (c, l) = (&mut clients[i], &mut logs[i]);
        drain(c, l).await;
    }
    for (i, log) in logs.iter().enumerate() {
        let mut got: HashMap<String, usize> = HashMap::new();
        for m in log.iter().filter(|f| f["type"] == "message") {
            *got.entry(m["clientMsgId"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
            assert_eq!(m["room"], "general");
        }
        let want: HashMap<String, usize> = names
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| (format!("m-{n}"), 1))
            .collect();
        assert_eq!(got, want, "{} got {log:?}", names[i]);
    }
    // Presence, coalesced per window (1 s): alice sees bob and carol join, in one frame or
    // two, once each.
    let joined_names = |log: &[Value]| -> Vec<Value> {
        log.iter()
            .filter(|f| f["type"] == "presence")
            .flat_map(|f| f["joined"].as_array().cloned().unwrap_or_default())
            .map(|u| u["name"].clone())
            .filter(|n| n != "alice")
            .collect()
    };
    while joined_names(&logs[0]).len() < 2 {
        let f = recv_type(&mut clients[0], "presence", &mut logs[0]).await;
        logs[0].push(f);
    }
    assert_eq!(joined_names(&logs[0]), vec![json!("bob"), json!("carol")]);

    // History, ping and $default through the same connection.
    send(
        &mut clients[0],
        json!({"action":"history","room":"general","after":0}),
    )
    .await;
    let mut log = Vec::new();
    let history = recv_type(&mut clients[0], "history", &mut log).await;
    let seqs: Vec<&Value> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| &m["seq"])
        .collect();
    assert_eq!(seqs, vec![&json!(1), &json!(2), &json!(3)]);
    send(&mut clients[0], json!({"action":"ping"})).await;
    recv_type(&mut clients[0], "pong", &mut log).await;
    send(&mut clients[0], json!({"action":"dance"})).await;
    let err = recv_type(&mut clients[0], "error", &mut log).await;
    assert_eq!(err["code"], "bad_request");

    // Bob leaves by closing: $disconnect announces it to the others.
    let mut bob = clients.remove(1);
    bob.close(None).await.expect("close");
    for c in clients.iter_mut() {
        let left = recv_presence_left(c, &mut log).await;
        assert_eq!(left, json!([{"id":"u-bob","name":"bob"}]));
    }
    assert_eq!(server.connection_ids().len(), 2);
}

#[tokio::test]
async fn local_chat_three_users_in_memory() {
    let server = TestLocal::start().await;
    chat_scenario(&server).await;
    server.shutdown().await;
}

/// hubbub-local on a fresh PostgreSQL database and a fresh table of the DynamoDB-compatible
/// server, posting through its HTTP @connections API with the Lambdas' `ManagementGateway`
/// (`--management-client http`): the whole AWS path on one machine. Also looks behind the
/// emulator's back at the table.
#[tokio::test]
async fn local_chat_on_postgres_and_dynamodb() {
    let mut config = TestLocal::config();
    config.management_client = hubbub_local::config::ManagementClient::Http;
    let server = TestLocal::over(Stores::PostgresAndDynamo, config).await;
    let store = server.connection_store().clone();
    assert_eq!(server.stores().history, "PostgreSQL");
    chat_scenario(&server).await;

    // Shutdown closes the rest with 1001 and runs their $disconnect: the table forgets them.
    let ids = server.connection_ids();
    assert_eq!(ids.len(), 2);
    server.shutdown().await;
    for id in ids {
        assert_eq!(store.get_connection(&id).await.expect("read"), None);
    }
}

/// Five members each pipeline ten messages without waiting for acks: every member gets
/// every other member's messages exactly once, and the room's seqs are 1..=50 without gaps.
#[tokio::test]
async fn local_concurrent_senders_each_message_once() {
    const MEMBERS: usize = 5;
    const EACH: usize = 10;
    let server = TestLocal::start().await;
    let mut clients = server.joined("user", MEMBERS, "busy").await;
    for (i, ws) in clients.iter_mut().enumerate() {
        for n in 0..EACH {
            send(
                ws,
                json!({"action":"sendMessage","room":"busy","body":"x","clientMsgId":format!("c{i}-{n}")}),
            )
            .await;
        }
    }
    let mut seqs = Vec::new();
    for (i, ws) in clients.iter_mut().enumerate() {
        // Acks leave at commit, before the fan-out: wait for every ack and every message,
        // then stay a while to catch any duplicate.
        let mut frames = Vec::new();
        let count = |frames: &[Value], t: &str| frames.iter().filter(|f| f["type"] == t).count();
        while count(&frames, "ack") < EACH || count(&frames, "message") < (MEMBERS - 1) * EACH {
            match next_frame(ws, FRAME_WAIT).await {
                Some(Ok(v)) => frames.push(v),
                other => panic!("user{i} waiting for acks and messages: {other:?}"),
            }
        }
        drain(ws, &mut frames).await;
        let mut got: HashMap<String, usize> = HashMap::new();
        for f in &frames {
            match f["type"].as_str() {
                Some("message") => {
                    let id = f["clientMsgId"].as_str().unwrap_or_default().to_owned();
                    assert!(
                        !id.starts_with(&format!("c{i}-")),
                        "own message echoed: {f}"
                    );
                    *got.entry(id).or_default() += 1;
                }
                Some("ack") => seqs.push(f["seq"].as_i64().expect("seq")),
                _ => {}
            }
        }
        assert_eq!(got.len(), (MEMBERS - 1) * EACH, "user{i}: {got:?}");
        assert!(
            got.values().all(|n| *n == 1),
            "user{i} got a duplicate: {got:?}"
        );
    }
    seqs.sort_unstable();
    let want: Vec<i64> = (1..=i64::try_from(MEMBERS * EACH).expect("small")).collect();
    assert_eq!(seqs, want);
    server.shutdown().await;
}
/// A client that vanishes without a close frame is disconnected by the emulator (the
/// room hears it left), and a connection whose `$disconnect` never ran (left behind in the
/// table) is removed by fan-out as soon as a post to it answers 410.
#[tokio::test]
async fn local_vanished_clients_are_cleaned_up_on_postgres_and_dynamodb() {
    let server = TestLocal::over(Stores::PostgresAndDynamo, TestLocal::config()).await;
    let store = server.connection_store().clone();
    let general = hubbub_tests::contract::room("general");

    let mut log = Vec::new();
    let mut alice = server.ws("alice").await;
    send(&mut alice, json!({"action":"joinRoom","room":"general"})).await;
    recv_type(&mut alice, "joined", &mut log).await;
    let mut bob = server.ws_subprotocol("bob").await;
    send(&mut bob, json!({"action":"joinRoom","room":"general"})).await;
    recv_type(&mut bob, "joined", &mut log).await;
    recv_type(&mut alice, "presence", &mut log).await;
    assert_eq!(server.connection_ids().len(), 2);

    // bob's network goes away: no close frame, the TCP connection just ends.
    drop(bob);
    let left = recv_presence_left(&mut alice, &mut log).await;
    assert_eq!(left, json!([{"id":"u-bob","name":"bob"}]));
    assert_eq!(server.connection_ids().len(), 1);

    // A member whose $disconnect never ran: in the table, unknown to API Gateway.
    let stale = hubbub_tests::contract::connection("carol");
    store.put_connection(&stale).await.expect("put stale");
    store.join_room(&stale, &general).await.expect("join stale");
    assert!(store.is_member(&stale.id, &general).await.expect("member"));

    send(
        &mut alice,
        json!({"action":"sendMessage","room":"general","body":"still there?","clientMsgId":"m-1"}),
    )
    .await;
    let ack = recv_type(&mut alice, "ack", &mut log).await;
    assert_eq!(ack["seq"], 1);
    // The post to the stale connection answered 410: send-message removed it (the ack left
    // at commit, so the fan-out may still be finishing).
    let deadline = tokio::time::Instant::now() + FRAME_WAIT;
    while store
        .get_connection(&stale.id)
        .await
        .expect("read")
        .is_some()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stale connection never removed"
        );
        // Real time, not paused: the removal happens over real sockets (the emulator, the
        // DynamoDB-compatible server), which paused time would outrun. Polling every 20 ms
        // keeps the wait short without hammering the table.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!store.is_member(&stale.id, &general).await.expect("member"));
    server.shutdown().await;
}

/// A client that reconnects catches up with `history` after the last seq it saw.
#[tokio::test]
async fn local_history_after_reconnect() {
    let server = TestLocal::start().await;
    let mut log = Vec::new();
    let mut alice = server.ws("alice").await;
    let mut bob = server.ws("bob").await;
    for ws in [&mut alice, &mut bob] {
        send(ws, json!({"action":"joinRoom","room":"general"})).await;
        recv_type(ws, "joined", &mut log).await;
    }
    send(
        &mut alice,
        json!({"action":"sendMessage","room":"general","body":"one","clientMsgId":"a-1"}),
    )
    .await;
    recv_type(&mut alice, "ack", &mut log).await;
    let seen = recv_type(&mut bob, "message", &mut log).await;
    let last_seen = seen["seq"].as_i64().expect("seq");
    bob.close(None).await.expect("close");

    for i in 2..=4 {
        send(
            &mut alice,
            json!({"action":"sendMessage","room":"general","body":format!("n{i}"),"clientMsgId":format!("a-{i}")}),
        )
        .await;
        recv_type(&mut alice, "ack", &mut log).await;
    }

    let mut bob = server.ws_subprotocol("bob").await;
    send(&mut bob, json!({"action":"joinRoom","room":"general"})).await;
    recv_type(&mut bob, "joined", &mut log).await;
    send(
        &mut bob,
        json!({"action":"history","room":"general","after":last_seen}),
    )
    .await;
    let h = recv_type(&mut bob, "history", &mut log).await;
    let got: Vec<(i64, String)> = h["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["seq"].as_i64().unwrap_or_default(),
                m["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (2, "n2".to_owned()),
            (3, "n3".to_owned()),
            (4, "n4".to_owned())
        ]
    );
    assert_eq!(h["hasMore"], false);
    server.shutdown().await;
}
