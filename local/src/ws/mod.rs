//! The WebSocket side of the emulator, as API Gateway runs a WebSocket API:
//!
//! 1. **Handshake.** The REQUEST authorizer gets the `$connect` request (`Unauthorized` → 401,
//!    a policy that does not allow the method ARN → 403); then `$connect` runs with the
//!    authorizer context (non-2xx → the handshake fails with that status); then the 101
//!    answer carries the `Sec-WebSocket-Protocol` that `$connect` returned.
//! 2. **Frames.** Each data frame becomes a MESSAGE event routed on `$request.body.action`
//!    (hubbub-core's [`RouteKey`](hubbub_core::routes::RouteKey): an action route, else
//!    `$default`); the route response's body, if any, goes back to the sender as one frame.
//!    Routes of one connection run concurrently, as Lambda invocations do.
//! 3. **Close.** Whoever closes (client, idle or duration limit, `DELETE @connections`,
//!    frame limit, shutdown), the connection leaves the registry first (the management API
//!    answers 410 from then on), then `$disconnect` runs with the close code and reason.
//!
//! The handshake is answered by hand (hyper upgrade + tokio-tungstenite) rather than with
//! axum's `WebSocketUpgrade`, so that the answer carries exactly what `$connect` said and the
//! frame limit can be enforced per frame.
//!
//! The parts: [`handshake`] (authorizer, IAM policy, `$connect`, the 101 answer), [`policy`]
//! (IAM evaluation of the authorizer's policy), [`connection`] (one connection's frame loop and
//! its close) and [`dispatch`] (invoking the function behind a route).

mod connection;
mod dispatch;
pub(crate) use dispatch::FunctionSlots;
mod handshake;
mod policy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

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
    handshake::answer(state, peer, req).await
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
    handshake::answer(state, peer, req).await
}

/// Any path nothing else serves: API Gateway's 404.
pub(crate) async fn not_found() -> Response {
    message_response(StatusCode::NOT_FOUND, "Not Found")
}
