//! Every route after `$connect` refuses a connection whose access token has expired (past
//! `tokenExp` plus the 30 s leeway): the client is sent `unauthorized` and the connection is
//! closed through `DELETE @connections`.

use super::*;

fn exp_in(secs: i64) -> serde_json::Value {
    json!(time::OffsetDateTime::now_utc().unix_timestamp() + secs)
}

/// `frame` from `conn` with the given `tokenExp` (`None`: no `tokenExp` at all).
fn with_exp(conn: &str, frame: Value, exp: Option<serde_json::Value>) -> Ws {
    event(conn, "alice", frame).with(|v| {
        let a = &mut v["requestContext"]["authorizer"];
        match exp {
            Some(e) => a["tokenExp"] = e,
            None => {
                if let Some(o) = a.as_object_mut() {
                    o.remove("tokenExp");
                }
            }
        }
    })
}

/// Runs the route `frame` selects, as API Gateway would.
async fn run(
    deps: &RouteDeps,
    default: &default_route::DefaultDeps,
    ev: &Ws,
) -> ApiGatewayProxyResponse {
    let built = ev.build();
    match built.request_context.route_key.as_deref() {
        Some("sendMessage") => send_message::handle(deps, &built).await,
        Some("joinRoom" | "leaveRoom" | "history" | "typing") => rooms::handle(deps, &built).await,
        _ => default_route::handle(default, &built).await,
    }
}

#[tokio::test]
async fn every_route_refuses_and_closes_an_expired_connection() {
    let (rec, deps) = memory_deps().await;
    let default = default_route::DefaultDeps {
        gateway: rec.gateway(),
        endpoint_override: Some(rec.endpoint()),
    };
    connect(&deps, "alice-1=", "alice").await;
    assert_eq!(
        join(&deps, "alice-1=", "alice", "lobby").await["type"],
        "joined"
    );
    let frames = [
        json!({"action": "sendMessage", "room": "lobby", "body": "hi", "clientMsgId": "m-1"}),
        json!({"action": "joinRoom", "room": "lobby"}),
        json!({"action": "leaveRoom", "room": "lobby"}),
        json!({"action": "history", "room": "lobby"}),
        json!({"action": "typing", "room": "lobby"}),
        json!({"action": "ping"}),
        json!({"action": "nonsense"}),
    ];
    // Inside the leeway: served as usual.
    let live = with_exp("alice-1=", json!({"action": "ping"}), Some(exp_in(-29)));
    assert_eq!(
        body_json(&run(&deps, &default, &live).await)["type"],
        "pong"
    );
    assert!(rec.lock().deleted.is_empty());

    for (i, frame) in frames.iter().enumerate() {
        for exp in [Some(exp_in(-31)), Some(json!("not a number")), None] {
            let conn = format!("alice-{i}=");
            let ev = with_exp(&conn, frame.clone(), exp.clone());
            let resp = run(&deps, &default, &ev).await;
            assert_eq!(resp.status_code, 200);
            assert!(
                resp.body.is_none(),
                "{frame} {exp:?}: the error frame is posted"
            );
            let posted = rec.frames_to(&conn);
            let last = posted
                .last()
                .unwrap_or_else(|| panic!("{frame}: nothing posted"));
            assert_error(last, "unauthorized");
            assert!(
                last["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("expired")),
                "{last}"
            );
            assert!(
                rec.lock().deleted.iter().any(|d| d == &conn),
                "{frame} {exp:?}: the connection was not closed"
            );
            rec.lock().deleted.clear();
        }
    }
    // Nothing happened on the refused frames.
    let page = deps
        .history
        .history(
            &hubbub_tests::contract::room("lobby"),
            &hubbub_core::protocol::HistoryQuery {
                cursor: hubbub_core::protocol::HistoryCursor::Latest,
                limit: 10,
            },
            "u-viewer",
        )
        .await
        .expect("history");
    assert!(page.messages.is_empty());
}

#[tokio::test]
async fn an_expired_connection_whose_error_cannot_be_posted_gets_it_in_the_route_response() {
    let (rec, deps) = memory_deps().await;
    connect(&deps, "alice-1=", "alice").await;
    rec.fail_next("alice-1=", &[410]);
    let ev = with_exp(
        "alice-1=",
        json!({"action": "joinRoom", "room": "lobby"}),
        Some(exp_in(-60)),
    );
    let v = body_json(&rooms::handle(&deps, &ev.build()).await);
    assert_error(&v, "unauthorized");
    assert_eq!(v["room"], "lobby");
}
