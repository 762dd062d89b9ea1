//! Route handlers fed the sample events of `events/` (and variations), with fan-out going
//! through the real management-API client to a real HTTP server. By topic:
//!
//! - `auth.rs`: the authorizer, `$connect` and `$default`;
//! - `chat.rs`: the send path (acks, fan-out, replays, refused sends, failed commits);
//! - `room_routes.rs`: the room routes' refusals;
//! - `samples.rs`: every sample event of `events/` replayed.
//!
//! The helpers below are shared by all four.

mod auth;
mod chat;
mod messages;
mod moderation;
mod room_routes;
mod samples;

use std::sync::Arc;

use hubbub_core::auth::{Claims, JwtIssuer, JwtVerifier, TokenVerifier};
use hubbub_core::aws_lambda_events::apigw::ApiGatewayProxyResponse;
use hubbub_core::aws_lambda_events::encodings::Body;
use hubbub_core::config::JwtConfig;
use hubbub_core::protocol::HistoryQuery;
use hubbub_core::store::ConnectionStore;
use hubbub_core::store::memory::MemoryConnectionStore;
use hubbub_core::ws::RouteDeps;
use hubbub_tests::Recorder;
use hubbub_tests::contract::{private_room, room, user};
use hubbub_tests::events::{self, Ws};
use hubbub_tests::route_deps::{memory_deps, real_deps};
use serde_json::{Value, json};

const SECRET: &str = "handler-tests-secret-at-least-32-bytes-long";

fn jwt_config() -> JwtConfig {
    JwtConfig {
        secret: SECRET.as_bytes().to_vec(),
        issuer: "hubbub".into(),
        audience: "hubbub".into(),
        leeway: std::time::Duration::from_secs(30),
    }
}

/// What `$default` needs, posting to `rec`.
fn default_deps(rec: &Recorder) -> default_route::DefaultDeps {
    default_route::DefaultDeps {
        gateway: rec.gateway(),
        endpoint_override: Some(rec.endpoint()),
    }
}

fn body_json(resp: &ApiGatewayProxyResponse) -> Value {
    match &resp.body {
        Some(Body::Text(t)) => serde_json::from_str(t).expect("route response is JSON"),
        other => panic!("expected a text body, got {other:?}"),
    }
}

/// A user's connection event template.
fn as_user(conn: &str, name: &str) -> Ws {
    Ws::sample("send-message")
        .connection(conn)
        .user(&format!("u-{name}"), name)
}

/// Runs `$connect` for `u-{name}` on `conn` and expects it accepted.
pub(crate) async fn connect(deps: &RouteDeps, conn: &str, name: &str) {
    let ev = Ws::sample("connect")
        .connection(conn)
        .user(&format!("u-{name}"), name)
        .build();
    let resp = connect::handle(
        &connect::ConnectDeps {
            connections: deps.live.connections.clone(),
        },
        &ev,
    )
    .await;
    assert_eq!(resp.status_code, 200, "connect {name}");
}

async fn rooms_route(
    deps: &RouteDeps,
    conn: &str,
    name: &str,
    frame: Value,
) -> ApiGatewayProxyResponse {
    rooms::handle(deps, &as_user(conn, name).frame(frame).build()).await
}

async fn join(deps: &RouteDeps, conn: &str, name: &str, r: &str) {
    let resp = rooms_route(deps, conn, name, json!({"action":"joinRoom","room":r})).await;
    assert_eq!(body_json(&resp), json!({"type":"joined","room":r}));
}

/// Sends a message and returns what the sender got: the route response when there is one
/// (an error, a replay's ack, an ack whose post failed), else the ack posted to it at commit.
async fn send_via(
    rec: &Recorder,
    deps: &RouteDeps,
    conn: &str,
    name: &str,
    r: &str,
    body: &str,
    cmid: &str,
) -> Value {
    let ev = as_user(conn, name)
        .frame(json!({"action":"sendMessage","room":r,"body":body,"clientMsgId":cmid}))
        .build();
    let resp = send_message::handle(deps, &ev).await;
    assert_eq!(resp.status_code, 200);
    if resp.body.is_some() {
        return body_json(&resp);
    }
    let acks: Vec<Value> = of_type(&rec.frames_to(conn), "ack")
        .into_iter()
        .filter(|a| a["clientMsgId"] == cmid)
        .collect();
    assert_eq!(acks.len(), 1, "one ack posted at commit to {conn}");
    acks[0].clone()
}

fn of_type(frames: &[Value], t: &str) -> Vec<Value> {
    frames.iter().filter(|f| f["type"] == t).cloned().collect()
}

fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(v["requestId"].is_string(), "{v}");
}
