//! The routes that write a room's messages: `sendMessage` (here), and `editMessage`,
//! `deleteMessage` and `react` ([`changes`]). `sendMessage` is the heart of hubbub:
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
use hubbub_core::moderation::{Review, Verdict};
use hubbub_core::protocol::{
    ClientFrame, ClientMsgId, MessageBody, MessageKind, ProtocolError, RoomId, ServerFrame,
};
use hubbub_core::store::{Change, Commit, NewMessage};
use hubbub_core::ws::{RouteContext, RouteDeps, parse_frame, run_route};

mod changes;

/// The configuration this function reads at init: the connections table, the management API and the history database.
pub type Config = hubbub_core::config::RouteConfig;

/// Handles `sendMessage`, `editMessage`, `deleteMessage` and `react`.
pub async fn handle(
    deps: &RouteDeps,
    ev: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    run_route(ev, route(deps, ev)).await
}

async fn route(
    deps: &RouteDeps,
    ev: &ApiGatewayWebsocketProxyRequest,
) -> Result<Option<ServerFrame>, RouteError> {
    let Some(ctx) = deps.live.authorize(ev).await? else {
        return Ok(None);
    };
    match parse_frame(ev)? {
        ClientFrame::SendMessage {
            room,
            body,
            client_msg_id,
            reply_to,
        } => {
            send(
                deps,
                &ctx,
                NewMessage {
                    room,
                    sender: ctx.user.clone(),
                    body,
                    client_msg_id,
                    reply_to,
                },
            )
            .await
        }
        ClientFrame::EditMessage {
            room,
            seq,
            body,
            client_msg_id,
        } => {
            let change = Change::Edit(body);
            changes::change(deps, &ctx, room, seq, change, client_msg_id).await
        }
        ClientFrame::DeleteMessage {
            room,
            seq,
            client_msg_id,
        } => changes::change(deps, &ctx, room, seq, Change::Delete, client_msg_id).await,
        ClientFrame::React {
            room,
            seq,
            emoji,
            remove,
        } => changes::react(deps, &ctx, room, seq, emoji, !remove)
            .await
            .map(Some),
        _ => Err(ProtocolError::bad_request(
            "this route takes sendMessage, editMessage, deleteMessage and react",
        )
        .into()),
    }
}

async fn send(
    deps: &RouteDeps,
    ctx: &RouteContext,
    mut msg: NewMessage,
) -> Result<Option<ServerFrame>, RouteError> {
    let room = msg.room.clone();
    admit(deps, ctx, &room, "join the room before sending to it").await?;
    if let Some(first) = reviewed_before(deps, ctx, &room, &msg.client_msg_id, &msg.body).await? {
        return Ok(Some(first));
    }
    let replaced = moderate(deps, ctx, &room, &mut msg.body, MessageKind::Message).await?;
    let commit = deps.history.commit_message(&msg).await?;
    deliver(deps, ctx, commit, replaced).await
}

/// With a moderation hook, the ack of an entry this sender already committed under
/// `client_msg_id` (a retry whose first ack was lost), so that it is not reviewed again: the
/// first review decided, the entry is stored and was delivered, and a verdict that changed
/// since (or a hook that is down now) must not tell the sender otherwise. The ack says the
/// body was replaced when the stored one differs from `body`. Without a hook there is no
/// review to skip, and the commit finds the first entry in its own transaction.
pub(crate) async fn reviewed_before(
    deps: &RouteDeps,
    ctx: &RouteContext,
    room: &RoomId,
    client_msg_id: &ClientMsgId,
    body: &MessageBody,
) -> Result<Option<ServerFrame>, RouteError> {
    if deps.moderation.is_none() {
        return Ok(None);
    }
    let Some(first) = deps
        .history
        .committed(room, &ctx.user.id, client_msg_id)
        .await?
    else {
        return Ok(None);
    };
    let replaced = first.body.as_ref().is_some_and(|b| b != body);
    deliver(deps, ctx, Commit::Duplicate(first), replaced).await
}

/// Shows the body to the moderation hook, if there is one: `Ok(true)` when it replaced the
/// body (now in `body`), `rejected` when it refused it, `unavailable` when it gave no
/// verdict (fail closed: see [`hubbub_core::moderation`]). A retried `clientMsgId` is not
/// shown again ([`reviewed_before`]).
pub(crate) async fn moderate(
    deps: &RouteDeps,
    ctx: &RouteContext,
    room: &RoomId,
    body: &mut MessageBody,
    kind: MessageKind,
) -> Result<bool, RouteError> {
    let Some(hook) = &deps.moderation else {
        return Ok(false);
    };
    let review = Review {
        room,
        sender: &ctx.user,
        body,
        kind,
    };
    match hook.review(&review).await {
        Ok(Verdict::Allow) => Ok(false),
        Ok(Verdict::Reject) => {
            tracing::info!(%room, kind = kind.as_str(), "moderation rejected the message");
            Err(RouteError::Rejected)
        }
        Ok(Verdict::Replace(new)) => {
            tracing::info!(%room, kind = kind.as_str(), "moderation replaced the body");
            *body = new;
            Ok(true)
        }
        Err(e) => {
            tracing::warn!(%room, error = %hubbub_core::error::chain(&e), "moderation gave no verdict; refusing");
            Err(RouteError::Moderation(e))
        }
    }
}

/// The checks every write to a room's messages passes first, in this order: the
/// connection's `sendMessage` budget (one budget for everything that fans out to a room),
/// access to the room, and this connection having joined it (`not_joined` otherwise).
async fn admit(
    deps: &RouteDeps,
    ctx: &RouteContext,
    room: &RoomId,
    not_joined: &'static str,
) -> Result<(), RouteError> {
    limits::spend(
        deps.live.connections.as_ref(),
        &deps.limits,
        &ctx.connection_id,
        BucketKind::Send,
    )
    .await?;
    deps.require_access(ctx, room).await?;
    if !deps
        .live
        .connections
        .is_member(&ctx.connection_id, room)
        .await?
    {
        return Err(RouteError::Forbidden(not_joined));
    }
    Ok(())
}

/// Acks a commit (at once, through @connections) and fans a new one out to the room; a
/// replayed clientMsgId is acked in the route response and delivers nothing.
async fn deliver(
    deps: &RouteDeps,
    ctx: &RouteContext,
    commit: Commit,
    replaced: bool,
) -> Result<Option<ServerFrame>, RouteError> {
    let ack = if replaced {
        ServerFrame::ack_replaced(commit.message())
    } else {
        ServerFrame::ack(commit.message())
    };
    match commit {
        Commit::New(msg) => {
            let room = msg.room.clone();
            tracing::info!(%room, seq = msg.seq, kind = msg.kind.as_str(), target = msg.target, "committed");
            let acked = deps.live.post_to_caller(ctx, &ack).await;
            deps.live
                .broadcast(ctx, &room, &ServerFrame::Message(msg))
                .await;
            Ok((!acked).then_some(ack))
        }
        Commit::Duplicate(msg) => {
            tracing::info!(room = %msg.room, seq = msg.seq, "replayed clientMsgId; acking again");
            Ok(Some(ack))
        }
    }
}
