//! Glue between API Gateway WebSocket events and the route handlers: who is calling, from
//! which connection and stage, and how a handler's answer becomes a route response.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use serde_json::Value;

use std::sync::Arc;

use crate::error::{ErrorCode, RouteError, chain};
use crate::fanout::{self, FanoutReport};
use crate::gateway::{ConnectionGateway, Endpoint};
use crate::presence::{self, PresenceChange, PresenceSink};
use crate::protocol::PresenceState;
use crate::protocol::{
    ClientFrame, ClientMsgId, ProtocolError, RoomId, ServerFrame, UserRef, action_of,
};
use crate::queue::{self, FanoutQueue};
use crate::store::{CONNECTION_TTL, Connection, ConnectionStore, HistoryStore};
use time::OffsetDateTime;

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

/// The live side of the system: connections, and posting to them. `$disconnect` needs only
/// this; the message routes add the history store ([`RouteDeps`]).
#[derive(Clone)]
pub struct Live {
    pub connections: Arc<dyn ConnectionStore>,
    pub gateway: Arc<dyn ConnectionGateway>,
    /// `HUBBUB_MANAGEMENT_ENDPOINT`, when set.
    pub endpoint_override: Option<String>,
    /// Where large rooms' fan-out goes ([`queue`]); `None` posts every fan-out inline.
    pub queue: Option<Arc<dyn FanoutQueue>>,
    /// Where joins and leaves are coalesced ([`crate::presence`]); `None` announces each
    /// change at once, on its own.
    pub presence: Option<Arc<dyn PresenceSink>>,
}

/// Everything `sendMessage` and the room routes need.
#[derive(Clone)]
pub struct RouteDeps {
    pub live: Live,
    pub history: Arc<dyn HistoryStore>,
}

impl RouteDeps {
    /// Refuses a room the caller may not use: `not_found` when it does not exist,
    /// `forbidden` when it is private and the user is not a member.
    pub async fn require_access(
        &self,
        ctx: &RouteContext,
        room: &RoomId,
    ) -> Result<(), RouteError> {
        Ok(self
            .history
            .room_access(room, &ctx.user.id)
            .await?
            .require()?)
    }
}

impl Live {
    /// The caller of this event.
    pub fn context(
        &self,
        ev: &ApiGatewayWebsocketProxyRequest,
    ) -> Result<RouteContext, RouteError> {
        RouteContext::from_event(ev, self.endpoint_override.as_deref())
    }

    /// Posts `frame` to the caller's own connection, as the route response would, but now
    /// rather than when the handler returns. `true` when API Gateway accepted it; `false` when
    /// it certainly did not or the outcome is unknown, so the caller can still answer with it
    /// (a frame that may then arrive twice must be idempotent for the client, as an ack is).
    pub async fn post_to_caller(&self, ctx: &RouteContext, frame: &ServerFrame) -> bool {
        let data = bytes::Bytes::from(frame.to_json());
        match self
            .gateway
            .post(&ctx.endpoint, &ctx.connection_id, &data)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(request_id = %ctx.request_id, error = %chain(&e), "could not post to the caller; answering in the route response");
                false
            }
        }
    }

    /// Announces that the caller joined or left `room`: published to the presence sink, to
    /// go out with the rest of its window, or at once when there is no sink. A failure is
    /// logged: presence is advisory, and the join or leave itself has happened.
    pub async fn announce(&self, ctx: &RouteContext, room: &RoomId, state: PresenceState) {
        let change = PresenceChange {
            endpoint: ctx.endpoint.as_str().to_owned(),
            room: room.clone(),
            user: ctx.user.clone(),
            state,
        };
        match &self.presence {
            Some(sink) => {
                if let Err(e) = sink.publish(change).await {
                    tracing::warn!(request_id = %ctx.request_id, %room, error = %chain(&e), "presence change not published");
                }
            }
            None => {
                presence::flush_all(
                    self.connections.as_ref(),
                    self.gateway.as_ref(),
                    self.queue.as_deref(),
                    vec![change],
                )
                .await;
            }
        }
    }

    /// Fans `frame` out to the room's other connections, logging the outcome. A failure to
    /// read the members is logged, not returned: what triggered the fan-out already happened.
    pub async fn broadcast(
        &self,
        ctx: &RouteContext,
        room: &RoomId,
        frame: &ServerFrame,
    ) -> FanoutReport {
        let started = std::time::Instant::now();
        let except = Some(ctx.connection_id.as_str());
        let result = match &self.queue {
            Some(q) => queue::deliver(
                self.connections.as_ref(),
                self.gateway.as_ref(),
                q.as_ref(),
                &ctx.endpoint,
                room,
                &bytes::Bytes::from(frame.to_json()),
                except,
            )
            .await
            .map_err(|e| chain(&e)),
            None => fanout::broadcast(
                self.connections.as_ref(),
                self.gateway.as_ref(),
                &ctx.endpoint,
                room,
                frame,
                except,
            )
            .await
            .map_err(|e| chain(&e)),
        };
        match result {
            Ok(r) => {
                tracing::info!(
                    request_id = %ctx.request_id, %room, delivered = r.delivered, gone = r.gone,
                    failed = r.failed, unknown = r.unknown, queued = r.queued,
                    elapsed_ms = started.elapsed().as_millis() as u64, "fan-out done"
                );
                r
            }
            Err(error) => {
                tracing::error!(request_id = %ctx.request_id, %room, %error, "fan-out incomplete: members unreadable or jobs not enqueued");
                FanoutReport::default()
            }
        }
    }
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
