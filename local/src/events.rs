//! The events API Gateway sends to hubbub's Lambdas, built field for field as the samples in
//! `events/` show (see `events/README.md` for what real events look like): the WebSocket
//! API's authorizer, `$connect`, MESSAGE and `$disconnect` events, and the HTTP API's payload
//! 2.0 requests ([`http_api`]).
//!
//! Every event is first built as JSON and then deserialised into its `aws_lambda_events`
//! type (for the HTTP API, into lambda_http's `Request`, through lambda_http's own
//! conversion), exactly as the Lambda runtime would: a field the handlers cannot read here
//! would not be readable on AWS either.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use hubbub_core::aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest,
};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// An event could not take its typed shape (a bug in the emulator, not in the request).
#[derive(Debug, thiserror::Error)]
#[error("could not build the {kind} event")]
pub struct EventError {
    kind: &'static str,
    #[source]
    source: serde_json::Error,
}

/// What API Gateway knows about a connection and repeats in every event of it.
#[derive(Debug, Clone)]
pub struct ConnMeta {
    pub connection_id: String,
    /// Unix milliseconds.
    pub connected_at_ms: i64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    /// The `Host` the client connected to.
    pub domain_name: String,
    pub stage: String,
    pub api_id: String,
    /// `requestContext.authorizer`: the authorizer's context flattened next to `principalId`
    /// and `integrationLatency`. Empty until the authorizer has answered.
    pub authorizer: Map<String, Value>,
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// An instant in Unix milliseconds as a UTC date-time.
pub fn datetime(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `requestTime` as API Gateway writes it: `15/Jan/2026:09:30:00 +0000`.
pub fn request_time(ms: i64) -> String {
    let t = datetime(ms);
    let month = MONTHS[usize::from(u8::from(t.month())).saturating_sub(1) % 12];
    format!(
        "{:02}/{month}/{}:{:02}:{:02}:{:02} +0000",
        t.day(),
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The method ARN the authorizer is asked about.
pub fn method_arn(region: &str, account: &str, api_id: &str, stage: &str) -> String {
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/$connect")
}

/// Headers the authorizer sees but the `$connect` integration does not (hop-by-hop).
const HOP_HEADERS: [&str; 3] = ["connection", "upgrade", "content-length"];

/// `headers` and `multiValueHeaders` of a request, without `skip`.
fn header_maps(headers: &HeaderMap, skip: &[&str]) -> (Map<String, Value>, Map<String, Value>) {
    let mut single = Map::new();
    let mut multi = Map::new();
    for name in headers.keys() {
        if skip.contains(&name.as_str()) {
            continue;
        }
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if let Some(last) = values.last() {
            single.insert(name.to_string(), json!(last));
            multi.insert(name.to_string(), json!(values));
        }
    }
    (single, multi)
}

/// `queryStringParameters` (last value wins) and `multiValueQueryStringParameters`.
fn query_maps(raw_query: Option<&str>) -> (Map<String, Value>, Map<String, Value>) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (k, v) in form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes()) {
        single.insert(k.to_string(), json!(v));
        match multi.get_mut(k.as_ref()) {
            Some(Value::Array(values)) => values.push(json!(v)),
            _ => {
                multi.insert(k.to_string(), json!([v]));
            }
        }
    }
    (single, multi)
}

fn identity(meta: &ConnMeta) -> Value {
    let mut id = Map::new();
    id.insert("sourceIp".into(), json!(meta.source_ip));
    if let Some(ua) = &meta.user_agent {
        id.insert("userAgent".into(), json!(ua));
    }
    Value::Object(id)
}

fn request_context(
    meta: &ConnMeta,
    route_key: &str,
    event_type: &str,
    request_id: &str,
    now_ms: i64,
) -> Map<String, Value> {
    let mut rc = Map::new();
    rc.insert("routeKey".into(), json!(route_key));
    rc.insert("eventType".into(), json!(event_type));
    // In WebSocket events `extendedRequestId` equals `requestId`.
    rc.insert("extendedRequestId".into(), json!(request_id));
    rc.insert("requestTime".into(), json!(request_time(now_ms)));
    rc.insert("messageDirection".into(), json!("IN"));
    rc.insert("stage".into(), json!(meta.stage));
    rc.insert("connectedAt".into(), json!(meta.connected_at_ms));
    rc.insert("requestTimeEpoch".into(), json!(now_ms));
    rc.insert("identity".into(), identity(meta));
    rc.insert("requestId".into(), json!(request_id));
    rc.insert("domainName".into(), json!(meta.domain_name));
    rc.insert("connectionId".into(), json!(meta.connection_id));
    rc.insert("apiId".into(), json!(meta.api_id));
    if !meta.authorizer.is_empty() {
        rc.insert("authorizer".into(), Value::Object(meta.authorizer.clone()));
    }
    rc
}

fn typed<T: serde::de::DeserializeOwned>(kind: &'static str, v: Value) -> Result<T, EventError> {
    serde_json::from_value(v).map_err(|source| EventError { kind, source })
}

/// The REQUEST authorizer's event for a `$connect`: every header (hop headers included) and
/// the query string (`{}` when there is none).
pub fn authorizer_request(
    meta: &ConnMeta,
    method_arn: &str,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    request_id: &str,
    now_ms: i64,
) -> Result<ApiGatewayCustomAuthorizerRequestTypeRequest, EventError> {
    typed(
        "authorizer",
        authorizer_request_json(meta, method_arn, headers, raw_query, request_id, now_ms),
    )
}

/// [`authorizer_request`] as the JSON API Gateway sends.
pub fn authorizer_request_json(
    meta: &ConnMeta,
    method_arn: &str,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    request_id: &str,
    now_ms: i64,
) -> Value {
    let (h, mh) = header_maps(headers, &[]);
    let (q, mq) = query_maps(raw_query);
    json!({
        "type": "REQUEST",
        "methodArn": method_arn,
        "headers": h,
        "multiValueHeaders": mh,
        "queryStringParameters": q,
        "multiValueQueryStringParameters": mq,
        "stageVariables": {},
        "requestContext": request_context(meta, "$connect", "CONNECT", request_id, now_ms),
    })
}

/// The `$connect` event: headers without hop headers, the query string only when there is
/// one, the authorizer context.
pub fn connect(
    meta: &ConnMeta,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    request_id: &str,
    now_ms: i64,
) -> Result<ApiGatewayWebsocketProxyRequest, EventError> {
    typed(
        "$connect",
        connect_json(meta, headers, raw_query, request_id, now_ms),
    )
}

/// [`connect`] as the JSON API Gateway sends.
pub fn connect_json(
    meta: &ConnMeta,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    request_id: &str,
    now_ms: i64,
) -> Value {
    let (h, mh) = header_maps(headers, &HOP_HEADERS);
    let (q, mq) = query_maps(raw_query);
    let mut v = Map::new();
    v.insert("headers".into(), Value::Object(h));
    v.insert("multiValueHeaders".into(), Value::Object(mh));
    if !q.is_empty() {
        v.insert("queryStringParameters".into(), Value::Object(q));
        v.insert("multiValueQueryStringParameters".into(), Value::Object(mq));
    }
    v.insert(
        "requestContext".into(),
        Value::Object(request_context(
            meta, "$connect", "CONNECT", request_id, now_ms,
        )),
    );
    v.insert("isBase64Encoded".into(), json!(false));
    Value::Object(v)
}

/// A MESSAGE event: no headers at all, the frame as `body` (base64 for binary frames).
pub fn message(
    meta: &ConnMeta,
    route_key: &str,
    body: &str,
    is_base64_encoded: bool,
    request_id: &str,
    message_id: &str,
    now_ms: i64,
) -> Result<ApiGatewayWebsocketProxyRequest, EventError> {
    typed(
        "MESSAGE",
        message_json(
            meta,
            route_key,
            body,
            is_base64_encoded,
            request_id,
            message_id,
            now_ms,
        ),
    )
}

/// [`message`] as the JSON API Gateway sends.
pub fn message_json(
    meta: &ConnMeta,
    route_key: &str,
    body: &str,
    is_base64_encoded: bool,
    request_id: &str,
    message_id: &str,
    now_ms: i64,
) -> Value {
    let mut rc = request_context(meta, route_key, "MESSAGE", request_id, now_ms);
    rc.insert("messageId".into(), json!(message_id));
    json!({
        "requestContext": rc,
        "body": body,
        "isBase64Encoded": is_base64_encoded,
    })
}

/// The `$disconnect` event: API Gateway's fixed header stub, the close code and reason.
pub fn disconnect(
    meta: &ConnMeta,
    status_code: u16,
    reason: &str,
    request_id: &str,
    now_ms: i64,
) -> Result<ApiGatewayWebsocketProxyRequest, EventError> {
    typed(
        "$disconnect",
        disconnect_json(meta, status_code, reason, request_id, now_ms),
    )
}

/// [`disconnect`] as the JSON API Gateway sends.
pub fn disconnect_json(
    meta: &ConnMeta,
    status_code: u16,
    reason: &str,
    request_id: &str,
    now_ms: i64,
) -> Value {
    let mut rc = request_context(meta, "$disconnect", "DISCONNECT", request_id, now_ms);
    rc.insert("disconnectStatusCode".into(), json!(status_code));
    rc.insert("disconnectReason".into(), json!(reason));
    json!({
        "headers": {
            "Host": meta.domain_name,
            "x-api-key": "",
            "X-Forwarded-For": "",
            "x-restapi": "",
        },
        "multiValueHeaders": {
            "Host": [meta.domain_name],
            "x-api-key": [""],
            "X-Forwarded-For": [""],
            "x-restapi": [""],
        },
        "requestContext": rc,
        "isBase64Encoded": false,
    })
}

/// What API Gateway's HTTP API knows about one request: everything its payload 2.0 event
/// carries.
#[derive(Debug, Clone)]
pub struct HttpRequestMeta<'a> {
    pub method: &'a str,
    /// The path as the client sent it: with the `/{stage}` prefix for a named stage.
    pub raw_path: &'a str,
    pub raw_query: Option<&'a str>,
    /// `HTTP/1.1`, ...
    pub protocol: &'a str,
    pub source_ip: &'a str,
    /// The port the client connected to (`x-forwarded-port`).
    pub port: u16,
    /// The API's host name (the `host` header and `requestContext.domainName`).
    pub domain_name: &'a str,
    /// `$default` for requests without the stage prefix, else the stage name.
    pub stage: &'a str,
    /// The matched route's template, `POST /rooms/{room}/members`.
    pub route_key: &'a str,
    /// The template's `{name}` segments and their values.
    pub path_parameters: &'a [(String, String)],
    pub request_id: &'a str,
    pub api_id: &'a str,
    pub account_id: &'a str,
    /// Unix milliseconds.
    pub now_ms: i64,
}

/// Connection-level headers: API Gateway terminates the client's connection, so these never
/// reach an integration.
const HTTP_HOP_HEADERS: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "cookie",
];

/// An `x-amzn-trace-id` as API Gateway adds it: `Root=1-{epoch seconds, hex}-{96 random bits}`.
fn trace_id(now_ms: i64) -> String {
    let random: [u8; 12] = rand::random();
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("Root=1-{:08x}-{hex}", now_ms / 1000)
}

/// The HTTP API (payload 2.0) request a Lambda gets: header names lower-case with repeated
/// headers joined by commas, cookies in `cookies`, `x-forwarded-*` and `x-amzn-trace-id`
/// added, `queryStringParameters` and `pathParameters` only when there are some, the body as
/// text when it is UTF-8 and base64 otherwise.
pub fn http_api_json(meta: &HttpRequestMeta<'_>, headers: &HeaderMap, body: &[u8]) -> Value {
    let mut h = Map::new();
    for name in headers.keys() {
        if HTTP_HOP_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let joined = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        h.insert(name.to_string(), json!(joined));
    }
    h.insert("host".into(), json!(meta.domain_name));
    let forwarded = match h.get("x-forwarded-for").and_then(Value::as_str) {
        Some(chain) if !chain.is_empty() => format!("{chain}, {}", meta.source_ip),
        _ => meta.source_ip.to_owned(),
    };
    h.insert("x-forwarded-for".into(), json!(forwarded));
    h.insert("x-forwarded-port".into(), json!(meta.port.to_string()));
    h.insert("x-forwarded-proto".into(), json!("http"));
    h.insert("x-amzn-trace-id".into(), json!(trace_id(meta.now_ms)));

    let cookies: Vec<String> = headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(';')
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();

    let mut query = Map::new();
    for (k, v) in form_urlencoded::parse(meta.raw_query.unwrap_or_default().as_bytes()) {
        // Payload 2.0 joins repeated parameters with commas.
        match query.get_mut(k.as_ref()) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(&v);
            }
            _ => {
                query.insert(k.into_owned(), json!(v));
            }
        }
    }

    let domain_prefix = meta
        .domain_name
        .split('.')
        .next()
        .unwrap_or(meta.domain_name);
    let mut http = Map::new();
    http.insert("method".into(), json!(meta.method));
    http.insert("path".into(), json!(meta.raw_path));
    http.insert("protocol".into(), json!(meta.protocol));
    http.insert("sourceIp".into(), json!(meta.source_ip));
    http.insert(
        "userAgent".into(),
        json!(
            headers
                .get(http::header::USER_AGENT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default()
        ),
    );
    let rc = json!({
        "accountId": meta.account_id,
        "apiId": meta.api_id,
        "domainName": meta.domain_name,
        "domainPrefix": domain_prefix,
        "http": http,
        "requestId": meta.request_id,
        "routeKey": meta.route_key,
        "stage": meta.stage,
        "time": request_time(meta.now_ms),
        "timeEpoch": meta.now_ms,
    });

    let mut v = Map::new();
    v.insert("version".into(), json!("2.0"));
    v.insert("routeKey".into(), json!(meta.route_key));
    v.insert("rawPath".into(), json!(meta.raw_path));
    v.insert(
        "rawQueryString".into(),
        json!(meta.raw_query.unwrap_or_default()),
    );
    if !cookies.is_empty() {
        v.insert("cookies".into(), json!(cookies));
    }
    v.insert("headers".into(), Value::Object(h));
    if !query.is_empty() {
        v.insert("queryStringParameters".into(), Value::Object(query));
    }
    v.insert("requestContext".into(), rc);
    if !meta.path_parameters.is_empty() {
        let params: Map<String, Value> = meta
            .path_parameters
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        v.insert("pathParameters".into(), Value::Object(params));
    }
    let base64 = match std::str::from_utf8(body) {
        _ if body.is_empty() => false,
        Ok(text) => {
            v.insert("body".into(), json!(text));
            false
        }
        Err(_) => {
            v.insert("body".into(), json!(STANDARD.encode(body)));
            true
        }
    };
    v.insert("isBase64Encoded".into(), json!(base64));
    Value::Object(v)
}

/// [`http_api_json`] as the `lambda_http::Request` the runtime hands the handler (with its
/// `RequestContext::ApiGatewayV2` extension), converted by lambda_http itself.
pub fn http_api(
    meta: &HttpRequestMeta<'_>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<lambda_http::Request, EventError> {
    lambda_http::request::from_str(&http_api_json(meta, headers, body).to_string()).map_err(
        |source| EventError {
            kind: "HTTP API",
            source,
        },
    )
}
