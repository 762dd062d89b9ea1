//! Identity on a live connection and the abuse cases around it, at the handler level: route
//! handlers fed the sample events (varied), over the in-memory stores and over PostgreSQL and
//! DynamoDB, with the real management-API client posting to a real HTTP server ([`Recorder`]).
//!
//! The end-to-end versions over hubbub-local live in `local/sessions.rs`.

mod bodies;
mod expiry;
mod join_race;
mod maintenance;
mod revocation;

use std::sync::Arc;

use hubbub_core::aws_lambda_events::apigw::ApiGatewayProxyResponse;
use hubbub_core::aws_lambda_events::encodings::Body;
use hubbub_core::store::memory::MemoryConnectionStore;
use hubbub_core::store::{ConnectionStore, HistoryStore};
use hubbub_core::ws::RouteDeps;
use hubbub_tests::Recorder;
use hubbub_tests::events::Ws;
use hubbub_tests::route_deps::{memory_deps, real_deps};
use serde_json::{Value, json};

// `$connect` for `u-{name}`, shared with the handler tests.
use crate::handlers::connect;

/// The route response's frame.
fn body_json(resp: &ApiGatewayProxyResponse) -> Value {
    match &resp.body {
        Some(Body::Text(t)) => serde_json::from_str(t).expect("route response is JSON"),
        other => panic!("expected a text body, got {other:?}"),
    }
}

/// A MESSAGE event of user `u-{name}` on connection `conn`, carrying `frame`.
fn event(conn: &str, name: &str, frame: Value) -> Ws {
    Ws::sample("send-message")
        .connection(conn)
        .user(&format!("u-{name}"), name)
        .frame(frame)
}

/// `joinRoom` through the rooms function; its route response.
async fn join(deps: &RouteDeps, conn: &str, name: &str, room: &str) -> Value {
    let ev = event(conn, name, json!({"action": "joinRoom", "room": room})).build();
    body_json(&rooms::handle(deps, &ev).await)
}

/// Asserts an error frame with `code`.
fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["code"], code, "{v}");
}
