//! The WebSocket handshake as API Gateway runs it: the REQUEST authorizer and its IAM
//! policy, `$connect` with the authorizer context, then the 101 answer with the subprotocol
//! `$connect` chose; the connection task takes over once the upgrade completes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Instant;

use axum::body::Body as HttpBody;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use hubbub_core::aws_lambda_events::apigw::ApiGatewayCustomAuthorizerResponse;
use hubbub_core::error::chain;
use hubbub_core::routes::RouteKey;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::{OUTBOUND_QUEUE, connection, dispatch, log_route, message_response, policy};
use crate::events::{self, ConnMeta, now_ms};
use crate::ids::new_id;
use crate::registry::LiveConn;
use crate::server::AppState;

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

/// Answers a WebSocket handshake request at the API's path.
pub(super) async fn answer(state: Arc<AppState>, peer: SocketAddr, mut req: Request) -> Response {
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
    let decision =
        authorizer::handle_checked(&state.verifier, &state.revocations, &auth_event).await;
    let latency = elapsed_ms(started);
    // The authorizer's outcome as API Gateway answers it, logged once.
    let refuse = |status: StatusCode, text: &str| {
        log_route(
            "$connect authorizer",
            &connection_id,
            &request_id,
            i64::from(status.as_u16()),
            started,
        );
        message_response(status, text)
    };
    let policy = match decision {
        Ok(policy) => policy,
        Err(authorizer::AuthorizerError::Unauthorized) => {
            return refuse(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        // API Gateway answers 500 when the authorizer fails with anything but `Unauthorized`.
        Err(authorizer::AuthorizerError::Unavailable) => {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
        }
    };
    if !policy::allows(&policy, &arn) {
        return refuse(StatusCode::FORBIDDEN, "Forbidden");
    }
    let Some(context) = authorizer_context(&policy, latency) else {
        tracing::error!(
            connection_id,
            "authorizer context holds a non-primitive value"
        );
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
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
    let answer = dispatch::invoke(
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
            Ok(upgraded) => connection::run(&state, &live, rx, TokioIo::new(upgraded)).await,
            Err(e) => {
                tracing::warn!(connection_id = %live.meta.connection_id, error = %e, "WebSocket upgrade failed");
                state.registry.remove(&live.meta.connection_id);
                dispatch::disconnect(&state, &live.meta, 1006, "Connection closed abnormally")
                    .await;
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
