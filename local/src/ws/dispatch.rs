//! Invoking the function behind a route, as API Gateway invokes a route's integration: each
//! data frame is routed on `$request.body.action` ([`RouteKey::for_body`]) and runs on the
//! connection's task when it needs no wait, in a task of its own when it does ([`frame`]); the
//! route response goes back to the sender as one frame.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use hubbub_core::aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use hubbub_core::aws_lambda_events::encodings::Body;
use hubbub_core::error::chain;
use hubbub_core::routes::{Function, RouteKey};
use tokio::sync::Semaphore;
use tokio::sync::mpsc::error::TrySendError;

use super::log_route;
use crate::events::{self, ConnMeta, now_ms};
use crate::ids::new_id;
use crate::registry::{LiveConn, Outbound};
use crate::server::AppState;

/// Invokes the route of one frame (bounded per connection): at once on the connection's task
/// when it needs no wait, else in its own task.
///
/// A route that never waits (the in-memory stores, in-process posts) finishes within its
/// first poll, here: its answer, and the ack it posts, are queued before the connection's
/// task looks at its queue again, instead of the route waiting its turn in the scheduler
/// behind every connection that a fan-out round has just woken. A route that waits (on
/// PostgreSQL, DynamoDB, a slow post) goes on in a task of its own, so a connection's routes
/// still run concurrently, as Lambda invocations do.
pub(super) async fn frame(
    state: &Arc<AppState>,
    live: &LiveConn,
    body: String,
    is_base64_encoded: bool,
    in_flight: &Arc<Semaphore>,
) {
    let Ok(permit) = in_flight.clone().acquire_owned().await else {
        return;
    };
    let state = state.clone();
    let live = live.clone();
    let connection_id = live.meta.connection_id.clone();
    let route = async move {
        let _permit = permit;
        let Some(out) = invoke_message(&state, &live.meta, &body, is_base64_encoded).await else {
            return;
        };
        match live.tx.try_send(out) {
            Ok(()) => {}
            // Closed while the route ran: API Gateway drops the response too.
            Err(TrySendError::Closed(_)) => {
                tracing::debug!(connection_id = %live.meta.connection_id, "route response after close dropped");
            }
            Err(TrySendError::Full(_)) => {
                tracing::warn!(connection_id = %live.meta.connection_id, "client is not reading; route response dropped");
            }
        }
    };
    // A panicking route ends its invocation, never the connection, whichever task runs it.
    let mut route = Box::pin(AssertUnwindSafe(route).catch_unwind().map(move |r| {
        if r.is_err() {
            tracing::error!(%connection_id, "route panicked");
        }
    }));
    if futures::poll!(route.as_mut()).is_pending() {
        tokio::spawn(route);
    }
}

/// Runs the route of one frame and returns the frame to send back, if any.
async fn invoke_message(
    state: &AppState,
    meta: &ConnMeta,
    body: &str,
    is_base64_encoded: bool,
) -> Option<Outbound> {
    // A binary frame has no `action` API Gateway could read.
    let route = if is_base64_encoded {
        RouteKey::Default
    } else {
        RouteKey::for_body(body)
    };
    let request_id = new_id();
    let event = match events::message(
        meta,
        route.as_str(),
        body,
        is_base64_encoded,
        &request_id,
        &new_id(),
        now_ms(),
    ) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(connection_id = %meta.connection_id, error = %chain(&e), "could not build the MESSAGE event");
            return None;
        }
    };
    let answer = invoke(state, route, &event, &meta.connection_id, &request_id).await;
    match answer.body {
        Some(Body::Text(t)) if !t.is_empty() => Some(Outbound::Text(t.into())),
        Some(Body::Binary(b)) if !b.is_empty() => Some(Outbound::Binary(b.into())),
        _ => None,
    }
}

/// Runs `$disconnect` for a connection that is already closed.
pub(super) async fn disconnect(state: &AppState, meta: &ConnMeta, code: u16, reason: &str) {
    let request_id = new_id();
    let event = match events::disconnect(meta, code, reason, &request_id, now_ms()) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(connection_id = %meta.connection_id, error = %chain(&e), "could not build the $disconnect event");
            return;
        }
    };
    invoke(
        state,
        RouteKey::Disconnect,
        &event,
        &meta.connection_id,
        &request_id,
    )
    .await;
}

/// Runs the function that serves `route`, as API Gateway invokes the route's integration,
/// and logs the invocation.
///
/// The `match` is exhaustive over hubbub-core's [`Function`]s, and each [`RouteKey`] names
/// its function there: a new route does not compile until it names one, and then it is
/// dispatched here with no further change; a new function does not compile until it is
/// dispatched here.
pub(super) async fn invoke(
    state: &AppState,
    route: RouteKey,
    event: &ApiGatewayWebsocketProxyRequest,
    connection_id: &str,
    request_id: &str,
) -> ApiGatewayProxyResponse {
    let function = route.function();
    // Waits for a free slot of this function, as a throttled Lambda's invocations would
    // retry; the slot is held for the whole invocation.
    let _slot = state.invocations.acquire(function).await;
    let started = Instant::now();
    let answer = match function {
        Function::Connect => connect::handle(&state.connect, event).await,
        Function::Disconnect => disconnect::handle(&state.routes.live, event).await,
        Function::SendMessage => send_message::handle(&state.routes, event).await,
        Function::Rooms => rooms::handle(&state.routes, event).await,
        Function::Default => {
            let deps = default_route::DefaultDeps {
                gateway: state.routes.live.gateway.clone(),
                endpoint_override: state.routes.live.endpoint_override.clone(),
            };
            default_route::handle(&deps, event).await
        }
    };
    log_route(
        route.as_str(),
        connection_id,
        request_id,
        answer.status_code,
        started,
    );
    answer
}

/// Concurrency slots per function ([`Function`]): one semaphore each, made on first use.
pub struct FunctionSlots {
    per_function: usize,
    slots: std::sync::Mutex<std::collections::HashMap<Function, Arc<Semaphore>>>,
}

impl FunctionSlots {
    /// `per_function` invocations of each function at once.
    pub fn new(per_function: usize) -> Self {
        Self {
            per_function,
            slots: std::sync::Mutex::default(),
        }
    }

    /// A slot of `function`, held until dropped (`None` only if the semaphore was closed,
    /// which never happens: the invocation then runs unbounded rather than not at all).
    pub async fn acquire(&self, function: Function) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let semaphore = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(function)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_function)))
            .clone();
        semaphore.acquire_owned().await.ok()
    }
}
