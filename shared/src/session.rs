//! Identity on a live connection: an access token is checked at the handshake by the
//! authorizer, and its expiry (`tokenExp`, which the authorizer puts in the context every later
//! route gets) is checked again on every route after `$connect`. An expired connection is told
//! `unauthorized` and closed through `DELETE @connections`: clients renew by reconnecting with
//! a fresh token (docs/protocol.md, "Access tokens").

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::error::{RouteError, chain};
use crate::gateway::ConnectionGateway;
use crate::ws::{self, Live, RouteContext};

/// How long after `tokenExp` a connection is still served. It matches the clock skew the
/// authorizer tolerates on `exp` (`JwtConfig::leeway`), so a token the handshake accepted is
/// not refused on its first frame, and a frame sent just before expiry that spent a moment in
/// flight is still answered.
pub const TOKEN_EXPIRY_LEEWAY: time::Duration = time::Duration::seconds(30);

/// The message of the `unauthorized` error frame an expired connection gets.
pub const TOKEN_EXPIRED: &str = "the access token has expired; reconnect with a fresh token";

/// Whether the token behind the event is past `tokenExp` plus [`TOKEN_EXPIRY_LEEWAY`] at
/// `now`. An event without a readable `tokenExp` counts as expired: behind API Gateway the
/// authorizer always sets it, so its absence means the event did not come that way.
pub fn token_expired(ev: &ApiGatewayWebsocketProxyRequest, now: OffsetDateTime) -> bool {
    match ws::token_exp(ev) {
        Some(exp) => now.unix_timestamp() > exp.saturating_add(TOKEN_EXPIRY_LEEWAY.whole_seconds()),
        None => true,
    }
}

/// Refuses and closes the caller's connection when its token has expired.
///
/// Returns `Ok(true)` when the token is live. Otherwise the `unauthorized` error frame is
/// posted to the connection (a route response would never reach a connection closed before
/// the handler returns), the connection is closed, and the result is `Ok(false)` when the frame
/// went out, or the error for the route response when it could not be posted.
pub async fn refuse_expired(
    gateway: &dyn ConnectionGateway,
    ctx: &RouteContext,
    ev: &ApiGatewayWebsocketProxyRequest,
) -> Result<bool, RouteError> {
    if !token_expired(ev, OffsetDateTime::now_utc()) {
        return Ok(true);
    }
    let err = RouteError::Unauthorized(TOKEN_EXPIRED);
    let frame = ws::error_reply(ev, &err);
    let posted = match frame.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => gateway
            .post(&ctx.endpoint, &ctx.connection_id, &Bytes::from(text))
            .await
            .map_err(|e| {
                tracing::warn!(request_id = %ctx.request_id, error = %chain(&e), "could not post the expiry error frame");
            })
            .is_ok(),
        _ => false,
    };
    match gateway.delete(&ctx.endpoint, &ctx.connection_id).await {
        Ok(()) => {
            tracing::info!(request_id = %ctx.request_id, connection_id = %ctx.connection_id, user_id = %ctx.user.id, "closed a connection whose access token expired");
        }
        Err(e) => {
            // Gone already is fine; anything else leaves the connection to API Gateway's own
            // limits, but this and every later frame of it is still refused.
            tracing::warn!(request_id = %ctx.request_id, connection_id = %ctx.connection_id, error = %chain(&e), "could not close a connection whose access token expired");
        }
    }
    if posted { Ok(false) } else { Err(err) }
}

impl Live {
    /// The caller of this event, when its access token is still live; `Ok(None)` when it has
    /// expired and the connection was told so and closed ([`refuse_expired`]): the route then
    /// answers nothing.
    pub async fn authorize(
        &self,
        ev: &ApiGatewayWebsocketProxyRequest,
    ) -> Result<Option<RouteContext>, RouteError> {
        let ctx = self.context(ev)?;
        Ok(refuse_expired(self.gateway.as_ref(), &ctx, ev)
            .await?
            .then_some(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(exp: Option<serde_json::Value>) -> ApiGatewayWebsocketProxyRequest {
        let mut ev = ApiGatewayWebsocketProxyRequest::default();
        let fields = &mut ev.request_context.authorizer.fields;
        fields.insert("userId".into(), json!("u-a"));
        if let Some(exp) = exp {
            fields.insert("tokenExp".into(), exp);
        }
        ev
    }

    #[test]
    fn expiry_has_a_leeway_and_fails_closed() {
        let now = OffsetDateTime::now_utc();
        let t = now.unix_timestamp();
        assert!(!token_expired(&event(Some(json!(t + 60))), now));
        assert!(!token_expired(&event(Some(json!(t - 30))), now));
        assert!(token_expired(&event(Some(json!(t - 31))), now));
        // Stringified by API Gateway, as documented for authorizer context values.
        assert!(!token_expired(
            &event(Some(json!((t + 60).to_string()))),
            now
        ));
        assert!(token_expired(&event(None), now));
        assert!(token_expired(&event(Some(json!("soon"))), now));
    }
}
