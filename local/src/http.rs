//! The HTTP API of docs/protocol.md, served as API Gateway's HTTP API (`AWS::Serverless::HttpApi`
//! in `template.yaml`) serves it, on the WebSocket endpoint's port:
//!
//! - **Routes.** The function's routes ([`HttpRoute`], which the template declares) at `/...`
//!   (the `$default` stage) and at `/{stage}/...` (the named stage: `rawPath` keeps the
//!   prefix, which the handler strips).
//!   A path or method no route matches answers API Gateway's own 404 `{"message":"Not Found"}`
//!   without invoking the function.
//! - **Invocation.** The request becomes the payload 2.0 event API Gateway would send
//!   ([`events::http_api_json`]: request id, source IP from the socket peer, route key,
//!   stage, time), converted to lambda_http's `Request` by lambda_http itself, and goes to the
//!   very `http_api::handle` the Lambda runs; its status, headers and body go back, with
//!   API Gateway's `apigw-requestid` header.
//! - **CORS**, as the HttpApi's `CorsConfiguration`: a preflight `OPTIONS` is answered here
//!   (204, methods GET and POST, headers authorization and content-type, max age 600 s), and
//!   answers to a request from an allowed `Origin` carry `Access-Control-Allow-Origin`.
//! - **Limits.** The body is read up to the handler's `max_body_bytes` plus one byte, so the
//!   handler answers 413 itself without the emulator buffering an arbitrary upload; the
//!   integration times out after 30 s as API Gateway's does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body as AxumBody;
use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http_api::HttpRoute;
use hubbub_core::error::chain;
use serde_json::json;

use crate::events::{self, HttpRequestMeta, now_ms};
use crate::ids::new_id;
use crate::server::AppState;

/// API Gateway's maximum integration timeout for an HTTP API (30 s): a handler slower than
/// that fails with 503 on AWS, so it does here too rather than hiding the problem.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);
/// `CorsConfiguration.MaxAge` of the template: browsers may cache a preflight for 10 minutes.
pub const CORS_MAX_AGE_SECS: u32 = 600;
/// `CorsConfiguration.AllowMethods` of the template.
pub const CORS_ALLOW_METHODS: &str = "GET,POST,PUT,DELETE";
/// `CorsConfiguration.AllowHeaders` of the template.
pub const CORS_ALLOW_HEADERS: &str = "authorization,content-type";

/// A request the emulator could not turn into an invocation (a bug here, not the client's).
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("could not read the request body")]
    Body(#[source] axum::Error),
    #[error(transparent)]
    Event(#[from] events::EventError),
    #[error("the handler's response could not be converted")]
    Response(#[source] axum::http::Error),
}

/// The route a request reaches: its template, the stage, and the path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// `POST /rooms/{room}/members`.
    pub route_key: String,
    /// `$default` without the stage prefix, else the stage name.
    pub stage: String,
    pub path_parameters: Vec<(String, String)>,
}

/// The stage and the path below it: `/{stage}/...` is the named stage when the rest is a
/// route path; any other path is the `$default` stage's. `None` when neither is a route path
/// (a stage that does not exist).
pub fn split_stage<'p>(path: &'p str, stage: &str) -> Option<(String, &'p str)> {
    let below_stage = path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(stage))
        .filter(|rest| HttpRoute::is_route_path(rest));
    match below_stage {
        Some(rest) => Some((stage.to_owned(), rest)),
        None => HttpRoute::is_route_path(path).then(|| ("$default".to_owned(), path)),
    }
}

/// The route `method path` reaches, as API Gateway selects it; `None` is API Gateway's 404.
pub fn match_route(method: &str, path: &str, stage: &str) -> Option<Matched> {
    let (stage, below) = split_stage(path, stage)?;
    let found = HttpRoute::find(method, below)?;
    Some(Matched {
        route_key: found.route.route_key(),
        stage,
        path_parameters: found.params,
    })
}

/// The `Access-Control-Allow-Origin` value for a request from `origin`: `*` when every
/// origin is allowed, the origin itself when it is listed, else none.
fn allowed_origin(allowed: &[String], origin: Option<&HeaderValue>) -> Option<HeaderValue> {
    let origin = origin?;
    if allowed.iter().any(|a| a == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let o = origin.to_str().ok()?;
    allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(o))
        .then(|| origin.clone())
}

/// Adds `Access-Control-Allow-Origin` (and `Vary: Origin` for a listed origin) to an answer.
fn add_cors(headers: &mut HeaderMap, allow: Option<HeaderValue>) {
    if let Some(allow) = allow {
        if allow != "*" {
            headers.append(header::VARY, HeaderValue::from_static("origin"));
        }
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    }
}

/// API Gateway's own answers: `{"message": ...}`.
fn gateway_answer(status: StatusCode, message: &str, request_id: &str) -> Response {
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "message": message }).to_string(),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut()
            .insert(HeaderName::from_static("apigw-requestid"), v);
    }
    resp
}

/// The preflight answer: 204 with the configured CORS headers when the origin is allowed
/// (without them the browser refuses the actual request). The caller adds the origin.
fn preflight(origin_allowed: bool, request_id: &str) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(HeaderName::from_static("apigw-requestid"), v);
    }
    if origin_allowed {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(CORS_ALLOW_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(CORS_MAX_AGE_SECS),
        );
    }
    resp
}

/// Reads at most `limit + 1` bytes of the body: enough for the handler to see that it is
/// over its limit (and answer 413), without buffering whatever a client uploads.
async fn read_body(body: AxumBody, limit: usize) -> Result<Vec<u8>, BridgeError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BridgeError::Body)?;
        let room = (limit + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() > limit {
            break;
        }
    }
    Ok(buf)
}

/// The `Host` the client used, when it is a plain `host[:port]`; else this server's address.
/// (lambda_http parses it into the request URI and panics on one it cannot parse; API
/// Gateway would not route such a request at all.)
fn domain_name(headers: &HeaderMap, public: SocketAddr) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| http_api::is_plain_host(h))
        .map_or_else(|| public.to_string(), str::to_owned)
}

fn protocol(version: axum::http::Version) -> &'static str {
    match version {
        axum::http::Version::HTTP_09 => "HTTP/0.9",
        axum::http::Version::HTTP_10 => "HTTP/1.0",
        axum::http::Version::HTTP_2 => "HTTP/2.0",
        axum::http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// lambda_http's response as the HTTP answer.
fn into_response(resp: lambda_http::Response<lambda_http::Body>) -> Result<Response, BridgeError> {
    let (parts, body) = resp.into_parts();
    let bytes: Vec<u8> = match body {
        lambda_http::Body::Text(t) => t.into_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => Vec::new(),
    };
    let mut builder = Response::builder().status(parts.status);
    if let Some(h) = builder.headers_mut() {
        *h = parts.headers;
    }
    builder
        .body(AxumBody::from(bytes))
        .map_err(BridgeError::Response)
}

/// Every request on an HTTP API path (any method, with or without the stage prefix).
pub(crate) async fn serve(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    OriginalUri(uri): OriginalUri,
    mut req: Request,
) -> Response {
    // Under `/{stage}` the router hands on the path below the prefix; API Gateway's event
    // (`rawPath`, stage selection) wants the path as the client sent it.
    *req.uri_mut() = uri;
    let started = Instant::now();
    let request_id = new_id();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let allow = allowed_origin(
        &state.config.cors_origins,
        req.headers().get(header::ORIGIN),
    );
    let (route, mut resp) = answer(&state, peer, req, &request_id, allow.is_some()).await;
    add_cors(resp.headers_mut(), allow);
    tracing::info!(
        route,
        request_id,
        method = %method,
        path,
        status = resp.status().as_u16(),
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "HTTP API request"
    );
    resp
}

/// The answer to one request, and the route key (or what answered instead) for the log.
async fn answer(
    state: &AppState,
    peer: SocketAddr,
    req: Request,
    request_id: &str,
    origin_allowed: bool,
) -> (String, Response) {
    let cfg = &state.config;
    let headers = req.headers();
    let is_preflight = req.method() == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if is_preflight && split_stage(req.uri().path(), &cfg.stage).is_some() {
        // API Gateway answers preflights itself, without a route or the function.
        return (
            "CORS preflight".to_owned(),
            preflight(origin_allowed, request_id),
        );
    }
    let Some(matched) = match_route(req.method().as_str(), req.uri().path(), &cfg.stage) else {
        return (
            "no route".to_owned(),
            gateway_answer(StatusCode::NOT_FOUND, "Not Found", request_id),
        );
    };
    let route = matched.route_key.clone();
    match invoke(state, peer, req, request_id, &matched).await {
        Ok(resp) => (route, resp),
        Err(InvokeError::Timeout) => {
            tracing::error!(route, request_id, "integration timed out");
            (
                route,
                gateway_answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable",
                    request_id,
                ),
            )
        }
        Err(InvokeError::Bridge(e)) => {
            tracing::error!(route, request_id, error = %chain(&e), "could not invoke the HTTP API");
            (
                route,
                gateway_answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                    request_id,
                ),
            )
        }
    }
}

/// Why an invocation produced no answer of the function.
#[derive(Debug, thiserror::Error)]
enum InvokeError {
    #[error("the integration took longer than {INTEGRATION_TIMEOUT:?}")]
    Timeout,
    #[error(transparent)]
    Bridge(#[from] BridgeError),
}

async fn invoke(
    state: &AppState,
    peer: SocketAddr,
    req: Request,
    request_id: &str,
    matched: &Matched,
) -> Result<Response, InvokeError> {
    let cfg = &state.config;
    let (parts, body) = req.into_parts();
    let body = read_body(body, cfg.accounts.max_body_bytes).await?;
    let domain = domain_name(&parts.headers, state.public_addr);
    let source_ip = peer.ip().to_string();
    let meta = HttpRequestMeta {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query(),
        protocol: protocol(parts.version),
        source_ip: &source_ip,
        port: state.public_addr.port(),
        domain_name: &domain,
        stage: &matched.stage,
        route_key: &matched.route_key,
        path_parameters: &matched.path_parameters,
        request_id,
        api_id: &cfg.api_id,
        account_id: &cfg.account_id,
        now_ms: now_ms(),
    };
    let event = events::http_api(&meta, &parts.headers, &body).map_err(BridgeError::from)?;
    let resp = tokio::time::timeout(INTEGRATION_TIMEOUT, http_api::handle(&state.http, event))
        .await
        .map_err(|_| InvokeError::Timeout)?;
    let mut resp = into_response(resp)?;
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut()
            .insert(HeaderName::from_static("apigw-requestid"), v);
    }
    Ok(resp)
}
