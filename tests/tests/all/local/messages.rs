//! Edits, deletes, replies and reactions end to end through hubbub-local: a client that was
//! there all along (live frames) and one that missed everything and reads `history` alone
//! end with the same room.

use std::collections::BTreeMap;

use hubbub_tests::local::{Client, TestLocal, drain, recv_type, send};
use serde_json::{Value, json};

/// A room as a client holds it: seq -> (body, deleted, editSeq, reply target), messages
/// only (edits and deletes are applied to their targets).
type Room = BTreeMap<i64, (String, bool, i64, Option<i64>)>;

/// Applies one entry of the sequence by docs/protocol.md's rule ("Converging").
fn apply(room: &mut Room, e: &Value) {
    let seq = e["seq"].as_i64().expect("seq");
    let body = e["body"]
        .as_str()
        .expect("every entry has a string body")
        .to_owned();
    let target = e["target"].as_i64();
    match e["kind"].as_str().expect("kind") {
        "message" => {
            room.entry(seq).or_insert((
                body,
                e["deleted"] == true,
                e["editSeq"].as_i64().unwrap_or(0),
                e["replyTo"]["seq"].as_i64(),
            ));
        }
        "edit" => {
            if let Some(m) = target
                .and_then(|t| room.get_mut(&t))
                .filter(|m| !m.1 && m.2 < seq)
            {
                (m.0, m.2) = (body, seq);
            }
        }
        "delete" => {
            if let Some(m) = target.and_then(|t| room.get_mut(&t)) {
                (m.0, m.1) = (String::new(), true);
            }
        }
        other => panic!("unknown kind {other}"),
    }
}

/// Sends a frame and waits for the answer of type `ty`, keeping other frames in `log`.
async fn ask(ws: &mut Client, frame: Value, ty: &str, log: &mut Vec<Value>) -> Value {
    send(ws, frame).await;
    recv_type(ws, ty, log).await
}

async fn joined(server: &TestLocal, name: &str, log: &mut Vec<Value>) -> Client {
    let mut ws = server.ws(name).await;
    ask(
        &mut ws,
        json!({"action":"joinRoom","room":"talk"}),
        "joined",
        log,
    )
    .await;
    ws
}

#[tokio::test]
async fn a_client_that_missed_everything_converges_from_history_alone() {
    let server = TestLocal::start().await;
    let (mut la, mut lb, mut lc) = (Vec::new(), Vec::new(), Vec::new());
    // alice creates the room (she owns it), bob watches, carol leaves before anything happens.
    let mut alice = joined(&server, "alice", &mut la).await;
    let mut bob = joined(&server, "bob", &mut lb).await;
    let mut carol = joined(&server, "carol", &mut lc).await;
    carol.close(None).await.expect("carol goes away");

    let mut seq = 0;
    let mut acked = |ack: &Value| {
        seq += 1;
        assert_eq!(ack["seq"], seq, "gap-free: {ack}");
    };
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        let a = ask(
            &mut alice,
            json!({"action":"sendMessage","room":"talk","body":text,"clientMsgId":format!("a{i}")}),
            "ack",
            &mut la,
        )
        .await;
        acked(&a);
    }
    let a = ask(&mut bob, json!({"action":"sendMessage","room":"talk","body":"re: one","clientMsgId":"b0","replyTo":1}), "ack", &mut lb).await;
    acked(&a);
    for frame in [
        json!({"action":"editMessage","room":"talk","seq":1,"body":"one (fixed)","clientMsgId":"a3"}),
        json!({"action":"editMessage","room":"talk","seq":1,"body":"one (fixed twice)","clientMsgId":"a4"}),
        json!({"action":"deleteMessage","room":"talk","seq":2,"clientMsgId":"a5"}),
        // The owner deletes bob's reply.
        json!({"action":"deleteMessage","room":"talk","seq":4,"clientMsgId":"a6"}),
        json!({"action":"editMessage","room":"talk","seq":3,"body":"three!","clientMsgId":"a7"}),
    ] {
        let a = ask(&mut alice, frame, "ack", &mut la).await;
        acked(&a);
    }
    ask(
        &mut alice,
        json!({"action":"react","room":"talk","seq":1,"emoji":"👍"}),
        "reaction",
        &mut la,
    )
    .await;
    // bob's answers go into his log beside the frames the others' reactions sent him.
    for frame in [
        json!({"action":"react","room":"talk","seq":1,"emoji":"👍"}),
        json!({"action":"react","room":"talk","seq":1,"emoji":"🎉"}),
        json!({"action":"react","room":"talk","seq":1,"emoji":"🎉","remove":true}),
    ] {
        send(&mut bob, frame).await;
        loop {
            let f = recv_type(&mut bob, "reaction", &mut lb).await;
            lb.push(f.clone());
            if f["user"]["id"] == "u-bob" {
                break;
            }
        }
    }
    drain(&mut bob, &mut lb).await;

    // bob's room from what he sent and the live frames he got.
    let mut live = Room::new();
    apply(
        &mut live,
        &json!({"seq":4,"kind":"message","body":"re: one","replyTo":{"seq":1}}),
    );
    let mut entries: Vec<&Value> = lb.iter().filter(|f| f["type"] == "message").collect();
    entries.sort_by_key(|f| f["seq"].as_i64());
    for e in entries {
        apply(&mut live, e);
    }
    // The last count bob was told for each emoji.
    let mut reactions: BTreeMap<String, i64> = BTreeMap::new();
    for r in lb.iter().filter(|f| f["type"] == "reaction") {
        let emoji = r["emoji"].as_str().expect("emoji").to_owned();
        reactions.insert(emoji, r["count"].as_i64().expect("count"));
    }
    assert_eq!(reactions.get("🎉"), Some(&0));
    reactions.retain(|_, n| *n > 0);

    // carol comes back and reads history only, page by page from the start.
    let mut carol = joined(&server, "carol", &mut lc).await;
    let mut caught_up = Room::new();
    let mut after = 0;
    let mut shown = Vec::new();
    loop {
        let page = ask(
            &mut carol,
            json!({"action":"history","room":"talk","after":after,"limit":3}),
            "history",
            &mut lc,
        )
        .await;
        for e in page["messages"].as_array().expect("messages") {
            apply(&mut caught_up, e);
            after = e["seq"].as_i64().expect("seq");
            shown.push(e.clone());
        }
        if page["hasMore"] != true {
            break;
        }
    }
    assert_eq!(after, 9, "every entry of the sequence");
    assert_eq!(
        caught_up, live,
        "the same room from history alone as from live frames"
    );
    assert_eq!(
        caught_up
            .values()
            .map(|m| (m.0.as_str(), m.1))
            .collect::<Vec<_>>(),
        [
            ("one (fixed twice)", false),
            ("", true),
            ("three!", false),
            ("", true)
        ]
    );
    let first = &shown[0];
    let counts: BTreeMap<String, i64> = first["reactions"]
        .as_array()
        .expect("reactions")
        .iter()
        .map(|r| {
            (
                r["emoji"].as_str().expect("e").to_owned(),
                r["count"].as_i64().expect("n"),
            )
        })
        .collect();
    assert_eq!(
        counts, reactions,
        "history's reaction counts are the live ones"
    );
    assert_eq!(shown[3]["replyTo"]["bodyPreview"], "one (fixed twice)");
    server.shutdown().await;
}

/// What a client written before edits, reactions and read state understands: frames with a
/// string `type`, of which it reads `message` frames (an integer `seq`, a string `body`) and
/// ignores the rest. Such a client still sees a gap-free sequence, live and from `history`
/// (docs/protocol.md, "Clients written before edits").
#[tokio::test]
async fn a_client_written_before_edits_keeps_a_gap_free_sequence() {
    let server = TestLocal::start().await;
    let (mut la, mut lb) = (Vec::new(), Vec::new());
    let mut alice = joined(&server, "alice", &mut la).await;
    let mut bob = joined(&server, "bob", &mut lb).await;
    for frame in [
        json!({"action":"sendMessage","room":"talk","body":"one","clientMsgId":"a0"}),
        json!({"action":"sendMessage","room":"talk","body":"two","clientMsgId":"a1","replyTo":1}),
        json!({"action":"editMessage","room":"talk","seq":1,"body":"one!","clientMsgId":"a2"}),
        json!({"action":"deleteMessage","room":"talk","seq":2,"clientMsgId":"a3"}),
        json!({"action":"sendMessage","room":"talk","body":"three","clientMsgId":"a4"}),
    ] {
        ask(&mut alice, frame, "ack", &mut la).await;
    }
    ask(
        &mut alice,
        json!({"action":"react","room":"talk","seq":1,"emoji":"👍"}),
        "reaction",
        &mut la,
    )
    .await;
    ask(
        &mut alice,
        json!({"action":"markRead","room":"talk","seq":5}),
        "read",
        &mut la,
    )
    .await;
    drain(&mut bob, &mut lb).await;

    let old_client = |frames: &[Value]| -> Vec<(i64, String)> {
        frames
            .iter()
            .inspect(|f| assert!(f["type"].is_string(), "every frame has a type: {f}"))
            .filter(|f| f["type"] == "message")
            .map(|f| {
                let seq = f["seq"].as_i64().expect("an integer seq");
                let body = f["body"].as_str().expect("a string body").to_owned();
                (seq, body)
            })
            .collect()
    };
    let live = old_client(&lb);
    assert_eq!(
        live.iter().map(|m| m.0).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5],
        "live: gap-free, edits and deletes included"
    );
    assert!(
        lb.iter().any(|f| f["type"] == "reaction"),
        "the reaction reached bob as a frame he may ignore"
    );

    let page = ask(
        &mut bob,
        json!({"action":"history","room":"talk","after":0}),
        "history",
        &mut lb,
    )
    .await;
    let stored: Vec<Value> = page["messages"].as_array().expect("messages").clone();
    let from_history: Vec<(i64, String)> = stored
        .iter()
        .map(|e| {
            let seq = e["seq"].as_i64().expect("an integer seq");
            (seq, e["body"].as_str().expect("a string body").to_owned())
        })
        .collect();
    assert_eq!(
        from_history.iter().map(|m| m.0).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5],
        "history: the same gap-free sequence"
    );
    assert_eq!(
        from_history[2].1, "one!",
        "an edit reads as a message with the corrected text"
    );
    assert_eq!(from_history[3].1, "", "a delete reads as an empty message");
    server.shutdown().await;
}
