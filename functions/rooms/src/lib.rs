//! The room routes: `joinRoom`, `leaveRoom`, `history`, `typing`, `members` and `markRead`.
//!
//! - `joinRoom` creates a missing room as a public room named after its id (as IRC does),
//!   refuses private rooms the user is not a member of (also one created as private while
//!   the join was under way), and tells the room who joined;
//! - `leaveRoom` is idempotent and tells the room who left;
//! - `history` reads a page by keyset on `seq` (the user may read any room they may use);
//! - `typing` is relayed to the room's other connections (not in rooms larger than one
//!   member page) at most once per user, room and typing interval, and answers nothing:
//!   the typing frames in between are dropped silently (they are ephemeral);
//! - every route but `typing` first spends a token of the connection's route bucket and
//!   answers `rate_limited` when it is empty ([`hubbub_core::limits`]); a connection joins
//!   at most `max_joined_rooms` rooms at once, and a join that creates a room counts
//!   against its user's `max_rooms_created`;
//! - `members` reads a page of who is connected to a room the caller joined: presence
//!   frames carry only counts in large rooms, so names are read on demand;
//! - joins and leaves are announced through [`hubbub_core::presence`], coalesced per room;
//! - `markRead` raises the user's last-read `seq` in a room they may use, and tells the
//!   user's other connections and, in rooms with read receipts, the room
//!   ([`hubbub_core::people::Notifier`]);
//! - ids starting with `dm-` are kept for direct rooms: a join never creates one.

use hubbub_core::aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use hubbub_core::error::{AccessError, RouteError, StoreError};
use hubbub_core::fanout;
use hubbub_core::limits::{self, BucketKind};
use hubbub_core::people::{self, Notifier};
use hubbub_core::protocol::{
    ClientFrame, MembersCursor, PresenceState, ProtocolError, RoomId, ServerFrame,
};
use hubbub_core::store::NewRoom;
use hubbub_core::ws::{RouteContext, RouteDeps, parse_frame, run_route};

/// The configuration this function reads at init: the connections table, the management API and the history database.
pub type Config = hubbub_core::config::RouteConfig;

/// Handles the four room routes (API Gateway sends each of them here).
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
    let frame = parse_frame(ev)?;
    // Typing has its own, stricter gate below, and answers nothing even when it drops.
    if !matches!(frame, ClientFrame::Typing { .. }) {
        limits::spend(
            deps.live.connections.as_ref(),
            &deps.limits,
            &ctx.connection_id,
            BucketKind::Route,
        )
        .await?;
    }
    match frame {
        ClientFrame::JoinRoom { room } => join(deps, &ctx, room).await.map(Some),
        ClientFrame::LeaveRoom { room } => leave(deps, &ctx, room).await.map(Some),
        ClientFrame::History { room, query } => {
            deps.require_access(&ctx, &room).await?;
            let page = deps.history.history(&room, &query, &ctx.user.id).await?;
            Ok(Some(ServerFrame::History {
                room,
                messages: page.messages,
                has_more: page.has_more,
            }))
        }
        ClientFrame::Typing { room } => {
            if !deps
                .live
                .connections
                .is_member(&ctx.connection_id, &room)
                .await?
            {
                return Err(RouteError::Forbidden("join the room before typing in it"));
            }
            if !deps
                .live
                .connections
                .typing_gate(
                    &room,
                    &ctx.user.id,
                    deps.limits.typing_interval,
                    limits::now_ms(),
                )
                .await?
            {
                tracing::debug!(%room, "typing dropped: one was relayed within the interval");
                return Ok(None);
            }
            // Typing is relayed in conversations, dropped in large rooms (more than one
            // member page): there it is noise to the audience and a drain on the quota.
            let frame = ServerFrame::Typing {
                room: room.clone(),
                user: ctx.user.clone(),
            };
            let relayed = fanout::broadcast_if_small(
                deps.live.connections.as_ref(),
                deps.live.gateway.as_ref(),
                &ctx.endpoint,
                &room,
                &frame,
                Some(&ctx.connection_id),
            )
            .await?;
            if relayed.is_none() {
                tracing::debug!(%room, "typing not relayed in a large room");
            }
            Ok(None)
        }
        ClientFrame::Members {
            room,
            cursor,
            limit,
        } => members(deps, &ctx, room, cursor, limit).await.map(Some),
        ClientFrame::MarkRead { room, seq } => mark_read(deps, &ctx, room, seq).await.map(Some),
        ClientFrame::SendMessage { .. }
        | ClientFrame::EditMessage { .. }
        | ClientFrame::DeleteMessage { .. }
        | ClientFrame::React { .. }
        | ClientFrame::Ping => Err(ProtocolError::bad_request(
            "this route takes joinRoom, leaveRoom, history, typing, members and markRead",
        )
        .into()),
    }
}

async fn join(
    deps: &RouteDeps,
    ctx: &RouteContext,
    room: RoomId,
) -> Result<ServerFrame, RouteError> {
    match deps
        .history
        .room_access(&room, &ctx.user.id)
        .await?
        .require()
    {
        Ok(()) => {}
        // Nobody may take a direct room's id before its pair opens it.
        Err(missing @ AccessError::Missing) if people::is_direct_id(&room) => {
            return Err(missing.into());
        }
        Err(AccessError::Missing) => create_on_join(deps, ctx, &room).await?,
        Err(denied @ AccessError::Denied) => return Err(denied.into()),
    }
    // The store's transaction checks that the connection is still registered and live.
    let fresh = match deps
        .live
        .connections
        .join_room_within(&ctx.connection(), &room, deps.limits.max_joined_rooms)
        .await
    {
        Ok(fresh) => fresh,
        Err(StoreError::NotFound("connection")) => {
            return Err(RouteError::Unauthorized(
                "this connection is no longer registered; reconnect",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if fresh {
        deps.live.announce(ctx, &room, PresenceState::Joined).await;
    }
    Ok(ServerFrame::Joined { room })
}

/// Creates the missing room a join names, as a public room named after its id, counted
/// against the joiner's cap on rooms created. Another creation may win the race for the id:
/// then the room's access is checked again, so a join cannot slip into a private room created
/// a moment before.
async fn create_on_join(
    deps: &RouteDeps,
    ctx: &RouteContext,
    room: &RoomId,
) -> Result<(), RouteError> {
    let public = NewRoom::new(room.clone(), room.to_string(), false);
    match deps
        .history
        .create_room_within(&public, &ctx.user, deps.limits.max_rooms_created)
        .await
    {
        Ok(_) => {
            tracing::info!(%room, "created public room on first join");
            Ok(())
        }
        Err(StoreError::Conflict(_)) => Ok(deps
            .history
            .room_access(room, &ctx.user.id)
            .await?
            .require()?),
        Err(e) => Err(e.into()),
    }
}

/// A page of the room's connected users, each once per page (a user with two tabs is two
/// connections).
async fn members(
    deps: &RouteDeps,
    ctx: &RouteContext,
    room: RoomId,
    cursor: Option<MembersCursor>,
    limit: u32,
) -> Result<ServerFrame, RouteError> {
    let connections = deps.live.connections.as_ref();
    if !connections.is_member(&ctx.connection_id, &room).await? {
        return Err(RouteError::Forbidden(
            "join the room before listing its members",
        ));
    }
    let position = cursor.as_ref().map(MembersCursor::position);
    let page = connections
        .room_members(&room, position.as_deref(), limit)
        .await?;
    let mut seen = std::collections::HashSet::new();
    let members = page
        .members
        .into_iter()
        .filter(|m| seen.insert(m.user.id.clone()))
        .map(|m| m.user)
        .collect();
    Ok(ServerFrame::Members {
        room,
        members,
        next: page.next.as_deref().map(MembersCursor::from_position),
    })
}

/// Raises the caller's read mark and answers with it; the user's other connections and, in
/// rooms with read receipts, the room hear of it when it moved.
async fn mark_read(
    deps: &RouteDeps,
    ctx: &RouteContext,
    room: RoomId,
    seq: i64,
) -> Result<ServerFrame, RouteError> {
    deps.require_access(ctx, &room).await?;
    let receipts = deps
        .history
        .get_room(&room)
        .await?
        .is_some_and(|r| r.read_receipts);
    let mark = deps.history.mark_read(&room, &ctx.user.id, seq).await?;
    Notifier::new(
        deps.live.connections.as_ref(),
        deps.live.gateway.as_ref(),
        &ctx.endpoint,
    )
    .read_marked(&room, &ctx.user, mark, receipts, Some(&ctx.connection_id))
    .await;
    Ok(ServerFrame::Read {
        room,
        last_read: mark.last_read,
        unread: mark.unread(),
    })
}

async fn leave(
    deps: &RouteDeps,
    ctx: &RouteContext,
    room: RoomId,
) -> Result<ServerFrame, RouteError> {
    if deps
        .live
        .connections
        .leave_room(&ctx.connection_id, &room)
        .await?
    {
        deps.live.announce(ctx, &room, PresenceState::Left).await;
    }
    Ok(ServerFrame::Left { room })
}
