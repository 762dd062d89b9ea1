//! The WebSocket side of the emulator, as API Gateway runs a WebSocket API:
//!
//! 1. **Handshake.** The REQUEST authorizer gets the `$connect` request (`Unauthorized` → 401,
//!    a policy that does not allow the method ARN → 403); then `$connect` runs with the
//!    authorizer context (non-2xx → the handshake fails with that status); then the 101
//!    answer carries the `Sec-WebSocket-Protocol` that `$connect` returned.
//! 2. **Frames.** Each data frame becomes a MESSAGE event routed on `$request.body.action`
//!    (hubbub-core's [`RouteKey`]: an action route, else `$default`); the
//!    route response's body, if any, goes back to the sender as one frame. Routes of one
//!    connection run concurrently, as Lambda invocations do.
//! 3. **Close.** Whoever closes (client, idle or duration limit, `DELETE @connections`,
//!    frame limit, shutdown), the connection leaves the registry first (the management API
//!    answers 410 from then on), then `$disconnect` runs with the close code and reason.
//!
//! The handshake is answered by hand (hyper upgrade + tokio-tungstenite) rather than with
//! axum's `WebSocketUpgrade`, so that the answer carries exactly what `$connect` said and the
//! frame limit can be enforced per frame.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use axum::body::Body as HttpBody;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::{SinkExt, StreamExt};
use hubbub_core::aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerResponse, ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use hubbub_core::aws_lambda_events::encodings::Body;
use hubbub_core::aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use hubbub_core::error::chain;
use hubbub_core::routes::{Function, RouteKey};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::events::{self, ConnMeta, now_ms};
use crate::ids::new_id;
use crate::registry::{LiveConn, Outbound};
use crate::server::AppState;

/// API Gateway's frame limit: a frame over 32 KB closes the connection with 1009. Enforced
/// by tungstenite on the frame header, before the payload is buffered.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// API Gateway's message limit: a message may span several frames, 128 KB in all.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// Frames queued for one client. A client this far behind is not reading; the bound keeps
/// a stuck client from growing the server's memory (256 × 128 KB at worst), and posts to it
/// answer 429 rather than wait, so a sender's fan-out never blocks on one slow reader.
pub const OUTBOUND_QUEUE: usize = 256;
/// Route invocations in flight per connection. API Gateway invokes a Lambda per frame,
/// concurrently; 16 keeps that concurrency (so ordering bugs show up locally too) while one
/// client flooding frames cannot starve every other connection of CPU and database pool.
/// At the bound the connection stops reading, which pushes back on the client over TCP.
pub const ROUTES_IN_FLIGHT: usize = 16;
/// How long a closing connection waits for the client's close frame (RFC 6455 §7.1.1 wants
/// the server to wait for it) before dropping the socket: a vanished client must not hold
/// the connection's `$disconnect` back.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// After a 1009 close, the socket is drained until it has been quiet this long, so the rest
/// of the oversized frame does not turn the close into a TCP reset that would hide the
/// close frame from the client.
const DRAIN_QUIET: Duration = Duration::from_millis(100);

/// Logs one route invocation, like API Gateway's execution log line.
pub(crate) fn log_route(
    route: &str,
    connection_id: &str,
    request_id: &str,
    status: i64,
    started: Instant,
) {
    tracing::info!(
        route,
        connection_id,
        request_id,
        status,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "route invoked"
    );
}

/// An error answer in API Gateway's shape: `{"message": ...}`.
pub(crate) fn message_response(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

/// Whether the request asks for a protocol upgrade (a WebSocket handshake, valid or not).
fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
}

/// `GET /`: the WebSocket handshake when the request carries an `Upgrade` header, else the
/// web client's `index.html`.
pub(crate) async fn upgrade_root(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    if !wants_upgrade(req.headers()) {
        return crate::web::serve(&state, "index.html").await;
    }
    handshake(state, peer, req).await
}

/// WebSocket upgrade at `/{stage}`.
pub(crate) async fn upgrade_stage(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(stage): Path<String>,
    req: Request,
) -> Response {
    if stage != state.config.stage {
        if !wants_upgrade(req.headers()) {
            // A plain GET of some `/name`: a file of the web client, or 404.
            return crate::web::serve_path(&state, req.uri()).await;
        }
        // What API Gateway answers for a stage that does not exist.
        return message_response(StatusCode::FORBIDDEN, "Forbidden");
    }
    handshake(state, peer, req).await
}

/// Any path nothing else serves: API Gateway's 404.
pub(crate) async fn not_found() -> Response {
    message_response(StatusCode::NOT_FOUND, "Not Found")
}

/// The client's `Sec-WebSocket-Key`, when the request is a WebSocket upgrade we can answer.
fn websocket_key(headers: &HeaderMap) -> Result<&HeaderValue, (StatusCode, &'static str)> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "This is a WebSocket endpoint: connect with a WebSocket client",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err((StatusCode::BAD_REQUEST, "Sec-WebSocket-Version must be 13"));
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or((StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing"))
}

/// Whether a statement applies to `execute-api:Invoke` on `arn` (IAM wildcards `*`, `?`).
fn statement_matches(s: &IamPolicyStatement, arn: &str) -> bool {
    s.action
        .iter()
        .any(|a| wildcard(&a.to_ascii_lowercase(), "execute-api:invoke"))
        && s.resource.iter().any(|r| wildcard(r, arn))
}

/// IAM evaluation of the authorizer's policy: an explicit Deny wins, then an Allow is needed.
fn policy_allows(resp: &ApiGatewayCustomAuthorizerResponse, arn: &str) -> bool {
    let statements = &resp.policy_document.statement;
    let denied = statements
        .iter()
        .any(|s| s.effect == IamPolicyEffect::Deny && statement_matches(s, arn));
    let allowed = statements
        .iter()
        .any(|s| s.effect == IamPolicyEffect::Allow && statement_matches(s, arn));
    allowed && !denied
}

/// Glob match with `*` (any run) and `?` (any one character).
fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// `requestContext.authorizer` of later events: `principalId`, the context's entries and
/// `integrationLatency`. `None` when the context holds a non-primitive value, which API
/// Gateway refuses (the handshake fails with 500).
fn authorizer_context(
    resp: &ApiGatewayCustomAuthorizerResponse,
    latency_ms: u64,
) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    m.insert("principalId".into(), json!(resp.principal_id));
    match &resp.context {
        Value::Object(ctx) => {
            for (k, v) in ctx {
                if matches!(v, Value::Object(_) | Value::Array(_)) {
                    return None;
                }
                m.insert(k.clone(), v.clone());
            }
        }
        Value::Null => {}
        _ => return None,
    }
    m.insert("integrationLatency".into(), json!(latency_ms));
    Some(m)
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn internal_error(what: &str, err: &(dyn std::error::Error + 'static)) -> Response {
    tracing::error!(error = %chain(err), "{what}");
    message_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
}

async fn handshake(state: Arc<AppState>, peer: SocketAddr, mut req: Request) -> Response {
    let accept = match websocket_key(req.headers())
        .map(|key| HeaderValue::from_str(&derive_accept_key(key.as_bytes())))
    {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return internal_error("could not encode Sec-WebSocket-Accept", &e),
        Err((status, why)) => return message_response(status, why),
    };
    let Some(drain_guard) = state.drain_guard() else {
        return message_response(StatusCode::SERVICE_UNAVAILABLE, "Shutting down");
    };
    let headers = req.headers().clone();
    let query = req.uri().query().map(str::to_owned);
    let connected_at_ms = now_ms();
    let request_id = new_id();
    let cfg = &state.config;
    let mut meta = ConnMeta {
        connection_id: new_id(),
        connected_at_ms,
        source_ip: peer.ip().to_string(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        domain_name: headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| state.public_addr.to_string(), str::to_owned),
        stage: cfg.stage.clone(),
        api_id: cfg.api_id.clone(),
        authorizer: Map::new(),
    };
    let connection_id = meta.connection_id.clone();

    // 1. The REQUEST authorizer.
    let arn = events::method_arn(&cfg.region, &cfg.account_id, &cfg.api_id, &cfg.stage);
    let auth_event = match events::authorizer_request(
        &meta,
        &arn,
        &headers,
        query.as_deref(),
        &request_id,
        connected_at_ms,
    ) {
        Ok(e) => e,
        Err(e) => return internal_error("could not build the authorizer event", &e),
    };
    let started = Instant::now();
    let decision = authorizer::handle(&state.verifier, &auth_event).await;
    let latency = elapsed_ms(started);
    let policy = match decision {
        Ok(policy) => policy,
        Err(_) => {
            log_route(
                "$connect authorizer",
                &connection_id,
                &request_id,
                401,
                started,
            );
            return message_response(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
    };
    if !policy_allows(&policy, &arn) {
        log_route(
            "$connect authorizer",
            &connection_id,
            &request_id,
            403,
            started,
        );
        return message_response(StatusCode::FORBIDDEN, "Forbidden");
    }
    let Some(context) = authorizer_context(&policy, latency) else {
        log_route(
            "$connect authorizer",
            &connection_id,
            &request_id,
            500,
            started,
        );
        tracing::error!(
            connection_id,
            "authorizer context holds a non-primitive value"
        );
        return message_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
    };
    log_route(
        "$connect authorizer",
        &connection_id,
        &request_id,
        200,
        started,
    );
    meta.authorizer = context;

    // 2. `$connect`.
    let event = match events::connect(&meta, &headers, query.as_deref(), &request_id, now_ms()) {
        Ok(e) => e,
        Err(e) => return internal_error("could not build the $connect event", &e),
    };
    let answer = invoke(
        &state,
        RouteKey::Connect,
        &event,
        &connection_id,
        &request_id,
    )
    .await;
    if !(200..300).contains(&answer.status_code) {
        let status = u16::try_from(answer.status_code)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return message_response(status, "Connection refused by $connect");
    }
    let protocol = answer.headers.get(header::SEC_WEBSOCKET_PROTOCOL).cloned();

    // 3. Register, then answer 101; the connection task takes over once the upgrade is done.
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let live = LiveConn {
        tx,
        kick: Arc::new(Notify::new()),
        meta: Arc::new(meta),
        last_active_ms: Arc::new(AtomicI64::new(connected_at_ms)),
    };
    state.registry.insert(live.clone());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => run(&state, &live, rx, TokioIo::new(upgraded)).await,
            Err(e) => {
                tracing::warn!(connection_id = %live.meta.connection_id, error = %e, "WebSocket upgrade failed");
                state.registry.remove(&live.meta.connection_id);
                disconnect(&state, &live.meta, 1006, "Connection closed abnormally").await;
            }
        }
        drop(drain_guard);
    });

    let mut resp = Response::new(HttpBody::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(p) = protocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    resp
}

/// How a connection ended.
enum Ending {
    /// The client closed (or vanished: 1006).
    Client { code: u16, reason: String },
    /// The emulator closes, for `cause`.
    Server {
        code: u16,
        reason: &'static str,
        cause: &'static str,
    },
    /// A frame or message over the limits.
    TooBig(WsError),
}

type Io = TokioIo<hyper::upgrade::Upgraded>;

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_frame_size(Some(MAX_FRAME_BYTES))
        .max_message_size(Some(MAX_MESSAGE_BYTES))
}

/// One connection, from the completed upgrade to its `$disconnect`.
async fn run(state: &Arc<AppState>, live: &LiveConn, mut rx: mpsc::Receiver<Outbound>, io: Io) {
    let id = live.meta.connection_id.as_str();
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config())).await;
    let in_flight = Arc::new(Semaphore::new(ROUTES_IN_FLIGHT));
    let idle_timeout = state.config.idle_timeout;
    let idle = tokio::time::sleep(idle_timeout);
    let max = tokio::time::sleep(state.config.max_connection);
    tokio::pin!(idle, max);
    let mut shutdown = state.shutdown.subscribe();
    let already_shutting_down = *shutdown.borrow_and_update();
    let user_id = live
        .meta
        .authorizer
        .get("userId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    tracing::info!(connection_id = id, user_id, "connection open");

    let ending = if already_shutting_down {
        Ending::Server {
            code: 1001,
            reason: "Going away",
            cause: "shutdown",
        }
    } else {
        loop {
            tokio::select! {
                frame = ws.next() => {
                    let Some(frame) = frame else {
                        break Ending::Client { code: 1006, reason: String::new() };
                    };
                    let msg = match frame {
                        Ok(m) => m,
                        Err(e @ WsError::Capacity(_)) => break Ending::TooBig(e),
                        Err(e) => {
                            tracing::info!(connection_id = id, error = %e, "connection broken");
                            break Ending::Client { code: 1006, reason: String::new() };
                        }
                    };
                    // Any client frame, control frames included, counts as activity;
                    // what the server sends does not (as API Gateway's idle timeout).
                    live.touch(now_ms());
                    idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
                    match msg {
                        Message::Text(t) => dispatch(state, live, t.as_str().to_owned(), false, &in_flight).await,
                        Message::Binary(b) => dispatch(state, live, STANDARD.encode(&b), true, &in_flight).await,
                        Message::Close(frame) => {
                            let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.as_str().to_owned()));
                            break Ending::Client { code, reason };
                        }
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
                Some(out) = rx.recv() => {
                    let msg = match out {
                        Outbound::Text(t) => Message::Text(t.into()),
                        Outbound::Binary(b) => Message::Binary(b.into()),
                    };
                    if let Err(e) = ws.send(msg).await {
                        tracing::info!(connection_id = id, error = %e, "could not write to the client");
                        break Ending::Client { code: 1006, reason: String::new() };
                    }
                }
                () = live.kick.notified() => break Ending::Server { code: 1000, reason: "Connection closed by server", cause: "DELETE @connections" },
                () = &mut idle => break Ending::Server { code: 1001, reason: "Going away", cause: "idle timeout" },
                () = &mut max => break Ending::Server { code: 1001, reason: "Going away", cause: "maximum connection duration" },
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow_and_update() {
                        break Ending::Server { code: 1001, reason: "Going away", cause: "shutdown" };
                    }
                }
            }
        }
    };

    // Gone for the management API from here on, as on API Gateway.
    state.registry.remove(id);
    let (code, reason) = match ending {
        Ending::Client { code, reason } => {
            // Sends tungstenite's queued reply to the client's close frame, if any.
            let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
            tracing::info!(connection_id = id, code, reason, "client closed");
            (code, reason)
        }
        Ending::Server {
            code,
            reason,
            cause,
        } => {
            tracing::info!(connection_id = id, code, cause, "closing connection");
            close_and_wait(&mut ws, code, reason).await;
            (code, reason.to_owned())
        }
        Ending::TooBig(e) => {
            tracing::info!(connection_id = id, error = %e, "frame over the limit; closing with 1009");
            let reason = "Message too big";
            let frame = CloseFrame {
                code: CloseCode::Size,
                reason: reason.into(),
            };
            let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(Some(frame))).await;
            drain(ws.get_mut()).await;
            (1009, reason.to_owned())
        }
    };
    drop(ws);
    disconnect(state, &live.meta, code, &reason).await;
}

/// Sends a close frame and waits (bounded) for the client's.
async fn close_and_wait(ws: &mut WebSocketStream<Io>, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        if ws.close(Some(frame)).await.is_err() {
            return;
        }
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
}

/// Reads and discards what the client still sends until it is quiet, bounded by
/// [`CLOSE_GRACE`].
async fn drain(io: &mut Io) {
    let mut buf = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        loop {
            match tokio::time::timeout(DRAIN_QUIET, io.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => continue,
                _ => break,
            }
        }
    })
    .await;
}

/// Invokes the route of one frame in its own task (bounded per connection).
async fn dispatch(
    state: &Arc<AppState>,
    live: &LiveConn,
    body: String,
    is_base64_encoded: bool,
    in_flight: &Arc<Semaphore>,
) {
    let Ok(permit) = in_flight.clone().acquire_owned().await else {
        return;
    };
    let state = state.clone();
    let live = live.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let Some(out) = invoke_message(&state, &live.meta, &body, is_base64_encoded).await else {
            return;
        };
        match live.tx.try_send(out) {
            Ok(()) => {}
            // Closed while the route ran: API Gateway drops the response too.
            Err(TrySendError::Closed(_)) => {
                tracing::debug!(connection_id = %live.meta.connection_id, "route response after close dropped");
            }
            Err(TrySendError::Full(_)) => {
                tracing::warn!(connection_id = %live.meta.connection_id, "client is not reading; route response dropped");
            }
        }
    });
}

/// Runs the route of one frame and returns the frame to send back, if any.
async fn invoke_message(
    state: &AppState,
    meta: &ConnMeta,
    body: &str,
    is_base64_encoded: bool,
) -> Option<Outbound> {
    // A binary frame has no `action` API Gateway could read.
    let route = if is_base64_encoded {
        RouteKey::Default
    } else {
        RouteKey::for_body(body)
    };
    let request_id = new_id();
    let event = match events::message(
        meta,
        route.as_str(),
        body,
        is_base64_encoded,
        &request_id,
        &new_id(),
        now_ms(),
    ) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(connection_id = %meta.connection_id, error = %chain(&e), "could not build the MESSAGE event");
            return None;
        }
    };
    let answer = invoke(state, route, &event, &meta.connection_id, &request_id).await;
    match answer.body {
        Some(Body::Text(t)) if !t.is_empty() => Some(Outbound::Text(t)),
        Some(Body::Binary(b)) if !b.is_empty() => Some(Outbound::Binary(b)),
        _ => None,
    }
}

/// Runs `$disconnect` for a connection that is already closed.
async fn disconnect(state: &AppState, meta: &ConnMeta, code: u16, reason: &str) {
    let request_id = new_id();
    let event = match events::disconnect(meta, code, reason, &request_id, now_ms()) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(connection_id = %meta.connection_id, error = %chain(&e), "could not build the $disconnect event");
            return;
        }
    };
    invoke(
        state,
        RouteKey::Disconnect,
        &event,
        &meta.connection_id,
        &request_id,
    )
    .await;
}

/// Runs the function that serves `route`, as API Gateway invokes the route's integration,
/// and logs the invocation.
///
/// The `match` is exhaustive over hubbub-core's [`Function`]s, and each [`RouteKey`] names
/// its function there: a new route does not compile until it names one, and then it is
/// dispatched here with no further change; a new function does not compile until it is
/// dispatched here.
async fn invoke(
    state: &AppState,
    route: RouteKey,
    event: &ApiGatewayWebsocketProxyRequest,
    connection_id: &str,
    request_id: &str,
) -> ApiGatewayProxyResponse {
    let started = Instant::now();
    let answer = match route.function() {
        Function::Connect => connect::handle(&state.connect, event).await,
        Function::Disconnect => disconnect::handle(&state.routes.live, event).await,
        Function::SendMessage => send_message::handle(&state.routes, event).await,
        Function::Rooms => rooms::handle(&state.routes, event).await,
        Function::Default => default_route::handle(event).await,
    };
    log_route(
        route.as_str(),
        connection_id,
        request_id,
        answer.status_code,
        started,
    );
    answer
}
