//! The `$default` route: `ping` gets `pong`; any other frame (unknown action, not JSON, no
//! string `action`) gets a `bad_request` error frame that says what was wrong.

use hubbub_core::aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use hubbub_core::error::RouteError;
use hubbub_core::protocol::{ClientFrame, ProtocolError, ServerFrame};
use hubbub_core::ws::{parse_frame, run_route};

/// The configuration this function reads at init: nothing: it must answer even when every store is down.
pub type Config = ();

/// Handles `$default`. Needs no store: it must keep answering when everything else is down.
pub async fn handle(ev: &ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    run_route(ev, async {
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
