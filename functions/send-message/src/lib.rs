//! The `sendMessage` route, the heart of hubbub:
//!
//! 1. parse the frame (room, body, clientMsgId; limits of docs/protocol.md);
//! 2. spend a token of the connection's `sendMessage` bucket ([`hubbub_core::limits`]), or
//!    answer `rate_limited` with a retry hint having done nothing else;
//! 3. check the sender may use the room and this connection has joined it;
//! 4. commit to history, which assigns the room's next `seq` (idempotent on clientMsgId);
//! 5. post the `ack` to the sender's own connection at once (ack at commit);
//! 6. fan the `message` frame out to the room's other connections (only for a new commit).
//!
//! Nothing is delivered before the commit, and a failed commit answers `unavailable` with
//! nothing stored.
//!
//! Why the ack is posted rather than returned: a Lambda's route response leaves only when
//! the handler returns, i.e. after the fan-out, so an ack in the route response would wait
//! for the whole room and its latency would grow with room size. Posting it through
//! @connections right after the commit costs one extra post per message and one round trip
//! of latency, whatever the room's size. When that post is refused or its outcome is unknown,
//! the ack goes in the route response as before: the client may then see the same ack twice,
//! which the protocol allows (acks are idempotent on `clientMsgId`). A replayed
//! `clientMsgId` is answered in the route response: nothing is fanned out then.

use hubbub_core::aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use hubbub_core::error::RouteError;
use hubbub_core::limits::{self, BucketKind};
use hubbub_core::protocol::{ClientFrame, ProtocolError, ServerFrame};
use hubbub_core::store::{Commit, NewMessage};
use hubbub_core::ws::{RouteDeps, parse_frame, run_route};

/// The configuration this function reads at init: the connections table, the management API and the history database.
pub type Config = hubbub_core::config::RouteConfig;

/// Handles `sendMessage`.
pub async fn handle(
    deps: &RouteDeps,
    ev: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    run_route(ev, send(deps, ev)).await
}

async fn send(
    deps: &RouteDeps,
    ev: &ApiGatewayWebsocketProxyRequest,
) -> Result<Option<ServerFrame>, RouteError> {
    let Some(ctx) = deps.live.authorize(ev).await? else {
        return Ok(None);
    };
    let ClientFrame::SendMessage {
        room,
        body,
        client_msg_id,
    } = parse_frame(ev)?
    else {
        return Err(
            ProtocolError::bad_request("this route takes only `sendMessage` frames").into(),
        );
    };

    limits::spend(
        deps.live.connections.as_ref(),
        &deps.limits,
        &ctx.connection_id,
        BucketKind::Send,
    )
    .await?;
    deps.require_access(&ctx, &room).await?;
    if !deps
        .live
        .connections
        .is_member(&ctx.connection_id, &room)
        .await?
    {
        return Err(RouteError::Forbidden("join the room before sending to it"));
    }

    let commit = deps
        .history
        .commit_message(&NewMessage {
            room: room.clone(),
            sender: ctx.user.clone(),
            body,
            client_msg_id,
        })
        .await?;
    let ack = ServerFrame::ack(commit.message());
    match commit {
        Commit::New(msg) => {
            tracing::info!(%room, seq = msg.seq, "message committed");
            let acked = deps.live.post_to_caller(&ctx, &ack).await;
            deps.live
                .broadcast(&ctx, &room, &ServerFrame::Message(msg))
                .await;
            Ok((!acked).then_some(ack))
        }
        Commit::Duplicate(msg) => {
            tracing::info!(%room, seq = msg.seq, "replayed clientMsgId; acking again");
            Ok(Some(ack))
        }
    }
}
