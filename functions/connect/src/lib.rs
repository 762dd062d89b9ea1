//! The `$connect` route: records the connection the authorizer allowed.
//!
//! A 2xx answer completes the handshake; anything else refuses it with that status. When the
//! client offered the `hubbub.v1` subprotocol, the answer names it in `Sec-WebSocket-Protocol`
//! (browsers drop a connection whose offered subprotocols all went unanswered).

use std::sync::Arc;

use hubbub_core::aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use hubbub_core::aws_lambda_events::http::HeaderValue;
use hubbub_core::error::chain;
use hubbub_core::store::ConnectionStore;
use hubbub_core::ws::RouteContext;

/// The configuration this function reads at init: the connections table.
pub type Config = hubbub_core::config::DynamoConfig;

/// The subprotocol hubbub speaks.
pub const SUBPROTOCOL: &str = "hubbub.v1";

/// What `$connect` needs.
#[derive(Clone)]
pub struct ConnectDeps {
    pub connections: Arc<dyn ConnectionStore>,
}

fn status(code: i64) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = code;
    r
}

/// Whether the client offered `hubbub.v1` among its subprotocols.
pub fn offers_subprotocol(ev: &ApiGatewayWebsocketProxyRequest) -> bool {
    ev.headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL)
}

/// Handles `$connect`.
pub async fn handle(
    deps: &ConnectDeps,
    ev: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let ctx = match RouteContext::from_event(ev, None) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "refusing $connect without an authorizer context");
            return status(401);
        }
    };
    let conn = ctx.connection();
    if let Err(e) = deps.connections.put_connection(&conn).await {
        // Refuse the handshake: a connection we cannot record could never receive messages.
        tracing::error!(request_id = %ctx.request_id, connection_id = %ctx.connection_id, error = %chain(&e), "could not store connection");
        return status(500);
    }
    tracing::info!(
        request_id = %ctx.request_id, connection_id = %ctx.connection_id, user_id = %ctx.user.id,
        cold_start = hubbub_core::telemetry::cold_start(), "connected"
    );
    let mut resp = status(200);
    if offers_subprotocol(ev) {
        resp.headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    resp
}
