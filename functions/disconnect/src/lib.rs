//! The `$disconnect` route: removes the connection and its room memberships, and tells each
//! room the user left.
//!
//! API Gateway delivers `$disconnect` on a best-effort basis and ignores the answer; a missed
//! one is covered by the TTL on every connection item and by fan-out removing connections that
//! answer 410 Gone.

use hubbub_core::aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use hubbub_core::protocol::PresenceState;
use hubbub_core::ws::{Live, run_route};

/// The configuration this function reads at init: the connections table and the management API.
pub type Config = hubbub_core::config::LiveConfig;

/// Handles `$disconnect`.
pub async fn handle(deps: &Live, ev: &ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    run_route(ev, async {
        let ctx = deps.context(ev)?;
        let rooms = deps
            .connections
            .remove_connection(&ctx.connection_id)
            .await?;
        tracing::info!(
            rooms = rooms.len(),
            status = ev.request_context.disconnect_status_code,
            reason = ev
                .request_context
                .disconnect_reason
                .as_deref()
                .unwrap_or_default(),
            "disconnected"
        );
        for room in rooms {
            deps.announce(&ctx, &room, PresenceState::Left).await;
        }
        Ok(None)
    })
    .await
}
