//! A message body PostgreSQL `text` cannot hold (U+0000) is `bad_request` up front, whatever
//! the store: nothing is committed, nothing is delivered.

use super::*;
use hubbub_core::protocol::{HistoryCursor, HistoryQuery};
use hubbub_tests::contract::room;

async fn nul_body_suite(rec: &Recorder, deps: &RouteDeps) {
    connect(deps, "alice-1=", "alice").await;
    connect(deps, "bob-1=", "bob").await;
    assert_eq!(
        join(deps, "alice-1=", "alice", "lobby").await["type"],
        "joined"
    );
    assert_eq!(join(deps, "bob-1=", "bob", "lobby").await["type"], "joined");
    let frame = json!({"action": "sendMessage", "room": "lobby", "clientMsgId": "m-1",
                       "body": "before\u{0}after"});
    let resp = send_message::handle(deps, &event("alice-1=", "alice", frame).build()).await;
    let v = body_json(&resp);
    assert_error(&v, "bad_request");
    assert_eq!(v["clientMsgId"], "m-1", "{v}");
    assert!(
        rec.frames_to("bob-1=")
            .iter()
            .all(|f| f["type"] != "message")
    );
    let page = deps
        .history
        .history(
            &room("lobby"),
            &HistoryQuery {
                cursor: HistoryCursor::Latest,
                limit: 10,
            },
            "u-viewer",
        )
        .await
        .expect("history");
    assert!(page.messages.is_empty(), "{page:?}");
    // The same clientMsgId with a storable body is a new, first send.
    let frame = json!({"action": "sendMessage", "room": "lobby", "clientMsgId": "m-1",
                       "body": "before after"});
    let resp = send_message::handle(deps, &event("alice-1=", "alice", frame).build()).await;
    assert!(resp.body.is_none(), "acked by post: {:?}", resp.body);
}

#[tokio::test]
async fn nul_in_a_body_is_bad_request_on_memory_stores() {
    let (rec, deps) = memory_deps().await;
    nul_body_suite(&rec, &deps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_a_body_is_bad_request_on_postgres_and_dynamodb() {
    let (rec, deps, _) = real_deps().await;
    nul_body_suite(&rec, &deps).await;
}
