//! `members`: who is in a room, read on demand page by page, through hubbub-local with real
//! WebSocket clients.

use hubbub_tests::local::{TestLocal, recv_type, send};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Pages through a room's members with `limit`, returning every page's names.
async fn pages(ws: &mut hubbub_tests::local::Client, limit: u32) -> Vec<Vec<String>> {
    let mut log = Vec::new();
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut frame = json!({"action":"members","room":"lobby","limit":limit});
        if let Some(c) = &cursor {
            frame["cursor"] = json!(c);
        }
        send(ws, frame).await;
        let page = recv_type(ws, "members", &mut log).await;
        assert_eq!(page["room"], "lobby");
        out.push(
            page["members"]
                .as_array()
                .expect("members")
                .iter()
                .map(|m| m["name"].as_str().expect("name").to_owned())
                .collect(),
        );
        match page.get("next").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_owned()),
            None => return out,
        }
    }
}

/// Members are listed page by page with an opaque cursor, each user once per page; only a
/// connection that joined may list them, and a made-up cursor is refused.
#[tokio::test]
async fn local_members_are_listed_page_by_page() {
    let server = TestLocal::start().await;
    let names = ["ann", "bob", "cat", "dan", "eve"];
    let mut clients = Vec::new();
    for n in names {
        let mut ws = server.ws(n).await;
        send(&mut ws, json!({"action":"joinRoom","room":"lobby"})).await;
        recv_type(&mut ws, "joined", &mut Vec::new()).await;
        clients.push(ws);
    }
    // ann's second tab: two connections, one user.
    let mut tab = server.ws("ann").await;
    send(&mut tab, json!({"action":"joinRoom","room":"lobby"})).await;
    recv_type(&mut tab, "joined", &mut Vec::new()).await;

    let all = pages(&mut clients[1], 200).await;
    assert_eq!(all.len(), 1, "one page holds six connections");
    assert_eq!(all[0].len(), 5, "ann once on a page: {all:?}");
    let paged = pages(&mut clients[1], 2).await;
    assert_eq!(paged.len(), 3, "six connections, two per page: {paged:?}");
    let seen: BTreeSet<&String> = paged.iter().flatten().collect();
    let want: BTreeSet<String> = names.iter().map(|n| (*n).to_owned()).collect();
    assert_eq!(seen, want.iter().collect(), "every member on some page");

    let mut outsider = server.ws("zed").await;
    let mut log = Vec::new();
    send(&mut outsider, json!({"action":"members","room":"lobby"})).await;
    let err = recv_type(&mut outsider, "error", &mut log).await;
    assert_eq!(err["code"], "forbidden");
    assert_eq!(err["room"], "lobby");

    for bad in ["not base64!", "", "AAAA", &"QUFB".repeat(100)] {
        send(
            &mut clients[0],
            json!({"action":"members","room":"lobby","cursor":bad}),
        )
        .await;
        let err = recv_type(&mut clients[0], "error", &mut log).await;
        assert_eq!(err["code"], "bad_request", "cursor {bad:?}");
        assert!(
            !err["message"].as_str().expect("message").contains(bad) || bad.is_empty(),
            "not echoed"
        );
    }
    for limit in [0, 201] {
        send(
            &mut clients[0],
            json!({"action":"members","room":"lobby","limit":limit}),
        )
        .await;
        let err = recv_type(&mut clients[0], "error", &mut log).await;
        assert_eq!(err["code"], "bad_request", "limit {limit}");
    }
    server.shutdown().await;
}
