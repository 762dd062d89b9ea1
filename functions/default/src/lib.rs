//! The `$default` route: `ping` gets `pong`; any other frame (unknown action, not JSON, no
//! string `action`) gets a `bad_request` error frame that says what was wrong. Like every route
//! after `$connect`, it refuses a connection whose access token has expired and closes it
//! ([`hubbub_core::session`]).

use std::sync::Arc;

use hubbub_core::aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use hubbub_core::error::RouteError;
use hubbub_core::gateway::ConnectionGateway;
use hubbub_core::protocol::{ClientFrame, ProtocolError, ServerFrame};
use hubbub_core::session::refuse_expired;
use hubbub_core::ws::{RouteContext, parse_frame, run_route};

/// The configuration this function reads at init: only the optional management endpoint. It
/// needs no store: it must keep answering `ping` when every store is down.
pub type Config = hubbub_core::config::GatewayConfig;

/// What `$default` needs: the management API, to close a connection whose token expired.
#[derive(Clone)]
pub struct DefaultDeps {
    pub gateway: Arc<dyn ConnectionGateway>,
    /// `HUBBUB_MANAGEMENT_ENDPOINT`, when set.
    pub endpoint_override: Option<String>,
}

/// Handles `$default`.
pub async fn handle(
    deps: &DefaultDeps,
    ev: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    run_route(ev, async {
        let ctx = RouteContext::from_event(ev, deps.endpoint_override.as_deref())?;
        if !refuse_expired(deps.gateway.as_ref(), &ctx, ev).await? {
            return Ok(None);
        }
        match parse_frame(ev)? {
            ClientFrame::Ping => Ok(Some(ServerFrame::Pong)),
            // A known action reaching $default means its route is not deployed.
            _ => Err(RouteError::from(ProtocolError::bad_request(
                "this action is not available",
            ))),
        }
    })
    .await
}
