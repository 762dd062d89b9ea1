//! The @connections management API, on the same port as the WebSocket API:
//!
//! - `POST @connections/{id}`: the body reaches the client as one frame (text when it is
//!   UTF-8, binary otherwise); 413 over 128 KB;
//! - `GET @connections/{id}`: `{"connectedAt","identity":{"sourceIp","userAgent"},"lastActiveAt"}`;
//! - `DELETE @connections/{id}`: closes the connection (204);
//! - a connection that is unknown or closed: 410 with `x-amzn-ErrorType: GoneException` and
//!   `{"message":null}`, as AWS answers.
//!
//! Paths work with and without the stage prefix (`/{stage}/@connections/{id}` is what the
//! SDK calls with an `endpoint_url` of `http://host:port/{stage}`). Requests must carry an
//! `Authorization` header, as SigV4-signed ones do; the signature itself is not checked.
//!
//! A POST goes through [`crate::delivery::post`], as the in-process client's do: with
//! `--inject-post-faults`, a fraction of them answer 429 `LimitExceededException`, 500
//! `InternalServerErrorException`, or are slow (delivered late, answered after that).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Router, routing};
use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::delivery::{self, PostOutcome};
use crate::events::datetime;
use crate::ids::new_id;
use crate::registry::{LiveConn, PostRefusal};
use crate::server::AppState;

/// The @connections routes. The server mounts them at `/` and under `/{stage}`, so one
/// handler per verb serves both; `stage` is present only under the prefix.
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new().route(
        "/@connections/{id}",
        routing::get(get).post(post).delete(delete),
    )
}

/// The path parameters of a management call.
#[derive(Debug, Deserialize)]
struct ConnectionPath {
    /// The stage prefix, when the call came through `/{stage}/@connections/{id}`.
    stage: Option<String>,
    id: String,
}

/// An answer in the management API's shape, with its request id.
fn answer(status: StatusCode, error_type: Option<&'static str>, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&new_id()) {
        h.insert(HeaderName::from_static("x-amzn-requestid"), v);
    }
    if let Some(t) = error_type {
        h.insert(
            HeaderName::from_static("x-amzn-errortype"),
            HeaderValue::from_static(t),
        );
    }
    resp
}

fn aws_error(status: StatusCode, error_type: &'static str, message: Option<&str>) -> Response {
    answer(
        status,
        Some(error_type),
        json!({ "message": message }).to_string(),
    )
}

/// 410 Gone, exactly as AWS sends it.
fn gone() -> Response {
    aws_error(StatusCode::GONE, "GoneException", None)
}

fn iso(ms: i64) -> String {
    datetime(ms).format(&Rfc3339).unwrap_or_default()
}

/// Why a management call is refused before it reaches a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// No `Authorization` header: the request was not signed.
    Unsigned,
    /// The path names another stage.
    WrongStage,
    /// The connection is unknown or closed.
    Gone,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            // API Gateway's answer to an unsigned request.
            Self::Unsigned => aws_error(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                Some("Missing Authentication Token"),
            ),
            Self::WrongStage => aws_error(
                StatusCode::FORBIDDEN,
                "ForbiddenException",
                Some("Forbidden"),
            ),
            Self::Gone => gone(),
        }
    }
}

/// Whether the request is signed and for this stage.
fn admit(state: &AppState, stage: Option<&str>, headers: &HeaderMap) -> Result<(), Refusal> {
    if !headers.contains_key(header::AUTHORIZATION) {
        return Err(Refusal::Unsigned);
    }
    if stage.is_some_and(|s| s != state.config.stage) {
        return Err(Refusal::WrongStage);
    }
    Ok(())
}

/// The connection a request is about, or the refusal.
fn target(
    state: &AppState,
    stage: Option<&str>,
    id: &str,
    headers: &HeaderMap,
    op: &'static str,
) -> Result<LiveConn, Refusal> {
    admit(state, stage, headers)?;
    state.registry.get(id).ok_or_else(|| {
        // Per call at debug: the fan-out that made the call logs one line for all of them.
        tracing::debug!(op, connection_id = id, status = 410, "@connections: gone");
        Refusal::Gone
    })
}

/// `POST @connections/{id}`.
async fn post(
    State(state): State<Arc<AppState>>,
    Path(ConnectionPath { stage, id }): Path<ConnectionPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = admit(&state, stage.as_deref(), &headers) {
        return r.into_response();
    }
    let bytes = body.len();
    match delivery::post(&state.registry, state.faults.as_deref(), &id, body).await {
        PostOutcome::Posted => {
            tracing::debug!(connection_id = %id, bytes, "@connections: posted");
            answer(StatusCode::OK, None, String::new())
        }
        PostOutcome::Refused(PostRefusal::TooLarge) => aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            Some("Message too long"),
        ),
        PostOutcome::Refused(PostRefusal::NotReading) => {
            tracing::debug!(connection_id = %id, "@connections: client is not reading; post refused");
            throttled()
        }
        PostOutcome::Refused(PostRefusal::Gone) => {
            // Per call at debug: the fan-out that made the call logs one line for all of them.
            tracing::debug!(op = "post", connection_id = %id, status = 410, "@connections: gone");
            gone()
        }
        PostOutcome::Injected(429) => {
            tracing::debug!(connection_id = %id, "@connections: injected 429");
            throttled()
        }
        PostOutcome::Injected(status) => {
            tracing::debug!(connection_id = %id, status, "@connections: injected failure");
            aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerErrorException",
                Some("Internal server error"),
            )
        }
    }
}

/// 429, as API Gateway throttles.
fn throttled() -> Response {
    aws_error(
        StatusCode::TOO_MANY_REQUESTS,
        "LimitExceededException",
        Some("Rate exceeded"),
    )
}

/// `GET @connections/{id}`.
async fn get(
    State(state): State<Arc<AppState>>,
    Path(ConnectionPath { stage, id }): Path<ConnectionPath>,
    headers: HeaderMap,
) -> Response {
    let conn = match target(&state, stage.as_deref(), &id, &headers, "get") {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let mut identity = serde_json::Map::new();
    identity.insert("sourceIp".into(), json!(conn.meta.source_ip));
    if let Some(ua) = &conn.meta.user_agent {
        identity.insert("userAgent".into(), json!(ua));
    }
    let body = json!({
        "connectedAt": iso(conn.meta.connected_at_ms),
        "identity": identity,
        "lastActiveAt": iso(conn.last_active_ms()),
    });
    answer(StatusCode::OK, None, body.to_string())
}

/// `DELETE @connections/{id}`.
async fn delete(
    State(state): State<Arc<AppState>>,
    Path(ConnectionPath { stage, id }): Path<ConnectionPath>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = target(&state, stage.as_deref(), &id, &headers, "delete") {
        return r.into_response();
    }
    if !state.registry.close(&id) {
        return gone();
    }
    tracing::info!(connection_id = %id, "@connections: deleted");
    let mut resp = answer(StatusCode::NO_CONTENT, None, String::new());
    resp.headers_mut().remove(header::CONTENT_TYPE);
    resp
}
