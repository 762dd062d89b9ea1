//! API Gateway WebSocket event glue: who is calling, from which connection and stage
//! ([`RouteContext`]), the frame of a MESSAGE event, and how a handler's answer or error
//! becomes a route response ([`run_route`]).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::{ErrorCode, RouteError, chain};
use crate::gateway::Endpoint;
use crate::protocol::{
    ClientFrame, ClientMsgId, ProtocolError, RoomId, ServerFrame, UserRef, action_of,
};
use crate::store::{CONNECTION_TTL, Connection};

/// Authorizer context keys, set by the authorizer and read on every later route.
pub mod context_keys {
    pub const USER_ID: &str = "userId";
    pub const USER_NAME: &str = "userName";
    pub const TOKEN_EXP: &str = "tokenExp";
}

/// The caller of a WebSocket route, read from the event's request context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteContext {
    /// API Gateway's request id: echoed in error frames, on every log line.
    pub request_id: String,
    pub connection_id: String,
    pub route_key: String,
    /// The stage's management API endpoint.
    pub endpoint: Endpoint,
    /// The user the authorizer vouched for.
    pub user: UserRef,
    /// When the connection was opened (`connectedAt`, on every event of the connection); now
    /// when the event has none.
    pub connected_at: OffsetDateTime,
}

fn context_string(fields: &std::collections::HashMap<String, Value>, key: &str) -> Option<String> {
    // API Gateway may hand authorizer context values on as strings or as their JSON type.
    match fields.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl RouteContext {
    /// Reads the context of a MESSAGE, CONNECT or DISCONNECT event.
    ///
    /// `Unauthorized` when the authorizer context is missing: behind API Gateway that cannot
    /// happen, so it means the function was invoked some other way.
    pub fn from_event(
        ev: &ApiGatewayWebsocketProxyRequest,
        endpoint_override: Option<&str>,
    ) -> Result<Self, RouteError> {
        let rc = &ev.request_context;
        let connection_id = rc
            .connection_id
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or(RouteError::Unauthorized("the event has no connection id"))?;
        let fields = &rc.authorizer.fields;
        let user_id = context_string(fields, context_keys::USER_ID).ok_or(
            RouteError::Unauthorized("the event has no authorizer context"),
        )?;
        let user_name =
            context_string(fields, context_keys::USER_NAME).unwrap_or_else(|| user_id.clone());
        let connected_at =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(rc.connected_at) * 1_000_000)
                .ok()
                .filter(|t| t.unix_timestamp() > 0)
                .unwrap_or_else(OffsetDateTime::now_utc);
        let domain = rc.domain_name.as_deref().unwrap_or_default();
        let stage = rc.stage.as_deref().unwrap_or_default();
        Ok(Self {
            request_id: rc.request_id.clone().unwrap_or_default(),
            connection_id,
            route_key: rc.route_key.clone().unwrap_or_default(),
            endpoint: Endpoint::for_request(domain, stage, endpoint_override),
            user: UserRef {
                id: user_id,
                name: user_name,
            },
            connected_at,
        })
    }

    /// The caller's connection as `$connect` records it: its user, and an expiry
    /// [`CONNECTION_TTL`] after it opened, or after now when the event is older than that (a
    /// replayed sample event: a record born expired would make every later route refuse it).
    pub fn connection(&self) -> Connection {
        let mut conn = Connection::new(&self.connection_id, self.user.clone(), self.connected_at);
        conn.expires_at = conn
            .expires_at
            .max(OffsetDateTime::now_utc() + CONNECTION_TTL);
        conn
    }
}

/// The `tokenExp` the authorizer put in the context (Unix seconds), number or numeric string.
pub fn token_exp(ev: &ApiGatewayWebsocketProxyRequest) -> Option<i64> {
    context_string(
        &ev.request_context.authorizer.fields,
        context_keys::TOKEN_EXP,
    )?
    .parse()
    .ok()
}

/// A route response carrying one frame to the sender. Two-way routes deliver the body of a
/// 200 answer to the client; error frames ride the same way, so the client always gets them.
pub fn reply(frame: &ServerFrame) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = 200;
    r.body = Some(Body::Text(frame.to_json()));
    r
}

/// A route response with nothing for the sender.
pub fn no_reply() -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = 200;
    r
}

/// The error frame for a failed route, logged with its full cause chain (the client sees
/// only the code and a safe message).
pub fn error_frame(
    request_id: &str,
    err: &RouteError,
    action: Option<&str>,
    client_msg_id: Option<&str>,
    room: Option<&RoomId>,
) -> ServerFrame {
    let code = err.code();
    if matches!(code, ErrorCode::Unavailable | ErrorCode::Internal) {
        tracing::error!(request_id, code = code.as_str(), error = %chain(err), "route failed");
    } else {
        tracing::info!(request_id, code = code.as_str(), error = %err, "route refused");
    }
    ServerFrame::Error {
        code,
        message: err.client_message(),
        request_id: request_id.to_owned(),
        action: action.map(str::to_owned),
        client_msg_id: client_msg_id.map(str::to_owned),
        room: room.cloned(),
        retry_after_ms: err.retry_after_ms(),
    }
}

/// The request id of an event, for error frames sent before a [`RouteContext`] exists.
pub fn request_id(ev: &ApiGatewayWebsocketProxyRequest) -> &str {
    ev.request_context.request_id.as_deref().unwrap_or_default()
}

/// The frame text of a MESSAGE event (API Gateway base64-encodes binary frames).
pub fn body_text(ev: &ApiGatewayWebsocketProxyRequest) -> Option<&str> {
    if ev.is_base64_encoded {
        return None;
    }
    ev.body.as_deref()
}

/// Parses the frame of a MESSAGE event.
pub fn parse_frame(ev: &ApiGatewayWebsocketProxyRequest) -> Result<ClientFrame, RouteError> {
    if ev.is_base64_encoded {
        return Err(ProtocolError {
            code: ErrorCode::BadRequest,
            message: "binary frames are not supported; send JSON text frames".into(),
        }
        .into());
    }
    Ok(ClientFrame::parse(ev.body.as_deref().unwrap_or_default())?)
}

/// The route response for a failed route: an error frame naming the request, and the
/// `action`, `clientMsgId` and `room` of the frame when they are well-formed (never raw input).
pub fn error_reply(
    ev: &ApiGatewayWebsocketProxyRequest,
    err: &RouteError,
) -> ApiGatewayProxyResponse {
    let raw = body_text(ev).unwrap_or_default();
    let action = action_of(raw).filter(|a| crate::routes::is_known_action(a));
    let frame = serde_json::from_str::<Value>(raw).ok();
    let field = |name: &str| {
        frame
            .as_ref()
            .and_then(|v| v.get(name)?.as_str().map(str::to_owned))
    };
    let client_msg_id = field("clientMsgId").and_then(|c| ClientMsgId::parse(c).ok());
    let room = field("room").and_then(|r| RoomId::parse(r).ok());
    reply(&error_frame(
        request_id(ev),
        err,
        action.as_deref(),
        client_msg_id.as_ref().map(ClientMsgId::as_str),
        room.as_ref(),
    ))
}

/// Runs `route` inside a span carrying the request, connection, route and cold-start fields,
/// and turns its error into an error frame.
pub async fn run_route<F>(ev: &ApiGatewayWebsocketProxyRequest, route: F) -> ApiGatewayProxyResponse
where
    F: std::future::Future<Output = Result<Option<ServerFrame>, RouteError>>,
{
    let rc = &ev.request_context;
    let span = tracing::info_span!(
        "route",
        request_id = rc.request_id.as_deref().unwrap_or_default(),
        connection_id = rc.connection_id.as_deref().unwrap_or_default(),
        route = rc.route_key.as_deref().unwrap_or_default(),
        user_id = context_string(&rc.authorizer.fields, context_keys::USER_ID).unwrap_or_default(),
        cold_start = crate::telemetry::cold_start(),
    );
    let started = std::time::Instant::now();
    let out = tracing::Instrument::instrument(route, span.clone()).await;
    let _enter = span.enter();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match out {
        Ok(Some(frame)) => {
            tracing::info!(elapsed_ms, "route answered");
            reply(&frame)
        }
        Ok(None) => {
            tracing::info!(elapsed_ms, "route done");
            no_reply()
        }
        Err(e) => error_reply(ev, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `connectedAt` is the event's: one at the end of representable time (year 9999) gives
    /// a connection record instead of an overflow panic (found by the `ws_event` fuzz target's
    /// corpus, fuzz/regressions/ws_event/).
    #[test]
    fn a_connection_opened_in_year_9999_does_not_overflow() {
        let mut ev: ApiGatewayWebsocketProxyRequest =
            serde_json::from_str(include_str!("../../../events/join-room.json"))
                .expect("the sample event parses");
        ev.request_context.connected_at = 253_402_300_000_000;
        let ctx = RouteContext::from_event(&ev, None).expect("the sample has a caller");
        let conn = ctx.connection();
        assert!(conn.expires_at >= conn.connected_at);
    }
}
