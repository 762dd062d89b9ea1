//! Route handlers fed the sample events of `events/` (and variations), with fan-out going
//! through the real management-API client to a real HTTP server.

use std::sync::Arc;

use hubbub_core::auth::{Claims, JwtIssuer, JwtVerifier, TokenVerifier};
use hubbub_core::aws_lambda_events::apigw::ApiGatewayProxyResponse;
use hubbub_core::aws_lambda_events::encodings::Body;
use hubbub_core::config::JwtConfig;
use hubbub_core::protocol::HistoryQuery;
use hubbub_core::store::memory::{MemoryConnectionStore, MemoryHistoryStore};
use hubbub_core::store::{ConnectionStore, HistoryStore};
use hubbub_core::ws::{Live, RouteDeps};
use hubbub_tests::contract::{private_room, room, user};
use hubbub_tests::events::{self, Ws};
use hubbub_tests::{Recorder, fresh_connections, migrated_database};
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

fn deps_over(
    rec: &Recorder,
    connections: Arc<dyn ConnectionStore>,
    history: Arc<dyn HistoryStore>,
) -> RouteDeps {
    RouteDeps {
        live: Live {
            connections,
            gateway: rec.gateway(),
            endpoint_override: Some(rec.endpoint()),
            queue: None,
            presence: None,
        },
        history,
    }
}

async fn memory_deps() -> (Recorder, RouteDeps) {
    let rec = Recorder::start().await;
    let deps = deps_over(
        &rec,
        Arc::new(MemoryConnectionStore::new()),
        Arc::new(MemoryHistoryStore::new()),
    );
    (rec, deps)
}

async fn real_deps() -> (Recorder, RouteDeps, String) {
    let rec = Recorder::start().await;
    let (db, url) = migrated_database().await;
    let deps = deps_over(
        &rec,
        Arc::new(fresh_connections().await),
        Arc::new(db.history()),
    );
    (rec, deps, url)
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

async fn connect(deps: &RouteDeps, conn: &str, name: &str) {
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

// --- authorizer -------------------------------------------------------------------------------

#[tokio::test]
async fn authorizer_allows_query_and_subprotocol_tokens() {
    let issuer = JwtIssuer::hs256(&jwt_config()).expect("issuer");
    let verifier = TokenVerifier::new(JwtVerifier::hs256(&jwt_config()).expect("verifier"), None);
    let token = issuer
        .issue("u-alice", "alice", time::Duration::minutes(15))
        .expect("token");
    for sample in ["authorizer-query-token", "authorizer-subprotocol"] {
        let req = events::authorizer(sample, Some(&token));
        let resp = authorizer::handle(&verifier, &req).await.expect(sample);
        let v = serde_json::to_value(&resp).expect("serialise");
        assert_eq!(v["principalId"], "u-alice", "{sample}");
        let st = &v["policyDocument"]["Statement"][0];
        assert_eq!(st["Effect"], "Allow");
        assert_eq!(st["Action"], json!(["execute-api:Invoke"]));
        assert_eq!(
            st["Resource"],
            json!([req.method_arn.clone().expect("arn")])
        );
        assert_eq!(v["context"]["userId"], "u-alice");
        assert_eq!(v["context"]["userName"], "alice");
        assert!(v["context"]["tokenExp"].as_i64().expect("tokenExp") > 0);
    }
}

#[tokio::test]
async fn authorizer_refuses_bad_tokens() {
    let cfg = jwt_config();
    let issuer = JwtIssuer::hs256(&cfg).expect("issuer");
    let verifier = TokenVerifier::new(JwtVerifier::hs256(&cfg).expect("verifier"), None);
    let base = issuer.claims("u-alice", "alice", time::Duration::minutes(15));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let forger = JwtIssuer::hs256(&JwtConfig {
        secret: b"a-different-secret-that-is-long-enough!!".to_vec(),
        ..cfg.clone()
    })
    .expect("forger");
    let unauthorized = [
        ("missing", None),
        ("garbage", Some("not-a-jwt".to_owned())),
        (
            "expired",
            Some(
                issuer
                    .sign(&Claims {
                        exp: now - 300,
                        ..base.clone()
                    })
                    .expect("sign"),
            ),
        ),
        ("forged", Some(forger.sign(&base).expect("sign"))),
        (
            "alg none",
            Some(format!(
                "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
                issuer
                    .sign(&base)
                    .expect("sign")
                    .split('.')
                    .nth(1)
                    .expect("payload")
            )),
        ),
    ];
    for sample in ["authorizer-query-token", "authorizer-subprotocol"] {
        for (case, token) in &unauthorized {
            let req = events::authorizer(sample, token.as_deref());
            let err = authorizer::handle(&verifier, &req).await.expect_err(case);
            let diag = lambda_runtime_diagnostic(err);
            assert_eq!(
                diag, "Unauthorized",
                "{sample}/{case}: API Gateway needs this exact text for a 401"
            );
        }
        // Correctly signed, but for another API: a Deny policy (403).
        let foreign = issuer
            .sign(&Claims {
                aud: "another-api".into(),
                ..base.clone()
            })
            .expect("sign");
        let resp = authorizer::handle(&verifier, &events::authorizer(sample, Some(&foreign)))
            .await
            .expect("deny is a policy");
        let v = serde_json::to_value(&resp).expect("serialise");
        assert_eq!(v["policyDocument"]["Statement"][0]["Effect"], "Deny");
        assert!(
            v["context"].get("userId").is_none(),
            "a denied caller gets no identity"
        );
    }
}

/// What the Lambda runtime reports as `errorMessage` for the authorizer's error.
fn lambda_runtime_diagnostic(e: authorizer::AuthorizerError) -> String {
    lambda_runtime::Diagnostic::from(e).error_message
}

// --- $connect / $default ----------------------------------------------------------------------

#[tokio::test]
async fn connect_stores_the_connection_and_echoes_the_subprotocol() {
    let store = Arc::new(MemoryConnectionStore::new());
    let deps = connect::ConnectDeps {
        connections: store.clone(),
    };

    let plain = Ws::sample("connect").build();
    let resp = connect::handle(&deps, &plain).await;
    assert_eq!(resp.status_code, 200);
    assert!(
        resp.headers.get("sec-websocket-protocol").is_none(),
        "nothing offered, nothing echoed"
    );
    let id = plain.request_context.connection_id.clone().expect("id");
    let stored = store
        .get_connection(&id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(
        (stored.user.id.as_str(), stored.user.name.as_str()),
        ("u-alice", "alice")
    );

    let sub = Ws::sample("connect-subprotocol")
        .connection("Sub0000000A=")
        .build();
    let resp = connect::handle(&deps, &sub).await;
    assert_eq!(resp.status_code, 200);
    assert_eq!(
        resp.headers
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().ok()),
        Some(Some("hubbub.v1"))
    );

    // Invoked without an authorizer context (not through API Gateway): refused, nothing stored.
    let bare = Ws::sample("connect")
        .connection("Bare000000A=")
        .with(|v| v["requestContext"]["authorizer"] = json!(null))
        .build();
    assert_eq!(connect::handle(&deps, &bare).await.status_code, 401);
    assert!(
        store
            .get_connection("Bare000000A=")
            .await
            .expect("get")
            .is_none()
    );
}

#[tokio::test]
async fn default_route_answers_ping_and_explains_everything_else() {
    let resp = default_route::handle(&Ws::sample("ping").build()).await;
    assert_eq!(body_json(&resp), json!({"type":"pong"}));

    let resp =
        default_route::handle(&Ws::sample("unknown-action").request_id("req-7").build()).await;
    let v = body_json(&resp);
    assert_error(&v, "bad_request");
    assert_eq!(v["requestId"], "req-7");
    assert!(
        v.get("action").is_none(),
        "an unknown action is not echoed back"
    );

    for raw in [
        "not json at all",
        "[]",
        r#"{"action":42}"#,
        r#"{"room":"general"}"#,
        "",
    ] {
        let resp = default_route::handle(&Ws::sample("ping").body(raw).build()).await;
        assert_error(&body_json(&resp), "bad_request");
    }
}

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
            .history(&room(r), &HistoryQuery::new(None, None, None).expect("q"))
            .await
            .expect("history");
        assert!(page.messages.is_empty(), "nothing stored in {r}");
    }
    assert!(of_type(&rec.frames_to(a), "message").is_empty());
}

#[tokio::test]
async fn room_routes_refuse_what_the_user_may_not_do() {
    let (_rec, deps) = memory_deps().await;
    let a = "ConnAlice00=";
    connect(&deps, a, "alice").await;
    let secret = private_room("secret");
    deps.history
        .create_room(&secret, &user("zed"))
        .await
        .expect("private room");

    // The error frame names the room when the failed frame named a well-formed one, so a
    // client can attribute the error; a malformed room id is never echoed.
    let cases = [
        (
            json!({"action":"joinRoom","room":"secret"}),
            "forbidden",
            Some("secret"),
        ),
        (
            json!({"action":"history","room":"secret"}),
            "forbidden",
            Some("secret"),
        ),
        (
            json!({"action":"history","room":"nowhere"}),
            "not_found",
            Some("nowhere"),
        ),
        (
            json!({"action":"history","room":"general","limit":0}),
            "bad_request",
            Some("general"),
        ),
        (
            json!({"action":"history","room":"general","before":5,"after":1}),
            "bad_request",
            Some("general"),
        ),
        (
            json!({"action":"typing","room":"secret"}),
            "forbidden",
            Some("secret"),
        ),
        (
            json!({"action":"joinRoom","room":"-bad"}),
            "bad_request",
            None,
        ),
        (
            json!({"action":"joinRoom","room":"a".repeat(65)}),
            "bad_request",
            None,
        ),
        (json!({"action":"joinRoom"}), "bad_request", None),
        (json!({"action":"ping"}), "bad_request", None),
    ];
    for (frame, code, named) in cases {
        let v = body_json(&rooms_route(&deps, a, "alice", frame.clone()).await);
        assert_error(&v, code);
        assert_eq!(v["room"].as_str(), named, "{frame}: {v}");
    }
    let v = body_json(
        &rooms_route(
            &deps,
            a,
            "alice",
            json!({"action":"history","room":"nowhere"}),
        )
        .await,
    );
    assert_eq!(
        v["message"], "room not found",
        "the wording the HTTP API uses too"
    );
    assert!(
        !deps
            .live
            .connections
            .is_member(a, &room("secret"))
            .await
            .expect("member")
    );

    // Once added as a member, alice may join the private room.
    deps.history
        .add_member(&room("secret"), "u-alice")
        .await
        .expect("add");
    join(&deps, a, "alice", "secret").await;

    // A connection that is no longer registered cannot join.
    let v = body_json(
        &rooms_route(
            &deps,
            "Unknown0000=",
            "alice",
            json!({"action":"joinRoom","room":"general"}),
        )
        .await,
    );
    assert_error(&v, "unauthorized");
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

#[tokio::test]
async fn every_sample_event_gets_a_sensible_answer() {
    let (rec, deps) = memory_deps().await;
    let verifier = TokenVerifier::new(JwtVerifier::hs256(&jwt_config()).expect("verifier"), None);
    let token = JwtIssuer::hs256(&jwt_config())
        .expect("issuer")
        .issue("u-alice", "alice", time::Duration::minutes(5))
        .expect("token");
    for sample in ["authorizer-query-token", "authorizer-subprotocol"] {
        authorizer::handle(&verifier, &events::authorizer(sample, Some(&token)))
            .await
            .expect(sample);
    }
    let conn_deps = connect::ConnectDeps {
        connections: deps.live.connections.clone(),
    };
    assert_eq!(
        connect::handle(&conn_deps, &Ws::sample("connect").build())
            .await
            .status_code,
        200
    );
    assert_eq!(
        connect::handle(&conn_deps, &Ws::sample("connect-subprotocol").build())
            .await
            .status_code,
        200
    );
    let run = |name: &str| Ws::sample(name).build();
    assert_eq!(
        body_json(&rooms::handle(&deps, &run("join-room")).await)["type"],
        "joined"
    );
    assert!(rooms::handle(&deps, &run("typing")).await.body.is_none());
    let sent = send_message::handle(&deps, &run("send-message")).await;
    assert!(sent.body.is_none(), "the ack is posted at commit");
    let sample = run("send-message");
    let sender = sample
        .request_context
        .connection_id
        .as_deref()
        .expect("sample connection id");
    assert_eq!(of_type(&rec.frames_to(sender), "ack").len(), 1);
    let h = body_json(&rooms::handle(&deps, &run("history")).await);
    assert_eq!(
        (h["type"].as_str(), h["messages"].as_array().map(Vec::len)),
        (Some("history"), Some(1))
    );
    assert_eq!(
        body_json(&default_route::handle(&run("ping")).await)["type"],
        "pong"
    );
    assert_eq!(
        body_json(&default_route::handle(&run("unknown-action")).await)["code"],
        "bad_request"
    );
    assert_eq!(
        body_json(&rooms::handle(&deps, &run("leave-room")).await)["type"],
        "left"
    );
    let dis = run("disconnect");
    assert_eq!(dis.request_context.disconnect_status_code, Some(1001));
    assert_eq!(disconnect::handle(&deps.live, &dis).await.status_code, 200);
    assert!(
        deps.live
            .connections
            .get_connection("L0SM9cOFvHcCIhw=")
            .await
            .expect("get")
            .is_none()
    );
    drop(rec);

    // Every file in events/ is exercised: the WebSocket ones above, the HTTP API ones
    // (`http-*.json`) in http_api::every_http_sample_event_gets_a_sensible_answer.
    let mut files: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../events"))
            .expect("events dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
    files.sort();
    // migrate-create.json is exercised by the deploy tests.
    assert_eq!(
        files.len(),
        22,
        "a new sample event needs a line in this test: {files:?}"
    );
}
