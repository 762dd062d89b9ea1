//! The HTTP API's request parsing (functions/http-api): the API Gateway HTTP API (payload
//! v2) event as lambda_http reads it, then every public parsing step the handler takes:
//! the size check, the route and its path segments, the bearer header and its token, each
//! route's body, the history and page queries.
//!
//! Properties: no panic; a matched route's path is a route path; every refusal's JSON error
//! body echoes nothing of the body, the query, the path or the `Authorization` header.

use std::sync::LazyLock;

use http_api::routes::HttpRoute;
use http_api::{ApiError, accounts, bearer_token, body, people, rooms, route_of, route_path};
use hubbub_core::auth::TokenVerifier;
use hubbub_core::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::http::Uri;
use lambda_http::{Body, Request, RequestExt};

use crate::echo;

/// Largest body the handler parses (`HUBBUB_MAX_BODY_BYTES`' default, docs/protocol.md).
const MAX_BODY_BYTES: usize = 16 * 1024;

static VERIFIER: LazyLock<TokenVerifier> = LazyLock::new(crate::authorizer::verifier);

/// The fuzz body: `data` is the event JSON.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !from_api_gateway(text) {
        return;
    }
    let Ok(req) = lambda_http::request::from_str(text) else {
        return;
    };
    check(text, &req);
}

/// Whether API Gateway could have sent the event as far as lambda_http's URI building
/// relies on it: a plain `host[:port]` ([`http_api::is_plain_host`], the check hubbub-local
/// makes; header, else domain name), `x-forwarded-proto` `http` or `https`, a stage of
/// plain characters, a path from `/` and a query a request line can carry (hubbub-local's
/// HTTP server refuses any other with 400). lambda_http unwraps its URL parse and its
/// request build (a malformed host, scheme or query panics it, request.rs);
/// API Gateway routes only its own domain names and paths and sets `x-forwarded-proto`
/// itself, and so does hubbub-local (local/src/events.rs `http_api_json`).
fn from_api_gateway(text: &str) -> bool {
    let Ok(ev) = serde_json::from_str::<ApiGatewayV2httpRequest>(text) else {
        return false;
    };
    let host = ev
        .headers
        .get(lambda_http::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or(ev.request_context.domain_name.as_deref());
    let plain = |s: &str, extra: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    let proto = ev.headers.get("x-forwarded-proto").map(|v| v.to_str().ok());
    host.is_none_or(http_api::is_plain_host)
        && proto.is_none_or(|p| matches!(p, Some("http" | "https")))
        && ev
            .request_context
            .stage
            .as_deref()
            .is_none_or(|s| plain(s, "$_-"))
        && ev
            .raw_path
            .as_deref()
            .is_none_or(|p| p.is_empty() || (p.starts_with('/') && p.parse::<Uri>().is_ok()))
        && ev
            .raw_query_string
            .as_deref()
            .is_none_or(|q| format!("/?{q}").parse::<Uri>().is_ok())
}

/// Everything of the request a client chose, for the echo check.
fn inputs(req: &Request) -> Vec<String> {
    let mut out = match req.body() {
        Body::Text(t) => echo::candidates(t),
        Body::Binary(b) => echo::candidates(&String::from_utf8_lossy(b)),
        _ => Vec::new(),
    };
    for segment in req.uri().path().split('/') {
        echo::push(&mut out, segment);
    }
    if let Some(q) = req.uri().query() {
        echo::push(&mut out, q);
    }
    for (_, v) in req
        .query_string_parameters_ref()
        .into_iter()
        .flat_map(|q| q.iter())
    {
        echo::push(&mut out, v);
    }
    for v in req.headers().get_all("authorization") {
        echo::push(&mut out, &String::from_utf8_lossy(v.as_bytes()));
    }
    out
}

/// The `error.message` of the answer a refusal becomes (a JSON error body, always).
fn refusal(e: ApiError) -> String {
    let resp = e.into_response("fuzz-request-id");
    let text = match resp.body() {
        Body::Text(t) => t.clone(),
        other => panic!("an error answer is a JSON text, not {other:?}"),
    };
    let v: serde_json::Value = serde_json::from_str(&text).expect("an error answer is JSON");
    v["error"]["message"]
        .as_str()
        .expect("an error answer has error.message")
        .to_owned()
}

/// Runs every parsing step on `req`; returns the refusals' messages, one per line.
fn steps(req: &Request) -> String {
    let mut messages = Vec::new();
    let mut step = |r: Result<(), ApiError>| {
        if let Err(e) = r {
            messages.push(refusal(e));
        }
    };
    step(body::check_size(req, MAX_BODY_BYTES));
    let path = route_path(req);
    match route_of(req.method(), &path) {
        Ok(matched) => {
            let trimmed = format!("/{}", path.trim_matches('/'));
            assert!(
                HttpRoute::is_route_path(&trimmed),
                "{trimmed} matched a route"
            );
            if let Some(room) = matched.param("room") {
                step(rooms::room_id(room).map(drop));
            }
            for name in ["user", "username"] {
                if let Some(segment) = matched.param(name) {
                    step(people::decode_segment(segment).map(drop));
                }
            }
        }
        Err(e) => step(Err(e)),
    }
    match bearer_token(req) {
        Ok(token) => {
            let verified = futures::executor::block_on(VERIFIER.verify(token));
            step(verified.map(drop).map_err(ApiError::Token));
        }
        Err(e) => step(Err(e)),
    }
    match accounts::credentials(req) {
        Ok(c) => step(accounts::check_registration(&c)),
        Err(e) => step(Err(e)),
    }
    step(accounts::presented_refresh_token(req).map(drop));
    step(rooms::new_room(req).map(drop));
    step(people::member_target(req).map(drop));
    step(people::read_mark(req).map(drop));
    step(rooms::history_query(req).map(drop));
    step(rooms::page_params(req, 100).map(drop));
    messages.join("\n")
}

/// The properties for one request, read from the event JSON `text`.
pub fn check(text: &str, req: &Request) {
    let messages_of = |text: &str| {
        lambda_http::request::from_str(text)
            .map(|req| steps(&req))
            .unwrap_or_default()
    };
    echo::assert_no_echo(text, &inputs(req), messages_of, "an HTTP error answer");
}
