//! What the WebSocket routes depend on: [`Live`] (connections, posting to them, fan-out and
//! presence) and [`RouteDeps`] (the live side plus the history store), built once at init by
//! `runtime` in Lambda, by hubbub-local's server, and by the tests.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;

use super::RouteContext;
use crate::error::{RouteError, chain};
use crate::fanout::{self, FanoutReport};
use crate::gateway::ConnectionGateway;
use crate::limits::Limits;
use crate::moderation::Moderator;
use crate::presence::{self, PresenceChange, PresenceSink};
use crate::protocol::{PresenceState, RoomId, ServerFrame};
use crate::queue::{self, FanoutQueue};
use crate::store::{ConnectionStore, HistoryStore};

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
    /// Rate limits, the typing debounce and the room caps ([`crate::limits`]).
    pub limits: Limits,
    /// The hook that reviews sends and edits before commit; `None`: none (the default).
    pub moderation: Option<Arc<dyn Moderator>>,
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
                frame,
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
