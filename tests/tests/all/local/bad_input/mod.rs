//! The bad-input catalogue: one table of malformed, oversized, unauthorized and unknown
//! WebSocket frames, handshakes and HTTP requests ([`ws_rows`], [`http_rows`]), each with the
//! stable answer docs/protocol.md gives it, run against hubbub-local on memory stores.
//!
//! Every row also checks that the answer never echoes the input: inputs carry [`MARK`], a
//! distinctive string, wherever the client's text could be quoted back (a value, an unknown
//! field's name, an action, a token, a path), and no answer may contain it.

mod http_rows;
mod ws_rows;

use futures::SinkExt;
use hubbub_core::auth::{Claims, JwtIssuer};
use hubbub_tests::local::{
    Client, FRAME_WAIT, TestLocal, next_frame, recv_type, send, token, token_for,
};
use hubbub_tests::settings::jwt_config;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// The string no answer may contain. Upper case and 31 characters: not a room id, and longer
/// than any field name a message could rightly quote.
pub const MARK: &str = "EchoMark-Q7Zp3Kx9-NeverEchoed-1";
/// A public room that exists (the rows' caller has not joined it unless a row says so).
pub const LOBBY: &str = "bad-input-lobby";
/// A private room of another user.
pub const PRIVATE: &str = "bad-input-private";
/// A room that never exists (no row joins it).
pub const MISSING: &str = "bad-input-missing";
/// Another user's private room of which the caller is a plain member (not an owner).
pub const SHARED: &str = "bad-input-shared";

/// What a row sends.
pub enum Input {
    /// A text frame from a fresh connection of the caller, after joining `join`; sent
    /// `times` times (the answer is the first error frame).
    Frame {
        text: String,
        join: Option<&'static str>,
        times: usize,
    },
    /// A binary frame from a fresh connection.
    Binary(Vec<u8>),
    /// A text frame from a fresh connection whose access token expires, within the 30 s
    /// leeway the handshake and the routes allow, while it is open: the frame is sent once
    /// the leeway has passed too.
    FrameAfterExpiry { text: String },
    /// A WebSocket handshake to `path_and_query`, offering `protocol`.
    Handshake {
        path_and_query: String,
        protocol: Option<String>,
    },
    /// An HTTP request, sent `times` times (the answer is the last one); a body goes with
    /// `content_type` (`application/json` when `None`).
    Http {
        method: &'static str,
        path: String,
        authorization: Option<String>,
        content_type: Option<&'static str>,
        /// A `Host` header other than the server's address.
        host: Option<&'static str>,
        body: Option<String>,
        times: usize,
    },
}

/// The answer a row must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// An error frame with this `code`.
    Frame(&'static str),
    /// The connection is closed with this close code.
    Close(u16),
    /// The handshake is refused with this HTTP status.
    Refused(u16),
    /// An HTTP error answer: this status and `error.code`.
    Error(u16, &'static str),
    /// API Gateway's own answer (hubbub-local's emulation): this status and a top-level
    /// `message`; the function is not invoked.
    Gateway(u16),
    /// A success status with no error body (a documented non-error).
    Status(u16),
}

/// One catalogue entry.
pub struct Row {
    pub name: &'static str,
    pub input: Input,
    pub expect: Expect,
}

/// The tokens the rows present: the caller's, and refused ones of every kind.
pub struct Tokens {
    pub valid: String,
    pub expired: String,
    pub wrong_signature: String,
    pub wrong_issuer: String,
    pub wrong_audience: String,
    pub alg_none: String,
}

impl Tokens {
    fn new() -> Self {
        let issuer = JwtIssuer::hs256(&jwt_config("hubbub")).expect("issuer");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = |exp: i64| Claims {
            exp,
            ..issuer.claims("u-mallory", "mallory", time::Duration::minutes(15))
        };
        let foreign = Claims {
            iss: "someone-else".into(),
            ..claims(now + 900)
        };
        let mut other_secret = jwt_config("hubbub");
        other_secret.secret = b"another-secret-entirely-32-bytes!".to_vec();
        let sign = |cfg, c: &Claims| {
            JwtIssuer::hs256(cfg)
                .expect("issuer")
                .sign(c)
                .expect("sign")
        };
        let payload = &token("mallory")
            .split('.')
            .nth(1)
            .expect("a payload")
            .to_owned();
        Self {
            valid: token("mallory"),
            // Well past the 30 s leeway.
            expired: issuer.sign(&claims(now - 3600)).expect("sign"),
            wrong_signature: sign(&other_secret, &claims(now + 900)),
            wrong_issuer: issuer.sign(&foreign).expect("sign"),
            wrong_audience: token_for("mallory", "someone-elses-api"),
            // {"alg":"none"} with the valid payload and no signature.
            alg_none: format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."),
        }
    }
}

/// What came back: a summary to compare and the raw text for the echo check.
struct Answer {
    got: Result<Expect, String>,
    raw: String,
}

/// A fresh WebSocket connection of the caller.
async fn connect(server: &TestLocal, access_token: &str) -> Client {
    server.ws_token(access_token).await
}

/// Reads until an error frame or a close: what a refused frame got.
async fn refusal(ws: &mut Client) -> Answer {
    loop {
        match next_frame(ws, FRAME_WAIT).await {
            Some(Ok(v)) if v["type"] == "error" => {
                return Answer {
                    got: v["code"]
                        .as_str()
                        .map(|c| Expect::Frame(leak(c)))
                        .ok_or_else(|| format!("an error frame without code: {v}")),
                    raw: v.to_string(),
                };
            }
            Some(Ok(_)) => continue,
            Some(Err(code)) => {
                return Answer {
                    got: code
                        .map(Expect::Close)
                        .ok_or_else(|| "closed without a close code".to_owned()),
                    raw: String::new(),
                };
            }
            None => {
                return Answer {
                    got: Err("no answer".into()),
                    raw: String::new(),
                };
            }
        }
    }
}

/// Codes are compared as `&'static str`; the handful a run sees are leaked once.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

async fn run(server: &TestLocal, tokens: &Tokens, input: &Input) -> Answer {
    match input {
        Input::Frame { text, join, times } => {
            let mut ws = connect(server, &tokens.valid).await;
            if let Some(room) = join {
                send(&mut ws, json!({"action": "joinRoom", "room": room})).await;
                recv_type(&mut ws, "joined", &mut Vec::new()).await;
            }
            for _ in 0..*times {
                ws.send(Message::Text(text.clone().into()))
                    .await
                    .expect("send");
            }
            refusal(&mut ws).await
        }
        Input::Binary(bytes) => {
            let mut ws = connect(server, &tokens.valid).await;
            ws.send(Message::Binary(bytes.clone().into()))
                .await
                .expect("send");
            refusal(&mut ws).await
        }
        Input::FrameAfterExpiry { text } => {
            let issuer = JwtIssuer::hs256(&jwt_config("hubbub")).expect("issuer");
            let claims = issuer.claims("u-mallory", "mallory", time::Duration::minutes(15));
            // Expired 27 s ago: inside the 30 s leeway for the handshake, past it 4 s later.
            let exp = OffsetDateTime::now_utc().unix_timestamp() - 27;
            let token = issuer.sign(&Claims { exp, ..claims }).expect("sign");
            let mut ws = connect(server, &token).await;
            tokio::time::sleep(std::time::Duration::from_secs(4)).await;
            ws.send(Message::Text(text.clone().into()))
                .await
                .expect("send");
            refusal(&mut ws).await
        }
        Input::Handshake {
            path_and_query,
            protocol,
        } => {
            let mut req = format!("{}{path_and_query}", server.ws_url())
                .into_client_request()
                .expect("request");
            if let Some(p) = protocol {
                req.headers_mut().insert(
                    "Sec-WebSocket-Protocol",
                    HeaderValue::from_str(p).expect("header"),
                );
            }
            match tokio_tungstenite::connect_async(req).await {
                Err(WsError::Http(resp)) => Answer {
                    got: Ok(Expect::Refused(resp.status().as_u16())),
                    raw: String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default())
                        .into_owned(),
                },
                Err(e) => Answer {
                    got: Err(format!("the handshake failed otherwise: {e}")),
                    raw: String::new(),
                },
                Ok((mut ws, _)) => {
                    let _ = ws.close(None).await;
                    Answer {
                        got: Err("the handshake was accepted".into()),
                        raw: String::new(),
                    }
                }
            }
        }
        Input::Http {
            method,
            path,
            authorization,
            content_type,
            host,
            body,
            times,
        } => {
            let mut headers: Vec<(&str, &str)> = Vec::new();
            if let Some(h) = host {
                headers.push(("host", h));
            }
            if let Some(a) = authorization {
                headers.push(("authorization", a));
            }
            if let (Some(ct), Some(_)) = (content_type, body) {
                headers.push(("content-type", ct));
            }
            let mut last = None;
            for _ in 0..*times {
                last = Some(
                    server
                        .request(method, path, &headers, body.as_deref())
                        .await,
                );
            }
            let a = last.expect("sent at least once");
            let raw = String::from_utf8_lossy(&a.body).into_owned();
            let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
            let got = if let Some(code) = v["error"]["code"].as_str() {
                Ok(Expect::Error(a.status, leak(code)))
            } else if v["message"].is_string() {
                Ok(Expect::Gateway(a.status))
            } else if a.status < 300 {
                Ok(Expect::Status(a.status))
            } else {
                Err(format!("status {} with body {raw:?}", a.status))
            };
            Answer { got, raw }
        }
    }
}

/// Messages of [`LOBBY`] the rows refer to.
pub struct Seqs {
    /// Another user's message.
    pub others: i64,
    /// The caller's own message, deleted.
    pub deleted: i64,
}

/// Joins `user` to [`LOBBY`], posts a message, and returns the connection and its `seq`.
async fn post_in_lobby(server: &TestLocal, user: &str) -> (Client, i64) {
    let mut ws = connect(server, &token(user)).await;
    send(&mut ws, json!({"action": "joinRoom", "room": LOBBY})).await;
    recv_type(&mut ws, "joined", &mut Vec::new()).await;
    let id = format!("{user}-fixture");
    send(
        &mut ws,
        json!({"action": "sendMessage", "room": LOBBY, "body": "fixture", "clientMsgId": id}),
    )
    .await;
    let ack = recv_type(&mut ws, "ack", &mut Vec::new()).await;
    (ws, ack["seq"].as_i64().expect("an ack has a seq"))
}

/// The rooms the rows refer to: [`LOBBY`] public, [`PRIVATE`] another user's private room,
/// [`SHARED`] another user's private room with the caller as a member; and the messages
/// ([`Seqs`]).
async fn fixture(server: &TestLocal) -> Seqs {
    let owner = format!("Bearer {}", token("owner"));
    for (id, private) in [(LOBBY, false), (PRIVATE, true), (SHARED, true)] {
        let body = json!({"id": id, "name": id, "private": private}).to_string();
        let a = server
            .request("POST", "/rooms", &[("authorization", &owner)], Some(&body))
            .await;
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    }
    let body = json!({"userId": "u-mallory"}).to_string();
    let a = server
        .request(
            "POST",
            &format!("/rooms/{SHARED}/members"),
            &[("authorization", &owner)],
            Some(&body),
        )
        .await;
    assert_eq!(a.status, 204, "{}", String::from_utf8_lossy(&a.body));
    let (_, others) = post_in_lobby(server, "owner").await;
    let (mut ws, deleted) = post_in_lobby(server, "mallory").await;
    send(
        &mut ws,
        json!({"action": "deleteMessage", "room": LOBBY, "seq": deleted, "clientMsgId": "del-1"}),
    )
    .await;
    recv_type(&mut ws, "ack", &mut Vec::new()).await;
    Seqs { others, deleted }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_bad_input_catalogue() {
    let server = TestLocal::start().await;
    let seqs = fixture(&server).await;
    let tokens = Tokens::new();
    let mut rows = ws_rows::rows(&tokens, &seqs);
    rows.extend(http_rows::rows(&tokens));
    assert!(rows.len() >= 60, "the catalogue has {} rows", rows.len());
    println!("bad-input catalogue: {} rows", rows.len());
    let mut names: Vec<&str> = rows.iter().map(|r| r.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), rows.len(), "row names are unique");

    let mut failures = Vec::new();
    for row in &rows {
        let answer = run(&server, &tokens, &row.input).await;
        match &answer.got {
            Ok(got) if *got == row.expect => {}
            Ok(got) => failures.push(format!(
                "{}: expected {:?}, got {got:?} ({})",
                row.name, row.expect, answer.raw
            )),
            Err(e) => failures.push(format!("{}: expected {:?}, {e}", row.name, row.expect)),
        }
        if answer.raw.contains(MARK) {
            failures.push(format!(
                "{}: the answer echoes the input: {}",
                row.name, answer.raw
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    server.shutdown().await;
}
