//! The HTTP API of docs/protocol.md ("HTTP API"), one Lambda behind an API Gateway HTTP API
//! (payload v2, through lambda_http):
//!
//! - accounts ([`accounts`]): `POST /auth/register`, `/auth/login`, `/auth/refresh`,
//!   `/auth/logout`: argon2id password hashes, HS256 access tokens, opaque rotating refresh
//!   tokens with reuse detection, login attempts limited per account and address and per
//!   address (counted before the password is checked), registrations limited per source IP;
//! - rooms and history ([`rooms`]): `GET /rooms` (paged, with unread counts), `POST /rooms`,
//!   `GET /rooms/{room}/messages`;
//! - people ([`people`]): `GET|POST /rooms/{room}/members`,
//!   `DELETE /rooms/{room}/members/{user}`, `PUT /rooms/{room}/read`, `POST /dm/{username}`;
//! - `GET /health`.
//!
//! [`HttpRoute`] lists the routes once: the handler dispatches on it, hubbub-local serves
//! it, and the tests hold `template.yaml` to it.
//!
//! The handler sees only ports ([`HttpDeps`]), so the same code runs in Lambda, in
//! hubbub-local and in tests. Every failure is `{"error":{"code","message","requestId"}}`
//! with the matching status ([`error::ApiError`]).

pub mod accounts;
pub mod body;
pub mod config;
pub mod error;
pub mod passwords;
pub mod people;
pub mod rooms;
pub mod routes;

use std::sync::Arc;

use hubbub_core::auth::{Identity, JwtIssuer, TokenVerifier};
use hubbub_core::limits::Limits;
use hubbub_core::session::SessionEnder;
use hubbub_core::store::{AttemptStore, MembershipStore, RoomStore, UserStore};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, http};
use tracing::Instrument;

pub use config::{AccountsConfig, Argon2Config};
pub use error::ApiError;
pub use passwords::Passwords;
pub use routes::HttpRoute;

/// The configuration this function reads at init: the JWT settings (and the optional external
/// issuer), the history database and the account settings.
pub type Config = config::HttpApiConfig;

/// Everything the HTTP API needs, built once at init.
pub struct HttpDeps {
    pub users: Arc<dyn UserStore>,
    pub attempts: Arc<dyn AttemptStore>,
    pub history: Arc<dyn RoomStore>,
    /// Verifies bearer tokens: hubbub's own and, when configured, an external issuer's.
    pub verifier: Arc<TokenVerifier>,
    /// Issues hubbub's access tokens.
    pub issuer: Arc<JwtIssuer>,
    pub passwords: Passwords,
    pub config: AccountsConfig,
    /// The registration limit and the cap on rooms created ([`hubbub_core::limits`]).
    pub limits: Limits,
    /// Ends a user's live sessions when one of their logins is revoked (logout, a replayed
    /// refresh token): revocation marker and open connections. `None` revokes the refresh
    /// tokens only (handler tests that have no WebSocket side).
    pub sessions: Option<Arc<SessionEnder>>,
    /// The connection table's membership side, for the people routes' live effects through
    /// [`Self::sessions`]' gateway: a removed member's connections leave the room, read marks
    /// and new memberships reach the user's connections. The membership port only, so the
    /// function does not link the join, limiter and typing operations. `None` (or no
    /// `sessions`) changes the stores only.
    pub connections: Option<Arc<dyn MembershipStore>>,
}

/// What every route knows about the request besides its body.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// API Gateway's request id: in every error body and log line.
    pub request_id: String,
    /// The client address API Gateway saw (`requestContext.http.sourceIp`).
    pub source_ip: Option<String>,
}

fn request_info(req: &Request) -> (RequestInfo, Option<String>) {
    let mut info = RequestInfo {
        request_id: String::new(),
        source_ip: None,
    };
    let mut stage = None;
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() {
        info.request_id = ctx.request_id.clone().unwrap_or_default();
        info.source_ip = ctx.http.source_ip.clone().filter(|ip| !ip.is_empty());
        stage = ctx.stage.clone();
    }
    if info.request_id.is_empty()
        && let Some(ctx) = req.lambda_context_ref()
    {
        info.request_id = ctx.request_id.clone();
    }
    (info, stage)
}

/// The route path: lambda_http puts a named stage in front of the path (`/prod/rooms`);
/// routes are matched without it.
pub fn route_path(req: &Request) -> String {
    let (_, stage) = request_info(req);
    route_path_below(req, stage.as_deref())
}

fn route_path_below(req: &Request, stage: Option<&str>) -> String {
    let path = req.uri().path();
    match stage {
        Some(s) if s != "$default" && !s.is_empty() => {
            let prefix = format!("/{s}");
            match path.strip_prefix(&prefix) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
                _ => path.to_owned(),
            }
        }
        _ => path.to_owned(),
    }
}

/// Longest host name (RFC 1035), with room for a port.
const HOST_MAX: usize = 261;

/// Whether `host` is a plain `host[:port]` lambda_http can build a request URI from.
/// lambda_http unwraps its parse of `{scheme}://{host}{path}` (request.rs
/// `build_request_uri`): any other `Host` would panic the conversion of the event. API Gateway
/// routes only its own domain names; hubbub-local passes a client's `Host` on only when this
/// holds.
pub fn is_plain_host(host: &str) -> bool {
    let chars_ok = !host.is_empty()
        && host.len() <= HOST_MAX
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    chars_ok
        && ["http", "https"].iter().all(|scheme| {
            url::Url::parse(&format!("{scheme}://{host}/"))
                .is_ok_and(|u| u.host_str().is_some() && u.path() == "/" && u.username().is_empty())
        })
}

/// A JSON (or empty) response with the headers every answer carries.
pub(crate) fn finish(
    builder: http::response::Builder,
    body: Option<serde_json::Value>,
) -> Response<Body> {
    // Answers hold tokens or per-user data: no shared cache may keep them.
    let builder = builder.header("cache-control", "no-store");
    let result = match body {
        Some(v) => builder
            .header("content-type", "application/json")
            .body(Body::Text(v.to_string())),
        None => builder.body(Body::Empty),
    };
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, "response failed to build");
        let mut r = Response::new(Body::Text(
            r#"{"error":{"code":"internal","message":"internal error","requestId":""}}"#.into(),
        ));
        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// A JSON response with `status`.
pub(crate) fn json(status: u16, body: serde_json::Value) -> Response<Body> {
    finish(Response::builder().status(status), Some(body))
}

/// A 204.
pub(crate) fn no_content() -> Response<Body> {
    finish(Response::builder().status(204), None)
}

/// The caller of an authenticated route, from `Authorization: Bearer <jwt>`.
pub(crate) async fn authenticate(deps: &HttpDeps, req: &Request) -> Result<Identity, ApiError> {
    let token = bearer_token(req)?;
    let id = deps.verifier.verify(token).await.map_err(ApiError::Token)?;
    tracing::Span::current().record("user_id", id.user_id.as_str());
    Ok(id)
}

/// The token of `Authorization: Bearer <jwt>` (the scheme in any case), not yet verified.
pub fn bearer_token(req: &Request) -> Result<&str, ApiError> {
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized(
            "this route needs an Authorization: Bearer <access token> header",
        ))?;
    let token = match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(ApiError::Unauthorized(
                "the Authorization header must be `Bearer <access token>`",
            ));
        }
    };
    Ok(token)
}

/// Handles one request. Never fails: every error is an error response.
pub async fn handle(deps: &HttpDeps, req: Request) -> Response<Body> {
    let (info, stage) = request_info(&req);
    let path = route_path_below(&req, stage.as_deref());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "http",
        request_id = %info.request_id,
        method = %method,
        path = %path,
        user_id = tracing::field::Empty,
        cold_start = hubbub_core::telemetry::cold_start(),
    );
    async move {
        let resp = match route(deps, &info, &method, &path, req).await {
            Ok(resp) => resp,
            Err(e) => e.into_response(&info.request_id),
        };
        tracing::info!(status = resp.status().as_u16(), "answered");
        resp
    }
    .instrument(span)
    .await
}

/// The route `method path` (below the stage, see [`route_path`]) reaches and its path
/// parameters; slashes around the path are not significant to the function.
pub fn route_of(method: &http::Method, path: &str) -> Result<routes::Matched, ApiError> {
    let path = format!("/{}", path.trim_matches('/'));
    HttpRoute::find(method.as_str(), &path).ok_or(ApiError::NotFound("no such route"))
}

async fn route(
    deps: &HttpDeps,
    info: &RequestInfo,
    method: &http::Method,
    path: &str,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    body::check_size(&req, deps.config.max_body_bytes)?;
    let matched = route_of(method, path)?;
    let param = |name| {
        matched
            .param(name)
            .ok_or(ApiError::NotFound("no such route"))
    };
    let room = || param("room");
    match matched.route {
        HttpRoute::Health => Ok(json(200, serde_json::json!({"status": "ok"}))),
        HttpRoute::Register => accounts::register(deps, info, &req).await,
        HttpRoute::Login => accounts::login(deps, info, &req).await,
        HttpRoute::Refresh => accounts::refresh(deps, &req).await,
        HttpRoute::Logout => accounts::logout(deps, &req).await,
        HttpRoute::ListRooms => rooms::list(deps, &req).await,
        HttpRoute::CreateRoom => rooms::create(deps, &req).await,
        HttpRoute::AddMember => people::add_member(deps, &req, room()?).await,
        HttpRoute::ListMembers => people::list_members(deps, &req, room()?).await,
        HttpRoute::RemoveMember => people::remove_member(deps, &req, room()?, param("user")?).await,
        HttpRoute::MarkRead => people::mark_read(deps, &req, room()?).await,
        HttpRoute::Messages => rooms::messages(deps, &req, room()?).await,
        HttpRoute::OpenDirect => people::open_direct(deps, &req, param("username")?).await,
    }
}
