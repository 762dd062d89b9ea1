//! `editMessage`, `deleteMessage` and `react`: changes to a room's existing messages.
//!
//! Edits and deletes are entries of the room's sequence like messages (the next gap-free
//! `seq`, acked at commit, fanned out as `message` frames with `kind` and `target`), so a
//! client that catches up with `history after` replays them in order. The store checks, in
//! the commit's transaction, that the target is a plain message of the room, that the caller
//! may change it (its sender; for a delete also an owner of the room) and that it was not
//! deleted. An edit's body goes through the moderation hook first, as a send's does.
//! Reactions take no `seq`: the caller gets the `reaction` frame as its answer and
//! the room's other connections get it live when something changed; history holds the counts.

use hubbub_core::error::RouteError;
use hubbub_core::protocol::{ClientMsgId, Emoji, MessageKind, RoomId, ServerFrame};
use hubbub_core::store::{Change, NewChange, NewReaction};
use hubbub_core::ws::{RouteContext, RouteDeps};

use crate::{admit, deliver, moderate, reviewed_before};

/// Commits an edit or delete of the message `target` and delivers it.
pub(crate) async fn change(
    deps: &RouteDeps,
    ctx: &RouteContext,
    room: RoomId,
    target: i64,
    mut change: Change,
    client_msg_id: ClientMsgId,
) -> Result<Option<ServerFrame>, RouteError> {
    admit(
        deps,
        ctx,
        &room,
        "join the room before changing its messages",
    )
    .await?;
    let replaced = match &mut change {
        Change::Edit(body) => {
            if let Some(first) = reviewed_before(deps, ctx, &room, &client_msg_id, body).await? {
                return Ok(Some(first));
            }
            moderate(deps, ctx, &room, body, MessageKind::Edit).await?
        }
        Change::Delete => false,
    };
    let commit = deps
        .history
        .commit_change(&NewChange {
            room,
            actor: ctx.user.clone(),
            target,
            change,
            client_msg_id,
        })
        .await?;
    deliver(deps, ctx, commit, replaced).await
}

/// Adds (or takes back) the caller's reaction and tells the room when something changed.
pub(crate) async fn react(
    deps: &RouteDeps,
    ctx: &RouteContext,
    room: RoomId,
    seq: i64,
    emoji: Emoji,
    add: bool,
) -> Result<ServerFrame, RouteError> {
    admit(deps, ctx, &room, "join the room before reacting in it").await?;
    let update = deps
        .history
        .react(&NewReaction {
            room: room.clone(),
            seq,
            user: ctx.user.clone(),
            emoji: emoji.clone(),
            add,
        })
        .await?;
    let frame = ServerFrame::Reaction {
        room: room.clone(),
        seq,
        emoji,
        count: update.count,
        user: ctx.user.clone(),
        added: add,
    };
    if update.changed {
        tracing::info!(%room, seq, add, count = update.count, "reaction changed");
        deps.live.broadcast(ctx, &room, &frame).await;
    }
    Ok(frame)
}
