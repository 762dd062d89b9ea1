//! Identity on a live connection: an access token is checked at the handshake by the
//! authorizer, and its expiry (`tokenExp`, which the authorizer puts in the context every later
//! route gets) is checked again on every route after `$connect`. An expired connection is told
//! `unauthorized` and closed through `DELETE @connections`: clients renew by reconnecting with
//! a fresh token (docs/protocol.md, "Access tokens").
//!
//! Revoking a login (logout, a replayed refresh token) ends the user's sessions
//! ([`SessionEnder`]): a per-user "revoked before" marker the authorizer checks
//! ([`RevocationCheck`], cached briefly) keeps the user's earlier access tokens from opening
//! new connections, and the user's open connections are closed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use bytes::Bytes;
use futures::StreamExt;
use time::OffsetDateTime;

use crate::error::{RouteError, StoreError, chain};
use crate::gateway::{ConnectionGateway, Endpoint};
use crate::store::SessionStore;
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

/// How long the authorizer trusts what it last read of a user's revocation marker. A logout
/// closes the user's open connections at once; the cache only delays when a revoked token
/// stops opening new ones, by at most this long on an authorizer instance that read the
/// user's marker just before the logout. 5 s keeps a reconnect storm of one user to one read
/// per instance and window, while a stolen token's owner, once logged out, is safe within
/// seconds.
pub const REVOCATION_CACHE_TTL: Duration = Duration::from_secs(5);

/// Most users the revocation cache holds at once: bounds an authorizer's memory when many
/// distinct users connect within one window (it starts over when full).
const REVOCATION_CACHE_MAX: usize = 10_000;

/// Per-user revocation markers as the authorizer reads them, cached for
/// [`REVOCATION_CACHE_TTL`].
pub struct RevocationCheck {
    store: Arc<dyn SessionStore>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Option<i64>)>>,
}

impl RevocationCheck {
    /// Markers read from `store`, each trusted for `ttl` ([`REVOCATION_CACHE_TTL`] on AWS).
    pub fn new(store: Arc<dyn SessionStore>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a token of `user_id` issued at `issued_at` (Unix seconds; `None` counts as
    /// issued long ago) has been revoked.
    pub async fn is_revoked(
        &self,
        user_id: &str,
        issued_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let cached = self
            .lock()
            .get(user_id)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, marker)| *marker);
        let marker = match cached {
            Some(marker) => marker,
            None => {
                let marker = self.store.tokens_revoked_before(user_id).await?;
                let mut cache = self.lock();
                if cache.len() >= REVOCATION_CACHE_MAX {
                    cache.clear();
                }
                cache.insert(user_id.to_owned(), (Instant::now(), marker));
                marker
            }
        };
        Ok(marker.is_some_and(|before| issued_at.unwrap_or(i64::MIN) < before))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Option<i64>)>> {
        // The map is only a cache: after a panic elsewhere, its content is still usable.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// DELETEs in flight while ending a user's sessions. A user has a handful of connections (tabs,
/// devices), which all close at once; one with hundreds (a script) closes them in rounds of
/// this many (tens of milliseconds each against a healthy management API) without one logout
/// holding hundreds of requests to it at once, as a fan-out's own bound does.
const CLOSE_CONCURRENCY: usize = 16;

/// Ends a user's live sessions when a login is revoked (logout, a replayed refresh token):
/// their access tokens stop opening connections, and their open connections are closed.
pub struct SessionEnder {
    pub connections: Arc<dyn SessionStore>,
    pub gateway: Arc<dyn ConnectionGateway>,
    /// The WebSocket API's management endpoint (`HUBBUB_MANAGEMENT_ENDPOINT`).
    pub endpoint: Endpoint,
    /// The longest an access token lives: the marker is kept that long (plus the leeway).
    pub access_ttl: time::Duration,
}

impl SessionEnder {
    /// Revokes every access token of `user_id` issued up to `now` and closes the user's open
    /// connections; returns how many were closed.
    ///
    /// The marker is written first, so a connection opened after the connections are listed
    /// cannot have been allowed with an old token (beyond the authorizer's cache window).
    /// Tokens carry `iat` in whole seconds, so tokens issued in the second of the revocation
    /// are refused too: a new login in that same second must sign in again a second later.
    pub async fn end_sessions(
        &self,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let before = now.unix_timestamp().saturating_add(1);
        let keep_until = now + self.access_ttl + TOKEN_EXPIRY_LEEWAY + time::Duration::seconds(1);
        self.connections
            .revoke_tokens_before(user_id, before, keep_until)
            .await?;
        let ids = self.connections.user_connections(user_id).await?;
        // Collected first: a stream that maps borrowed ids to futures borrowing `self` is not
        // `Send` for every lifetime, which the HTTP server's handlers require.
        let closes: Vec<_> = ids
            .iter()
            .map(|id| async move {
            match self.gateway.delete(&self.endpoint, id).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(connection_id = %id, error = %chain(&e), "could not close a connection of a revoked login");
                    false
                }
            }
            })
            .collect();
        let outcomes: Vec<bool> = futures::stream::iter(closes)
            .buffer_unordered(CLOSE_CONCURRENCY)
            .collect()
            .await;
        let closed = outcomes.into_iter().filter(|ok| *ok).count();
        tracing::info!(
            user_id,
            connections = ids.len(),
            closed,
            "ended the user's sessions"
        );
        Ok(closed)
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
