//! The events API Gateway sends to a WebSocket API's Lambdas, built field for field as the
//! samples in `events/` show (see `events/README.md` for what real events look like).
//!
//! Every event is first built as JSON and then deserialised into its `aws_lambda_events`
//! type, exactly as the Lambda runtime would: a field the handlers cannot read here would not
//! be readable on AWS either.

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
