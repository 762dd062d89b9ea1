//! hubbub-local end to end: the emulator on port 0, real WebSocket clients
//! (tokio-tungstenite), and the real aws-sdk-apigatewaymanagement client on @connections.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures::{SinkExt, StreamExt};
use hubbub_core::auth::JwtIssuer;
use hubbub_core::config::JwtConfig;
use hubbub_core::store::ConnectionStore;
use hubbub_core::store::dynamodb::DynamoConnectionStore;
use hubbub_local::events::{self, ConnMeta};
use hubbub_local::{Config, Server};
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SECRET: &str = "local-emulator-tests-secret-at-least-32-bytes";
/// How long a test waits for a frame that must come.
const FRAME_WAIT: Duration = Duration::from_secs(10);
/// How long a client must stay quiet to count as having received everything.
const QUIET: Duration = Duration::from_millis(500);

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn jwt(audience: &str) -> JwtConfig {
    JwtConfig {
        secret: SECRET.as_bytes().to_vec(),
        issuer: "hubbub".into(),
        audience: audience.into(),
        leeway: Duration::from_secs(30),
    }
}

fn token_for(name: &str, audience: &str) -> String {
    JwtIssuer::hs256(&jwt(audience))
        .expect("issuer")
        .issue(&format!("u-{name}"), name, time::Duration::minutes(15))
        .expect("token")
}

fn token(name: &str) -> String {
    token_for(name, "hubbub")
}

fn config() -> Config {
    let mut c = Config::new(jwt("hubbub"));
    c.port = 0;
    c
}

async fn start(config: Config) -> Server {
    Server::start(config).await.expect("hubbub-local starts")
}

/// Connects with `?token=`.
async fn connect_query(server: &Server, name: &str) -> Client {
    let url = format!("{}/?token={}", server.ws_url(), token(name));
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("handshake");
    ws
}

/// Connects to `/{stage}` offering `hubbub.v1, bearer.<jwt>`; the answer must pick `hubbub.v1`.
async fn connect_subprotocol(server: &Server, name: &str) -> Client {
    let url = format!("{}/{}", server.ws_url(), server.config().stage);
    let mut req = url.into_client_request().expect("request");
    let offer = format!("hubbub.v1, bearer.{}", token(name));
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(&offer).expect("header"),
    );
    req.headers_mut()
        .insert("User-Agent", HeaderValue::from_static("hubbub-tests"));
    let (ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("handshake");
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("hubbub.v1")
    );
    ws
}

/// The handshake's HTTP status when it fails.
async fn refused_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected the handshake to be refused"),
    }
}

async fn send(ws: &mut Client, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .expect("send");
}

/// The next data frame as JSON, or the close frame, within `wait`.
async fn next_frame(ws: &mut Client, wait: Duration) -> Option<Result<Value, Option<u16>>> {
    loop {
        let msg = match tokio::time::timeout(wait, ws.next()).await {
            Err(_) => return None,
            Ok(None) => return Some(Err(None)),
            Ok(Some(Err(e))) => panic!("client read failed: {e}"),
            Ok(Some(Ok(m))) => m,
        };
        match msg {
            Message::Text(t) => {
                return Some(Ok(serde_json::from_str(t.as_str()).expect("frame is JSON")));
            }
            Message::Close(f) => return Some(Err(f.map(|f| u16::from(f.code)))),
            _ => {}
        }
    }
}

/// Reads frames into `log` until one of type `ty` arrives, and returns it.
async fn recv_type(ws: &mut Client, ty: &str, log: &mut Vec<Value>) -> Value {
    loop {
        match next_frame(ws, FRAME_WAIT).await {
            Some(Ok(v)) if v["type"] == ty => return v,
            Some(Ok(v)) => log.push(v),
            other => panic!("waiting for a `{ty}` frame, got {other:?} after {log:?}"),
        }
    }
}

/// Every data frame until the client has been quiet for [`QUIET`].
async fn drain(ws: &mut Client, log: &mut Vec<Value>) {
    while let Some(Ok(v)) = next_frame(ws, QUIET).await {
        log.push(v);
    }
}

/// The `left` list of the next presence frame that has one (presence frames of earlier
/// windows, which only list joins, are skipped).
async fn recv_presence_left(ws: &mut Client, log: &mut Vec<Value>) -> Value {
    loop {
        let f = recv_type(ws, "presence", log).await;
        if f["left"].as_array().is_some_and(|l| !l.is_empty()) {
            return f["left"].clone();
        }
    }
}

/// The close code the client receives next (frames before it are skipped).
async fn close_code(ws: &mut Client) -> Option<u16> {
    loop {
        match next_frame(ws, FRAME_WAIT).await {
            Some(Ok(_)) => continue,
            Some(Err(code)) => return code,
            None => panic!("the connection was not closed"),
        }
    }
}

/// Three users in `general`, each sending one message: every other member gets each
/// message exactly once, the sender gets the ack, and a departure is announced.
async fn chat_scenario(server: &Server) {
    let names = ["alice", "bob", "carol"];
    let mut clients = vec![
        connect_query(server, "alice").await,
        connect_subprotocol(server, "bob").await,
        connect_query(server, "carol").await,
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
    let server = start(config()).await;
    chat_scenario(&server).await;
    server.shutdown().await;
}

/// hubbub-local on a fresh PostgreSQL database and a fresh table of the DynamoDB-compatible
/// server; also returns a store over that table, to look behind the emulator's back.
async fn start_on_postgres_and_dynamodb() -> (Server, DynamoConnectionStore) {
    let (history, url) = hubbub_tests::fresh_history().await;
    drop(history);
    let endpoint = std::env::var("HUBBUB_TEST_DYNAMODB_ENDPOINT")
        .expect("HUBBUB_TEST_DYNAMODB_ENDPOINT is not set: run the test suite with scripts/test");
    let table = format!("hubbub-local-{}", uuid::Uuid::new_v4().simple());
    let mut c = config();
    c.database_url = Some(url);
    c.dynamodb_endpoint = Some(endpoint);
    c.dynamodb_table = table.clone();
    // moto keeps tables per region: the harness's client reads in its region.
    c.region = hubbub_tests::REGION.to_owned();
    let server = start(c).await;
    let store = DynamoConnectionStore::new(hubbub_tests::dynamodb_client(), table);
    (server, store)
}

#[tokio::test]
async fn local_chat_on_postgres_and_dynamodb() {
    let (server, store) = start_on_postgres_and_dynamodb().await;
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
    let server = start(config()).await;
    let mut clients = Vec::new();
    for i in 0..MEMBERS {
        let mut ws = connect_query(&server, &format!("user{i}")).await;
        send(&mut ws, json!({"action":"joinRoom","room":"busy"})).await;
        recv_type(&mut ws, "joined", &mut Vec::new()).await;
        clients.push(ws);
    }
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

#[tokio::test]
async fn local_handshake_refusals() {
    let server = start(config()).await;
    let ws = server.ws_url();
    // Missing, malformed, or signed with another secret: 401.
    assert_eq!(refused_status(&format!("{ws}/")).await, 401);
    assert_eq!(refused_status(&format!("{ws}/?token=nonsense")).await, 401);
    let foreign = JwtIssuer::hs256(&JwtConfig {
        secret: b"another-secret-that-is-long-enough-32b".to_vec(),
        ..jwt("hubbub")
    })
    .expect("issuer")
    .issue("u-eve", "eve", time::Duration::minutes(5))
    .expect("token");
    assert_eq!(refused_status(&format!("{ws}/?token={foreign}")).await, 401);
    // Expired (beyond the 30 s leeway): 401.
    let issuer = JwtIssuer::hs256(&jwt("hubbub")).expect("issuer");
    let mut claims = issuer.claims("u-alice", "alice", time::Duration::minutes(15));
    claims.nbf -= 3600;
    claims.iat -= 3600;
    claims.exp = claims.iat + 60;
    let expired = issuer.sign(&claims).expect("token");
    assert_eq!(refused_status(&format!("{ws}/?token={expired}")).await, 401);
    // Correctly signed for another audience: the policy denies, 403.
    let other = token_for("alice", "another-api");
    assert_eq!(refused_status(&format!("{ws}/?token={other}")).await, 403);
    // A stage that does not exist.
    assert_eq!(
        refused_status(&format!("{ws}/prod?token={}", token("alice"))).await,
        403
    );
    assert!(server.connection_ids().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn local_oversized_frame_closes_with_1009() {
    let server = start(config()).await;
    let mut ws = connect_query(&server, "alice").await;
    // Just under the 32 KB frame limit: delivered (and refused by $default, being no JSON).
    ws.send(Message::Text("x".repeat(32 * 1024 - 16).into()))
        .await
        .expect("send");
    let mut log = Vec::new();
    let err = recv_type(&mut ws, "error", &mut log).await;
    assert_eq!(err["code"], "bad_request");
    // Over it: closed with 1009, and gone.
    ws.send(Message::Text("x".repeat(40 * 1024).into()))
        .await
        .expect("send");
    assert_eq!(close_code(&mut ws).await, Some(u16::from(CloseCode::Size)));
    assert!(server.connection_ids().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn local_fragmented_messages_and_binary_frames() {
    let server = start(config()).await;
    let mut ws = connect_query(&server, "alice").await;
    let mut log = Vec::new();
    let fragments = |n: usize| {
        (0..n).map(move |i| {
            let op = if i == 0 { Data::Text } else { Data::Continue };
            Message::Frame(Frame::message(
                vec![b'x'; 30 * 1024],
                OpCode::Data(op),
                i + 1 == n,
            ))
        })
    };
    // 90 KB in three frames of 30 KB: one message, within the 128 KB limit.
    for f in fragments(3) {
        ws.send(f).await.expect("send fragment");
    }
    let err = recv_type(&mut ws, "error", &mut log).await;
    assert_eq!(err["code"], "bad_request");
    // A binary frame reaches $default base64-encoded, which refuses it.
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .expect("send binary");
    let err = recv_type(&mut ws, "error", &mut log).await;
    assert_eq!(err["code"], "bad_request");
    // 150 KB in five frames: over the message limit, closed with 1009.
    for f in fragments(5) {
        ws.send(f).await.expect("send fragment");
    }
    assert_eq!(close_code(&mut ws).await, Some(u16::from(CloseCode::Size)));
    assert!(server.connection_ids().is_empty());
    server.shutdown().await;
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

/// Top-level, `requestContext`, `identity` and `authorizer` keys are those of the sample.
fn assert_shape(built: &Value, sample: &str) {
    let want = hubbub_tests::events::raw(sample);
    assert_eq!(keys(built), keys(&want), "{sample}: top level");
    let (b, w) = (&built["requestContext"], &want["requestContext"]);
    assert_eq!(keys(b), keys(w), "{sample}: requestContext");
    assert_eq!(
        keys(&b["identity"]),
        keys(&w["identity"]),
        "{sample}: identity"
    );
    if w.get("authorizer").is_some() {
        assert_eq!(
            keys(&b["authorizer"]),
            keys(&w["authorizer"]),
            "{sample}: authorizer"
        );
    }
}

#[test]
fn local_events_have_the_shape_of_the_samples() {
    let sample = hubbub_tests::events::raw("connect");
    let rc = &sample["requestContext"];
    let authorizer = rc["authorizer"].as_object().expect("authorizer").clone();
    let meta = ConnMeta {
        connection_id: hubbub_local::ids::new_id(),
        connected_at_ms: rc["connectedAt"].as_i64().expect("connectedAt"),
        source_ip: "203.0.113.42".into(),
        user_agent: Some("wscat".into()),
        domain_name: "127.0.0.1:3001".into(),
        stage: "local".into(),
        api_id: "hubbublcl1".into(),
        authorizer: Map::new(),
    };
    let mut headers = axum::http::HeaderMap::new();
    for (k, v) in [
        ("host", "127.0.0.1:3001"),
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "x3JJHMbDL1EzLkh9GBhXDw=="),
        ("sec-websocket-version", "13"),
        ("user-agent", "wscat"),
    ] {
        headers.insert(k, v.parse().expect("header"));
    }
    let arn = events::method_arn("eu-west-1", "123456789012", "hubbublcl1", "local");
    let now = rc["requestTimeEpoch"].as_i64().expect("requestTimeEpoch");
    let auth = events::authorizer_request_json(&meta, &arn, &headers, Some("token=abc"), "r1", now);
    assert_shape(&auth, "authorizer-query-token");
    assert_eq!(
        auth["headers"]["upgrade"], "websocket",
        "the authorizer sees hop headers"
    );
    assert_eq!(
        auth["multiValueQueryStringParameters"]["token"],
        json!(["abc"])
    );
    let bare = events::authorizer_request_json(&meta, &arn, &headers, None, "r1", now);
    assert_eq!(bare["queryStringParameters"], json!({}));

    let meta = ConnMeta { authorizer, ..meta };
    let connect = events::connect_json(&meta, &headers, Some("token=abc"), "r1", now);
    assert_shape(&connect, "connect");
    assert!(
        connect["headers"].get("upgrade").is_none(),
        "no hop headers on $connect"
    );
    assert_eq!(connect["requestContext"]["requestTime"], rc["requestTime"]);
    assert_shape(
        &events::connect_json(&meta, &headers, None, "r1", now),
        "connect-subprotocol",
    );
    let body = r#"{"action":"sendMessage"}"#;
    assert_shape(
        &events::message_json(&meta, "sendMessage", body, false, "r2", "m1", now),
        "send-message",
    );
    let disconnect = events::disconnect_json(&meta, 1001, "Going away", "r3", now);
    assert_shape(&disconnect, "disconnect");
    assert_eq!(
        keys(&disconnect["headers"]),
        keys(&hubbub_tests::events::raw("disconnect")["headers"])
    );

    // The typed events read back as the handlers read them.
    let typed = events::message(&meta, "sendMessage", body, false, "r2", "m1", now).expect("typed");
    let ctx = hubbub_core::ws::RouteContext::from_event(&typed, None).expect("route context");
    assert_eq!(
        (ctx.user.id.as_str(), ctx.user.name.as_str()),
        ("u-alice", "alice")
    );
    assert_eq!(
        hubbub_core::ws::token_exp(&typed),
        rc["authorizer"]["tokenExp"].as_i64()
    );

    // Ids as API Gateway's: 16 base64 characters ending in `=`.
    let id = hubbub_local::ids::new_id();
    assert_eq!(id.len(), 16);
    assert!(id.ends_with('='));
    assert!(id[..15].chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
}

#[tokio::test]
async fn local_idle_connection_is_closed() {
    let mut c = config();
    c.idle_timeout = Duration::from_millis(300);
    let server = start(c).await;
    let mut ws = connect_query(&server, "alice").await;
    assert_eq!(close_code(&mut ws).await, Some(u16::from(CloseCode::Away)));
    assert!(server.connection_ids().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn local_max_duration_closes_busy_connections() {
    let mut c = config();
    c.max_connection = Duration::from_millis(800);
    let server = start(c).await;
    let mut ws = connect_query(&server, "alice").await;
    // Busy, so never idle: pings every 100 ms until the server closes.
    let started = std::time::Instant::now();
    let code = loop {
        send(&mut ws, json!({"action":"ping"})).await;
        match next_frame(&mut ws, Duration::from_millis(100)).await {
            Some(Err(code)) => break code,
            _ => assert!(started.elapsed() < FRAME_WAIT, "never closed"),
        }
    };
    assert_eq!(code, Some(u16::from(CloseCode::Away)));
    assert!(started.elapsed() >= Duration::from_millis(700));
    server.shutdown().await;
}

#[test]
fn local_command_line() {
    use hubbub_local::cli::{Command, parse_args};
    use hubbub_local::config::DEV_JWT_SECRET;
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let no_env = |_: &str| None;
    let Ok(Command::Serve(c)) = parse_args(args(&[]), &no_env) else {
        panic!("defaults")
    };
    assert_eq!((c.port, c.stage.as_str()), (3001, "local"));
    assert_eq!(c.host.to_string(), "127.0.0.1");
    assert!(c.jwt_secret_is_dev_default);
    assert_eq!(c.jwt.secret, DEV_JWT_SECRET.as_bytes());
    assert_eq!(c.idle_timeout, Duration::from_secs(600));
    assert_eq!(c.max_connection, Duration::from_secs(7200));
    assert!(c.database_url.is_none() && c.dynamodb_endpoint.is_none());

    assert_eq!(c.cors_origins, ["*"]);
    assert_eq!(c.web_dir, None);
    assert_eq!(c.accounts.max_body_bytes, 16 * 1024);

    let temp_dir = std::env::temp_dir().display().to_string();
    let env = |v: &str| match v {
        "HUBBUB_JWT_SECRET" => Some(SECRET.to_owned()),
        "HUBBUB_MAX_BODY_BYTES" => Some("4096".to_owned()),
        _ => None,
    };
    let Ok(Command::Serve(c)) = parse_args(
        args(&[
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--stage",
            "dev",
            "--idle-timeout-secs",
            "5",
            "--max-connection-secs",
            "60",
            "--database-url",
            "postgres://u@h/db",
            "--dynamodb-endpoint",
            "http://127.0.0.1:8000",
            "--cors-origin",
            "http://a.test, http://b.test:8080",
            "--cors-origin",
            "https://c.test",
            "--web-dir",
            temp_dir.as_str(),
        ]),
        &env,
    ) else {
        panic!("flags")
    };
    assert_eq!(
        c.cors_origins,
        ["http://a.test", "http://b.test:8080", "https://c.test"]
    );
    assert_eq!(c.web_dir.as_deref(), Some(std::env::temp_dir().as_path()));
    assert_eq!((c.port, c.stage.as_str()), (0, "dev"));
    assert!(!c.jwt_secret_is_dev_default);
    assert_eq!(c.jwt.secret, SECRET.as_bytes());
    assert_eq!(c.idle_timeout, Duration::from_secs(5));
    assert_eq!(c.max_connection, Duration::from_secs(60));
    assert_eq!(c.database_url.as_deref(), Some("postgres://u@h/db"));
    assert_eq!(c.accounts.max_body_bytes, 4096, "the Lambda's variables");

    let Ok(Command::Token(t)) = parse_args(args(&["token", "--user", "alice"]), &no_env) else {
        panic!("token")
    };
    assert_eq!(
        (t.user_id.as_str(), t.user_name.as_str()),
        ("u-alice", "alice")
    );
    assert!(matches!(
        parse_args(args(&["--help"]), &no_env),
        Ok(Command::Help(text)) if text.contains("--jwt-secret")
    ));
    for bad in [
        &["--port"][..],
        &["--port", "x"],
        &["--stage", "a/b"],
        &["--jwt-secret", "short"],
        &["--idle-timeout-secs", "0"],
        &["--dynamodb-endpoint", "localhost:8000"],
        &["--bogus"],
        &["--cors-origin", "app.test"],
        &["--cors-origin", "http://a.test/path"],
        &["--web-dir", "/nonexistent/hubbub-web"],
        &["token"],
    ] {
        assert!(parse_args(args(bad), &no_env).is_err(), "{bad:?}");
    }
}

fn management_client(endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    let conf = aws_sdk_apigatewaymanagement::config::Builder::from(&hubbub_tests::sdk_config())
        .endpoint_url(endpoint)
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(conf)
}

#[tokio::test]
async fn local_connections_api_with_the_sdk() {
    let server = start(config()).await;
    let mut ws = connect_subprotocol(&server, "alice").await;
    let ids = server.connection_ids();
    let id = ids.first().expect("one connection").clone();
    assert_eq!(id.len(), 16, "API Gateway-style id: {id}");
    assert!(id.ends_with('='));
    let api = management_client(server.management_url());

    // POST: the body arrives as one text frame.
    api.post_to_connection()
        .connection_id(&id)
        .data(Blob::new(r#"{"type":"pong"}"#))
        .send()
        .await
        .expect("post");
    let mut log = Vec::new();
    recv_type(&mut ws, "pong", &mut log).await;

    // Without the stage prefix too.
    let bare = format!("http://{}", server.local_addr());
    management_client(&bare)
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(r#"{"type":"hello"}"#))
        .send()
        .await
        .expect("post without stage");
    recv_type(&mut ws, "hello", &mut log).await;

    // Over 128 KB: 413, and the connection stays.
    let too_big = api
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(vec![b'x'; 128 * 1024 + 1]))
        .send()
        .await
        .expect_err("413");
    assert_eq!(
        too_big.raw_response().map(|r| r.status().as_u16()),
        Some(413)
    );

    // GET: timestamps and identity.
    let info = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("get");
    let identity = info.identity().expect("identity");
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    assert_eq!(identity.user_agent(), Some("hubbub-tests"));
    let connected = info.connected_at().expect("connectedAt").secs();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (now - 60..=now).contains(&connected),
        "{connected} vs {now}"
    );
    assert!(info.last_active_at().expect("lastActiveAt").secs() >= connected);

    // DELETE closes the client; then every call is GoneException.
    api.delete_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("delete");
    assert_eq!(
        close_code(&mut ws).await,
        Some(u16::from(CloseCode::Normal))
    );
    let post = api
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("late"))
        .send()
        .await
        .expect_err("gone");
    assert!(post.into_service_error().is_gone_exception());
    let get = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect_err("gone");
    assert!(get.into_service_error().is_gone_exception());
    // Unsigned requests are refused as API Gateway refuses them.
    let mut raw = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let request = format!(
        "POST /local/@connections/{id} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut raw, request.as_bytes())
        .await
        .expect("write");
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut raw, &mut answer)
        .await
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(
        answer.contains("MissingAuthenticationTokenException"),
        "{answer}"
    );
    // Signed, but on a stage that does not exist: API Gateway's 403 for an unknown stage.
    let mut raw = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let request = format!(
        "DELETE /prod/@connections/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 x\r\nConnection: close\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut raw, request.as_bytes())
        .await
        .expect("write");
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut raw, &mut answer)
        .await
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("ForbiddenException"), "{answer}");
    let del = api
        .delete_connection()
        .connection_id("AAAAAAAAAAAAAAA=")
        .send()
        .await
        .expect_err("gone");
    assert!(del.into_service_error().is_gone_exception());
    server.shutdown().await;
}

#[tokio::test]
async fn local_shutdown_closes_connections_with_1001() {
    let server = start(config()).await;
    let mut a = connect_query(&server, "alice").await;
    let mut b = connect_subprotocol(&server, "bob").await;
    let addr = server.local_addr();
    server.shutdown().await;
    assert_eq!(close_code(&mut a).await, Some(u16::from(CloseCode::Away)));
    assert_eq!(close_code(&mut b).await, Some(u16::from(CloseCode::Away)));
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

// --- the HTTP API and the web client on the same port ---------------------------------------

/// Cheap argon2 costs: the tests hash passwords in unoptimised builds on a shared CPU.
fn http_config() -> Config {
    let mut c = config();
    c.accounts.argon2 = hubbub_core::config::Argon2Config {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    };
    c
}

/// An HTTP answer: status, headers (names lower-case) and body.
#[derive(Debug)]
struct HttpAnswer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl HttpAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Decodes a `transfer-encoding: chunked` body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&raw[..line_end]).expect("chunk size");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("hex chunk size");
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// One HTTP/1.1 request over a fresh TCP connection (`Connection: close`), read to the end.
async fn http(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: hubbub-tests\r\n",
        server.local_addr()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(FRAME_WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("answered in time")
        .expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of the head");
    let head = std::str::from_utf8(&raw[..split]).expect("head is text");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let body = if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    HttpAnswer {
        status,
        headers,
        body,
    }
}

async fn post_json(server: &Server, path: &str, body: Value) -> HttpAnswer {
    http(server, "POST", path, &[], Some(&body.to_string())).await
}

async fn get_bearer(server: &Server, path: &str, token: &str) -> HttpAnswer {
    let auth = format!("Bearer {token}");
    http(server, "GET", path, &[("Authorization", &auth)], None).await
}

const PASSWORD: &str = "correct horse battery";

/// Registers `name` and returns the session (201).
async fn register(server: &Server, prefix: &str, name: &str) -> Value {
    let resp = post_json(
        server,
        &format!("{prefix}/auth/register"),
        json!({"username": name, "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        resp.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&resp.body)
    );
    resp.json()
}

/// Logs `name` in and returns the session (200).
async fn login(server: &Server, name: &str) -> Value {
    let resp = post_json(
        server,
        "/auth/login",
        json!({"username": name, "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        resp.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&resp.body)
    );
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    resp.json()
}

/// Accounts over HTTP, then chat over WebSocket with the access tokens login issued, then
/// the history over HTTP again: one set of stores and one JWT secret behind both APIs.
async fn http_then_websocket_scenario(server: &Server) {
    let alice = register(server, "", "alice").await;
    register(server, "", "bob").await;
    let wrong = post_json(
        server,
        "/auth/login",
        json!({"username": "alice", "password": "not the password"}),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"]["code"], "unauthorized");
    let alice_login = login(server, "alice").await;
    let bob_login = login(server, "bob").await;
    assert_eq!(alice_login["user"], alice["user"]);
    let alice_token = alice_login["accessToken"].as_str().expect("accessToken");
    let bob_token = bob_login["accessToken"].as_str().expect("accessToken");

    // The access tokens open WebSockets: in the query string and as a subprotocol.
    let (mut a, _) =
        tokio_tungstenite::connect_async(format!("{}/?token={alice_token}", server.ws_url()))
            .await
            .expect("alice connects with her login token");
    let mut req = format!("{}/{}", server.ws_url(), server.config().stage)
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(&format!("hubbub.v1, bearer.{bob_token}")).expect("header"),
    );
    let (mut b, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("bob connects with his login token");
    let mut log = Vec::new();
    for ws in [&mut a, &mut b] {
        send(ws, json!({"action":"joinRoom","room":"general"})).await;
        recv_type(ws, "joined", &mut log).await;
    }
    send(
        &mut a,
        json!({"action":"sendMessage","room":"general","body":"hi bob","clientMsgId":"m-1"}),
    )
    .await;
    let ack = recv_type(&mut a, "ack", &mut log).await;
    assert_eq!(ack["seq"], 1);
    let msg = recv_type(&mut b, "message", &mut log).await;
    assert_eq!(msg["body"], "hi bob");
    assert_eq!(
        msg["sender"], alice["user"],
        "the sender is the registered user"
    );

    // The message is in the history the HTTP API reads.
    let history = get_bearer(server, "/rooms/general/messages?after=0", bob_token).await;
    assert_eq!(history.status, 200, "{:?}", history.json());
    let messages = history.json()["messages"].clone();
    assert_eq!(messages.as_array().map(Vec::len), Some(1), "{messages}");
    assert_eq!(messages[0]["body"], "hi bob");
    assert_eq!(messages[0]["id"], ack["id"]);
    let rooms = get_bearer(server, "/rooms", alice_token).await;
    assert_eq!(rooms.status, 200);
    assert!(
        rooms.json()["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .any(|r| r["id"] == "general"),
        "{:?}",
        rooms.json()
    );
    a.close(None).await.expect("close");
    b.close(None).await.expect("close");
}

#[tokio::test]
async fn local_http_register_login_then_chat() {
    let server = start(http_config()).await;
    http_then_websocket_scenario(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn local_http_register_login_then_chat_on_postgres() {
    let (history, url) = hubbub_tests::fresh_history().await;
    drop(history);
    let mut c = http_config();
    c.database_url = Some(url);
    let server = start(c).await;
    assert_eq!(server.stores().history, "PostgreSQL");
    http_then_websocket_scenario(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn local_http_refresh_rotation() {
    let server = start(http_config()).await;
    let session = register(&server, "", "carol").await;
    let first = session["refreshToken"].as_str().expect("refreshToken");
    let rotated = post_json(&server, "/auth/refresh", json!({"refreshToken": first})).await;
    assert_eq!(rotated.status, 200);
    let rotated = rotated.json();
    let second = rotated["refreshToken"].as_str().expect("refreshToken");
    assert_ne!(first, second, "refresh rotates the refresh token");
    assert_eq!(rotated["user"], session["user"]);
    // The new access token works on an authenticated route.
    let rooms = get_bearer(
        &server,
        "/rooms",
        rotated["accessToken"].as_str().expect("accessToken"),
    )
    .await;
    assert_eq!(rooms.status, 200);
    // Reusing the spent token is refused and revokes the whole family.
    let reuse = post_json(&server, "/auth/refresh", json!({"refreshToken": first})).await;
    assert_eq!(reuse.status, 401);
    let after = post_json(&server, "/auth/refresh", json!({"refreshToken": second})).await;
    assert_eq!(after.status, 401, "the family was revoked");
    // A new login's token logs out, after which it is refused.
    let fresh = login(&server, "carol").await;
    let token = fresh["refreshToken"].as_str().expect("refreshToken");
    let out = post_json(&server, "/auth/logout", json!({"refreshToken": token})).await;
    assert_eq!(out.status, 204);
    assert!(out.body.is_empty());
    let gone = post_json(&server, "/auth/refresh", json!({"refreshToken": token})).await;
    assert_eq!(gone.status, 401);
    server.shutdown().await;
}

#[tokio::test]
async fn local_http_stage_prefix_and_gateway_answers() {
    let server = start(http_config()).await;
    let stage = server.config().stage.clone();
    for path in ["/health".to_owned(), format!("/{stage}/health")] {
        let resp = http(&server, "GET", &path, &[], None).await;
        assert_eq!(resp.status, 200, "{path}");
        assert_eq!(resp.json(), json!({"status": "ok"}));
        assert_eq!(resp.header("apigw-requestid").map(str::len), Some(16));
    }
    // Register under the stage, log in without it: the same API.
    register(&server, &format!("/{stage}"), "dave").await;
    login(&server, "dave").await;
    // The handler's errors carry the request id API Gateway answers with.
    let anonymous = http(&server, "GET", &format!("/{stage}/rooms"), &[], None).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.json()["error"]["requestId"].as_str(),
        anonymous.header("apigw-requestid")
    );
    // No route: API Gateway's own 404, the function is not invoked.
    for (method, path) in [
        ("GET", "/prod/health"),
        ("DELETE", "/rooms"),
        ("GET", "/auth/login"),
        ("POST", "/auth/whoami"),
        ("GET", "/rooms/general"),
    ] {
        let resp = http(&server, method, path, &[], None).await;
        assert_eq!(resp.status, 404, "{method} {path}");
        assert_eq!(
            resp.json(),
            json!({"message": "Not Found"}),
            "{method} {path}"
        );
    }
    // The body limit is the handler's: over it, its 413.
    let big = json!({"username": "x".repeat(20 * 1024), "password": PASSWORD}).to_string();
    let resp = http(&server, "POST", "/auth/register", &[], Some(&big)).await;
    assert_eq!(resp.status, 413);
    assert_eq!(resp.json()["error"]["code"], "payload_too_large");
    server.shutdown().await;
}

#[tokio::test]
async fn local_http_cors() {
    let server = start(http_config()).await;
    let preflight = [
        ("Origin", "http://localhost:5173"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "content-type"),
    ];
    for path in ["/auth/login", "/local/rooms/general/messages"] {
        let resp = http(&server, "OPTIONS", path, &preflight, None).await;
        assert_eq!(resp.status, 204, "{path}");
        assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            resp.header("access-control-allow-methods"),
            Some("GET,POST")
        );
        assert_eq!(
            resp.header("access-control-allow-headers"),
            Some("authorization,content-type")
        );
        assert_eq!(resp.header("access-control-max-age"), Some("600"));
    }
    let resp = http(
        &server,
        "GET",
        "/health",
        &[("Origin", "http://localhost:5173")],
        None,
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    server.shutdown().await;

    // A list of origins: a listed origin is echoed, another gets no CORS headers.
    let mut c = http_config();
    c.cors_origins = vec!["http://app.test".into()];
    let server = start(c).await;
    let allowed = [
        ("Origin", "http://app.test"),
        ("Access-Control-Request-Method", "GET"),
    ];
    let resp = http(&server, "OPTIONS", "/rooms", &allowed, None).await;
    assert_eq!(resp.status, 204);
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("http://app.test")
    );
    assert_eq!(resp.header("vary"), Some("origin"));
    let other = [
        ("Origin", "http://evil.test"),
        ("Access-Control-Request-Method", "GET"),
    ];
    let resp = http(&server, "OPTIONS", "/rooms", &other, None).await;
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("access-control-allow-origin"), None);
    assert_eq!(resp.header("access-control-allow-methods"), None);
    let resp = http(
        &server,
        "GET",
        "/health",
        &[("Origin", "http://evil.test")],
        None,
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("access-control-allow-origin"), None);
    server.shutdown().await;
}

#[tokio::test]
async fn local_web_client_is_served() {
    let dir = std::env::temp_dir().join(format!("hubbub-local-web-{}", uuid::Uuid::new_v4()));
    let write = |rel: &str, contents: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("folder");
        std::fs::write(path, contents).expect("file");
    };
    let index = "<!doctype html><title>hubbub test client</title>";
    write("index.html", index);
    write("app.js", "console.log('hi');");
    write("room-state.js", "export const x = 1;");
    write("img/logo.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>");
    write("lib/deep/mod.mjs", "export default 1;");
    // What only the tests use is not served, though it is there.
    write("e2e/harness.mjs", "secret");
    write("test/room-state.test.mjs", "secret");
    write("node_modules/x/index.js", "secret");
    write("lib/node_modules/y.js", "secret");
    write("package.json", "{}");
    write("room-state.test.mjs", "secret");
    write(".env", "secret");
    let mut c = http_config();
    c.web_dir = Some(dir.clone());
    let server = start(c).await;

    for path in ["/", "/index.html"] {
        let resp = http(&server, "GET", path, &[], None).await;
        assert_eq!(resp.status, 200, "{path}");
        assert_eq!(
            resp.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(resp.header("cache-control"), Some("no-cache"));
        assert_eq!(resp.body, index.as_bytes());
    }
    for (path, content_type, body) in [
        (
            "/app.js",
            "text/javascript; charset=utf-8",
            "console.log('hi');",
        ),
        (
            "/room-state.js",
            "text/javascript; charset=utf-8",
            "export const x = 1;",
        ),
        (
            "/img/logo.svg",
            "image/svg+xml",
            "<svg xmlns='http://www.w3.org/2000/svg'/>",
        ),
        (
            "/lib/deep/mod.mjs",
            "text/javascript; charset=utf-8",
            "export default 1;",
        ),
    ] {
        let resp = http(&server, "GET", path, &[], None).await;
        assert_eq!(resp.status, 200, "{path}");
        assert_eq!(resp.header("content-type"), Some(content_type), "{path}");
        assert_eq!(resp.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(resp.body, body.as_bytes(), "{path}");
    }
    // Edited on disk: served without a restart.
    write("app.js", "console.log('edited');");
    let js = http(&server, "GET", "/app.js", &[], None).await;
    assert_eq!(js.body, b"console.log('edited');");
    // Missing, a folder, test files, hidden, or outside the folder: 404.
    for path in [
        "/style.css",
        "/favicon.ico",
        "/js/app.js",
        "/img",
        "/img/",
        "/e2e/harness.mjs",
        "/test/room-state.test.mjs",
        "/node_modules/x/index.js",
        "/lib/node_modules/y.js",
        "/package.json",
        "/room-state.test.mjs",
        "/.env",
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/..%2FCargo.toml",
        "/img/..%2F..%2FCargo.toml",
    ] {
        let resp = http(&server, "GET", path, &[], None).await;
        assert_eq!(resp.status, 404, "{path}");
        assert_ne!(resp.body, b"secret", "{path}");
    }
    // Only reads: anything else at a file's path is API Gateway's 404.
    let resp = http(&server, "POST", "/img/logo.svg", &[], None).await;
    assert_eq!(resp.status, 404);
    // `/` with an Upgrade header is still the WebSocket endpoint, and so is `/{stage}`.
    let mut ws = connect_query(&server, "alice").await;
    send(&mut ws, json!({"action":"ping"})).await;
    recv_type(&mut ws, "pong", &mut Vec::new()).await;
    assert_eq!(refused_status(&format!("{}/", server.ws_url())).await, 401);
    let mut ws = connect_subprotocol(&server, "bob").await;
    send(&mut ws, json!({"action":"ping"})).await;
    recv_type(&mut ws, "pong", &mut Vec::new()).await;
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).expect("remove temp dir");

    // Without --web-dir: the files compiled in, which are every client file of web/ (modules
    // included, tests not) with the content type of its extension.
    let server = start(http_config()).await;
    let embedded = hubbub_local::web::embedded_files();
    for name in [
        "index.html",
        "app.js",
        "room-state.js",
        "socket.js",
        "view.js",
        "style.css",
    ] {
        assert!(embedded.contains(&name), "{name} is built in: {embedded:?}");
    }
    for name in &embedded {
        assert!(hubbub_local::web::is_client_file(name), "{name}");
        assert!(
            !name.starts_with("e2e/") && !name.starts_with("test/") && *name != "package.json",
            "{name} is not part of the client"
        );
        let resp = http(&server, "GET", &format!("/{name}"), &[], None).await;
        assert_eq!(resp.status, 200, "{name}");
        assert_eq!(
            resp.header("content-type"),
            Some(hubbub_local::web::content_type(name)),
            "{name}"
        );
        assert_eq!(resp.header("cache-control"), Some("no-cache"));
        assert!(!resp.body.is_empty(), "{name}");
    }
    for path in [
        "/e2e/harness.mjs",
        "/test/room-state.test.mjs",
        "/package.json",
    ] {
        let resp = http(&server, "GET", path, &[], None).await;
        assert_eq!(resp.status, 404, "{path}");
    }
    server.shutdown().await;
}

#[test]
fn local_http_events_have_the_shape_of_the_samples() {
    use hubbub_local::events::{HttpRequestMeta, http_api, http_api_json};
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;

    let mut headers = axum::http::HeaderMap::new();
    for (k, v) in [
        ("host", "127.0.0.1:3001"),
        ("accept", "application/json"),
        ("content-type", "application/json"),
        ("content-length", "52"),
        ("user-agent", "curl/8.5.0"),
        ("connection", "keep-alive"),
    ] {
        headers.insert(k, v.parse().expect("header"));
    }
    let body = br#"{"username":"alice","password":"correct horse battery"}"#;
    let matched = hubbub_local::http::match_route("POST", "/auth/login", "local").expect("route");
    assert_eq!(matched.route_key, "POST /auth/login");
    assert_eq!(matched.stage, "$default");
    let meta = HttpRequestMeta {
        method: "POST",
        raw_path: "/auth/login",
        raw_query: None,
        protocol: "HTTP/1.1",
        source_ip: "203.0.113.42",
        port: 3001,
        domain_name: "127.0.0.1:3001",
        stage: &matched.stage,
        route_key: &matched.route_key,
        path_parameters: &matched.path_parameters,
        request_id: "XyZ1bHiDjoEEKcR=",
        api_id: "hubbublcl1",
        account_id: "000000000000",
        now_ms: 1_768_469_390_000,
    };
    let login = http_api_json(&meta, &headers, body);
    let sample = hubbub_tests::events::raw("http-login");
    assert_eq!(keys(&login), keys(&sample), "top level");
    assert_eq!(
        keys(&login["requestContext"]),
        keys(&sample["requestContext"])
    );
    assert_eq!(
        keys(&login["requestContext"]["http"]),
        keys(&sample["requestContext"]["http"])
    );
    assert_eq!(keys(&login["headers"]), keys(&sample["headers"]));
    assert_eq!(
        login["requestContext"]["time"],
        "15/Jan/2026:09:29:50 +0000"
    );

    // A named stage, path parameters and a query string.
    let matched = hubbub_local::http::match_route("GET", "/local/rooms/general/messages", "local")
        .expect("route");
    assert_eq!(matched.route_key, "GET /rooms/{room}/messages");
    assert_eq!(matched.stage, "local");
    let meta = HttpRequestMeta {
        method: "GET",
        raw_path: "/local/rooms/general/messages",
        raw_query: Some("after=0&limit=20"),
        stage: &matched.stage,
        route_key: &matched.route_key,
        path_parameters: &matched.path_parameters,
        ..meta
    };
    let mut get_headers = headers.clone();
    get_headers.remove("content-type");
    get_headers.remove("content-length");
    let messages = http_api_json(&meta, &get_headers, b"");
    let sample = hubbub_tests::events::raw("http-messages");
    let mut want = keys(&sample);
    want.retain(|k| k != "body");
    assert_eq!(keys(&messages), want, "top level");
    assert_eq!(messages["pathParameters"], json!({"room": "general"}));
    assert_eq!(
        messages["queryStringParameters"],
        json!({"after": "0", "limit": "20"})
    );

    // lambda_http turns it into the request the handler reads.
    let req = http_api(&meta, &get_headers, b"").expect("request");
    assert_eq!(req.uri().path(), "/local/rooms/general/messages");
    assert_eq!(req.uri().query(), Some("after=0&limit=20"));
    let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
        panic!("not an HTTP API request context")
    };
    assert_eq!(ctx.request_id.as_deref(), Some("XyZ1bHiDjoEEKcR="));
    assert_eq!(ctx.http.source_ip.as_deref(), Some("203.0.113.42"));
    assert_eq!(ctx.stage.as_deref(), Some("local"));
    assert_eq!(ctx.route_key.as_deref(), Some("GET /rooms/{room}/messages"));
    assert!(req.headers().get("connection").is_none(), "no hop headers");
}

/// A client that vanishes without a close frame is disconnected by the emulator (the
/// room hears it left), and a connection whose `$disconnect` never ran (left behind in the
/// table) is removed by fan-out as soon as a post to it answers 410.
#[tokio::test]
async fn local_vanished_clients_are_cleaned_up() {
    let (server, store) = start_on_postgres_and_dynamodb().await;
    let general = hubbub_tests::contract::room("general");

    let mut log = Vec::new();
    let mut alice = connect_query(&server, "alice").await;
    send(&mut alice, json!({"action":"joinRoom","room":"general"})).await;
    recv_type(&mut alice, "joined", &mut log).await;
    let mut bob = connect_subprotocol(&server, "bob").await;
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!store.is_member(&stale.id, &general).await.expect("member"));
    server.shutdown().await;
}

/// A client that reconnects catches up with `history` after the last seq it saw.
#[tokio::test]
async fn local_history_after_reconnect() {
    let server = start(config()).await;
    let mut log = Vec::new();
    let mut alice = connect_query(&server, "alice").await;
    let mut bob = connect_query(&server, "bob").await;
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

    let mut bob = connect_subprotocol(&server, "bob").await;
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
