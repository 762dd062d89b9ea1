//! [`TestLocal`]: hubbub-local on port 0 over chosen stores, with the clients a test needs
//! (HTTP through hyper's pooled client, WebSocket through tokio-tungstenite) and the frame
//! receive helpers every end-to-end test shares.

use std::collections::HashMap;
use std::ops::Deref;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hubbub_core::auth::JwtIssuer;
use hubbub_core::store::dynamodb::DynamoConnectionStore;
use hubbub_local::{Config, Server};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::settings::{PASSWORD, cheap_argon2, jwt_config};

/// How long a test waits for a frame (or an HTTP answer) that must come: generous, because
/// unoptimised builds share two cores with other test binaries.
pub const FRAME_WAIT: Duration = Duration::from_secs(10);
/// How long a client must stay quiet to count as having received everything.
pub const QUIET: Duration = Duration::from_millis(500);

/// A connected WebSocket client.
pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An access token of hubbub's own issuer for user `u-{name}`, for `audience`.
pub fn token_for(name: &str, audience: &str) -> String {
    JwtIssuer::hs256(&jwt_config(audience))
        .expect("issuer")
        .issue(&format!("u-{name}"), name, time::Duration::minutes(15))
        .expect("token")
}

/// An access token for `name` with the default audience.
pub fn token(name: &str) -> String {
    token_for(name, "hubbub")
}

/// Which stores the server runs over.
pub enum Stores {
    /// Both in memory (the emulator's default).
    Memory,
    /// History on a fresh PostgreSQL database, connections in a fresh table of the
    /// DynamoDB-compatible server.
    PostgresAndDynamo,
}

/// hubbub-local on an ephemeral port, with clients for both of its APIs.
pub struct TestLocal {
    server: Server,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    /// The connection table behind the server's back (PostgreSQL/DynamoDB only).
    pub connections: Option<DynamoConnectionStore>,
}

impl Deref for TestLocal {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl TestLocal {
    /// The test config: port 0, the shared JWT config, cheap argon2, memory stores.
    pub fn config() -> Config {
        let mut c = Config::new(jwt_config("hubbub"));
        c.port = 0;
        c.accounts.argon2 = cheap_argon2();
        c
    }

    /// The default config over memory stores.
    pub async fn start() -> Self {
        Self::with_config(Self::config()).await
    }

    /// `config` over memory stores (or whatever stores it names).
    pub async fn with_config(config: Config) -> Self {
        Self::over(Stores::Memory, config).await
    }

    /// `config` over `stores`: port 0 always, and for real stores a fresh database and table.
    pub async fn over(stores: Stores, mut config: Config) -> Self {
        let connections = match stores {
            Stores::Memory => None,
            Stores::PostgresAndDynamo => {
                let (db, url) = crate::migrated_database().await;
                drop(db);
                // A fresh table; the server creates it (the helper's store is only a reader).
                let table = format!("hubbub-local-{}", uuid::Uuid::new_v4().simple());
                config.database_url = Some(url);
                config.dynamodb_endpoint =
                    Some(crate::service_var("HUBBUB_TEST_DYNAMODB_ENDPOINT"));
                config.dynamodb_table = table.clone();
                // moto keeps tables per region: the harness's client reads in its region.
                config.region = crate::REGION.to_owned();
                Some(DynamoConnectionStore::new(crate::dynamodb_client(), table))
            }
        };
        config.port = 0;
        let server = Server::start(config).await.expect("hubbub-local starts");
        let http = HttpClient::builder(TokioExecutor::new()).build_http();
        Self {
            server,
            http,
            connections,
        }
    }

    /// The connection table behind the server (PostgreSQL/DynamoDB only).
    pub fn connection_store(&self) -> &DynamoConnectionStore {
        self.connections
            .as_ref()
            .expect("started over PostgreSQL and DynamoDB")
    }

    /// Stops the server (open connections are closed with 1001).
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }

    /// Connects `user` with `?token=`.
    pub async fn ws(&self, user: &str) -> Client {
        self.ws_token(&token(user)).await
    }

    /// Connects with `?token=` and an access token of the caller's making (an expired one, or
    /// one from `POST /auth/login`).
    pub async fn ws_token(&self, access_token: &str) -> Client {
        let url = format!("{}/?token={access_token}", self.ws_url());
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("handshake");
        ws
    }

    /// Connects users `{prefix}0` .. `{prefix}{n-1}` and joins each to `room`.
    pub async fn joined(&self, prefix: &str, n: usize, room: &str) -> Vec<Client> {
        let mut clients = Vec::with_capacity(n);
        for i in 0..n {
            let mut ws = self.ws(&format!("{prefix}{i}")).await;
            send(&mut ws, json!({"action":"joinRoom","room":room})).await;
            recv_type(&mut ws, "joined", &mut Vec::new()).await;
            clients.push(ws);
        }
        clients
    }

    /// Connects `user` to `/{stage}` offering `hubbub.v1, bearer.<jwt>`; the answer must pick
    /// `hubbub.v1`.
    pub async fn ws_subprotocol(&self, user: &str) -> Client {
        let url = format!("{}/{}", self.ws_url(), self.config().stage);
        let mut req = url.into_client_request().expect("request");
        let offer = format!("hubbub.v1, bearer.{}", token(user));
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

    /// One HTTP request to the server; a body goes with a JSON content type unless `headers`
    /// name one.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> HttpAnswer {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.http_url()))
            .header("user-agent", "hubbub-tests");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let typed = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !typed {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
            .expect("request");
        let resp = tokio::time::timeout(FRAME_WAIT, async {
            let resp = self.http.request(req).await.expect("HTTP request");
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        v.to_str().expect("header is text").to_owned(),
                    )
                })
                .collect();
            let body = resp
                .into_body()
                .collect()
                .await
                .expect("read body")
                .to_bytes()
                .to_vec();
            HttpAnswer {
                status,
                headers,
                body,
            }
        })
        .await;
        resp.expect("answered in time")
    }

    /// `GET path` (with a bearer token when given): status and JSON body.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        let a = self.request("GET", path, &headers, None).await;
        (a.status, a.json())
    }

    /// `POST path` with a JSON body: status and JSON body (`null` when empty).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let a = self
            .request("POST", path, &[], Some(&body.to_string()))
            .await;
        let json = if a.body.is_empty() {
            Value::Null
        } else {
            a.json()
        };
        (a.status, json)
    }

    /// Registers `name` under `prefix` (a stage path or "") and returns the session (201).
    pub async fn register_at(&self, prefix: &str, name: &str) -> Value {
        let (status, body) = self
            .post(
                &format!("{prefix}/auth/register"),
                json!({"username": name, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Registers `name` and returns the session (201).
    pub async fn register(&self, name: &str) -> Value {
        self.register_at("", name).await
    }

    /// Logs `name` in and returns the session (200, never cached).
    pub async fn login(&self, name: &str) -> Value {
        let resp = self
            .request(
                "POST",
                "/auth/login",
                &[],
                Some(&json!({"username": name, "password": PASSWORD}).to_string()),
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
}

/// An HTTP answer: status, headers (names lower-case) and body.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// A header's value (`name` lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as JSON (panics, showing the body, when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// The handshake's HTTP status when it fails.
pub async fn refused_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected the handshake to be refused"),
    }
}

/// Sends one JSON text frame.
pub async fn send(ws: &mut Client, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .expect("send");
}

/// The next data frame as JSON, or the close frame, within `wait`.
pub async fn next_frame(ws: &mut Client, wait: Duration) -> Option<Result<Value, Option<u16>>> {
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

/// The seqs a pushed frame carries: one for `message`, several for a coalesced `messages`,
/// none for any other frame.
pub fn message_seqs(frame: &Value) -> Vec<i64> {
    match frame["type"].as_str() {
        Some("message") => vec![frame["seq"].as_i64().expect("seq")],
        Some("messages") => frame["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["seq"].as_i64().expect("seq"))
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads frames into `log` until one of type `ty` arrives, and returns it.
pub async fn recv_type(ws: &mut Client, ty: &str, log: &mut Vec<Value>) -> Value {
    loop {
        match next_frame(ws, FRAME_WAIT).await {
            Some(Ok(v)) if v["type"] == ty => return v,
            Some(Ok(v)) => log.push(v),
            other => panic!("waiting for a `{ty}` frame, got {other:?} after {log:?}"),
        }
    }
}

/// Every data frame until the client has been quiet for [`QUIET`].
pub async fn drain(ws: &mut Client, log: &mut Vec<Value>) {
    while let Some(Ok(v)) = next_frame(ws, QUIET).await {
        log.push(v);
    }
}

/// The `left` list of the next presence frame that has one (presence frames of earlier
/// windows, which only list joins, are skipped).
pub async fn recv_presence_left(ws: &mut Client, log: &mut Vec<Value>) -> Value {
    loop {
        let f = recv_type(ws, "presence", log).await;
        if f["left"].as_array().is_some_and(|l| !l.is_empty()) {
            return f["left"].clone();
        }
    }
}

/// The close code the client receives next (frames before it are skipped).
pub async fn close_code(ws: &mut Client) -> Option<u16> {
    loop {
        match next_frame(ws, FRAME_WAIT).await {
            Some(Ok(_)) => continue,
            Some(Err(code)) => return code,
            None => panic!("the connection was not closed"),
        }
    }
}
