//! The people routes: members and roles of private rooms, direct rooms, read state.
//!
//! - `GET /rooms/{room}/members`: a private room's members with their roles (and read
//!   positions, when the room has read receipts), to its members only;
//! - `POST /rooms/{room}/members` (owners add, by `userId` or `username`) and
//!   `DELETE /rooms/{room}/members/{user}` (owners remove; `me` or one's own id leaves): the
//!   removed member's connections leave the room at once, and the private room refuses them
//!   from then on;
//! - `POST /dm/{username}`: the caller's direct room with that user, found or created;
//! - `PUT /rooms/{room}/read`: raises the caller's last-read `seq`, shared with the caller's
//!   other connections and, in rooms with read receipts, with the room.
//!
//! Live effects go through [`HttpDeps::connections`] and [`HttpDeps::sessions`]' gateway;
//! without them (handler tests with no WebSocket side) only the stores change.

use hubbub_core::error::StoreError;
use hubbub_core::people::{self, Notifier};
use hubbub_core::protocol::{RoomId, UserRef, read_seq};
use hubbub_core::store::{Role, Room, RoomEntry, RoomKind};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

use crate::rooms::{entry_json, page_params, room_id};
use crate::{ApiError, HttpDeps, authenticate, body, json, no_content};

/// Longest user id accepted as a member: the longest `sub` a token may carry.
const USER_ID_MAX: usize = 128;
/// Members one `GET /rooms/{room}/members` page holds at most (and by default): private rooms
/// are conversations, and a page of this size stays far below Lambda's response limit.
const MEMBERS_PAGE_MAX: u32 = 500;

/// The path segment that names the caller in `DELETE /rooms/{room}/members/{user}`.
const ME: &str = "me";

fn notifier(deps: &HttpDeps) -> Option<Notifier<'_>> {
    match (&deps.sessions, &deps.connections) {
        (Some(s), Some(c)) => Some(Notifier::new(c.as_ref(), s.gateway.as_ref(), &s.endpoint)),
        _ => None,
    }
}

/// Decodes `%XX` escapes of a path segment (user ids may hold characters a client escapes).
pub fn decode_segment(raw: &str) -> Result<String, ApiError> {
    let bad = || ApiError::BadRequest("the path is not valid percent-encoded UTF-8".into());
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

fn check_user_id(user_id: &str, field: &str) -> Result<(), ApiError> {
    if user_id.is_empty() || user_id.len() > USER_ID_MAX || user_id.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "`{field}` must be 1..={USER_ID_MAX} bytes without control characters"
        )));
    }
    Ok(())
}

/// The room, refused as every per-room route refuses: 404 missing, 403 a private room the
/// caller is not a member of.
async fn usable_room(deps: &HttpDeps, room: &RoomId, user_id: &str) -> Result<Room, ApiError> {
    deps.history.room_access(room, user_id).await?.require()?;
    deps.history
        .get_room(room)
        .await?
        .ok_or(ApiError::NotFound("room not found"))
}

/// The room's member list may change only in a private room that is not a direct one.
fn managed(room: &Room) -> Result<(), ApiError> {
    if room.kind == RoomKind::Direct {
        return Err(ApiError::Forbidden("a direct room's members cannot change"));
    }
    if !room.private {
        return Err(ApiError::Forbidden("a public room has no member list"));
    }
    Ok(())
}

async fn require_owner(deps: &HttpDeps, room: &RoomId, user_id: &str) -> Result<(), ApiError> {
    match deps.history.member_role(room, user_id).await? {
        Some(Role::Owner) => Ok(()),
        _ => Err(ApiError::Forbidden(
            "only the room's owners may add or remove members",
        )),
    }
}

/// `POST /rooms/{room}/members` `{"userId"}` or `{"username"}`: 204; owners only.
pub async fn add_member(
    deps: &HttpDeps,
    req: &Request,
    raw_room: &str,
) -> Result<Response<Body>, ApiError> {
    let me = authenticate(deps, req).await?;
    let room = room_id(raw_room)?;
    let target = member_target(req)?;
    let stored = usable_room(deps, &room, &me.user_id).await?;
    managed(&stored)?;
    require_owner(deps, &room, &me.user_id).await?;
    let (user_id, name) = match target {
        // Not looked up: members may be users of an external issuer, known here only by
        // their token's `sub`.
        Target::Id(id) => (id, None),
        Target::Name(name) => {
            let user = deps
                .users
                .user_by_name(&name)
                .await?
                .ok_or(ApiError::NotFound("user not found"))?;
            (user.id, Some(user.username))
        }
    };
    let was_member = deps.history.member_role(&room, &user_id).await?.is_some();
    deps.history
        .put_member(&room, &user_id, name.as_deref())
        .await?;
    tracing::info!(room = %room, member = %user_id, "added member");
    if !was_member && let Some(n) = notifier(deps) {
        n.added(&room, &user_id).await;
    }
    Ok(no_content())
}

/// Whom `POST /rooms/{room}/members` adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `{"userId"}`: not looked up.
    Id(String),
    /// `{"username"}`: an account of this API.
    Name(String),
}

/// Reads the `{"userId"}` or `{"username"}` body of `POST /rooms/{room}/members`.
pub fn member_target(req: &Request) -> Result<Target, ApiError> {
    let fields = body::fields(req, &["userId", "username"])?;
    let by_id = fields.opt_string("userId")?;
    let by_name = fields.opt_string("username")?;
    match (by_id, by_name) {
        (Some(id), None) => {
            check_user_id(&id, "userId")?;
            Ok(Target::Id(id))
        }
        (None, Some(name)) => Ok(Target::Name(name)),
        _ => Err(ApiError::BadRequest(
            "give exactly one of `userId` and `username`".into(),
        )),
    }
}

/// Reads the `{"seq"}` body of `PUT /rooms/{room}/read`.
pub fn read_mark(req: &Request) -> Result<i64, ApiError> {
    let fields = body::fields(req, &["seq"])?;
    Ok(read_seq(fields.opt_i64("seq")?)?)
}

/// `GET /rooms/{room}/members?after=&limit=`: a private room's members, to its members.
pub async fn list_members(
    deps: &HttpDeps,
    req: &Request,
    raw_room: &str,
) -> Result<Response<Body>, ApiError> {
    let me = authenticate(deps, req).await?;
    let room = room_id(raw_room)?;
    let (after, limit) = page_params(req, MEMBERS_PAGE_MAX)?;
    let stored = usable_room(deps, &room, &me.user_id).await?;
    if !stored.private {
        return Err(ApiError::Forbidden("a public room has no member list"));
    }
    // One more than the page, to learn whether another page follows.
    let mut members = deps
        .history
        .member_list(&room, after.as_deref(), limit + 1)
        .await?;
    let next = (members.len() > limit as usize).then(|| {
        members.truncate(limit as usize);
        members.last().map(|m| m.user_id.clone())
    });
    let members: Vec<Value> = members
        .iter()
        .map(|m| {
            let mut v = json!({"id": m.user_id, "name": m.name, "role": m.role.as_str()});
            if stored.read_receipts {
                v["lastRead"] = json!(m.last_read);
            }
            v
        })
        .collect();
    let mut answer = json!({ "members": members });
    if let Some(Some(next)) = next {
        answer["next"] = json!(next);
    }
    Ok(json(200, answer))
}

/// `DELETE /rooms/{room}/members/{user}`: 204. Owners remove anyone; anyone removes
/// themselves (`me`). The removed member's connections leave the room now.
pub async fn remove_member(
    deps: &HttpDeps,
    req: &Request,
    raw_room: &str,
    raw_user: &str,
) -> Result<Response<Body>, ApiError> {
    let me = authenticate(deps, req).await?;
    let room = room_id(raw_room)?;
    let user_id = match decode_segment(raw_user)? {
        u if u == ME => me.user_id.clone(),
        u => u,
    };
    check_user_id(&user_id, "{user}")?;
    let stored = usable_room(deps, &room, &me.user_id).await?;
    if stored.kind == RoomKind::Direct {
        return Err(ApiError::Forbidden("a direct room cannot be left"));
    }
    managed(&stored)?;
    if user_id != me.user_id {
        require_owner(deps, &room, &me.user_id).await?;
    }
    let Some(gone) = deps.history.remove_member(&room, &user_id).await? else {
        return Err(ApiError::NotFound("not a member of this room"));
    };
    let user = UserRef {
        name: gone.name.unwrap_or_else(|| gone.user_id.clone()),
        id: gone.user_id,
    };
    let left = match notifier(deps) {
        Some(n) => n.removed(&room, &user).await.map_err(|e| {
            // The membership is gone, so nothing reaches the user's connections through the
            // room's access check; their joined records stay until they reconnect.
            tracing::warn!(room = %room, error = %hubbub_core::error::chain(&e), "removed member's connections not taken out of the room");
        }),
        None => Ok(0),
    };
    tracing::info!(room = %room, member = %user.id, by = %me.user_id, connections = left.unwrap_or(0), "removed member");
    Ok(no_content())
}

/// `PUT /rooms/{room}/read` `{"seq"}`: 200 `{"room","lastRead","unread"}`.
pub async fn mark_read(
    deps: &HttpDeps,
    req: &Request,
    raw_room: &str,
) -> Result<Response<Body>, ApiError> {
    let me = authenticate(deps, req).await?;
    let room = room_id(raw_room)?;
    let seq = read_mark(req)?;
    let stored = usable_room(deps, &room, &me.user_id).await?;
    let mark = deps.history.mark_read(&room, &me.user_id, seq).await?;
    if let Some(n) = notifier(deps) {
        let reader = UserRef {
            id: me.user_id,
            name: me.user_name,
        };
        n.read_marked(&room, &reader, mark, stored.read_receipts, None)
            .await;
    }
    Ok(json(
        200,
        json!({"room": room, "lastRead": mark.last_read, "unread": mark.unread()}),
    ))
}

/// `POST /dm/{username}`: 201 with the direct room when this call created it, 200 when it
/// existed. 400 for oneself, 404 for an unknown username.
pub async fn open_direct(
    deps: &HttpDeps,
    req: &Request,
    raw_username: &str,
) -> Result<Response<Body>, ApiError> {
    let me = authenticate(deps, req).await?;
    let username = decode_segment(raw_username)?;
    let peer = deps
        .users
        .user_by_name(&username)
        .await?
        .ok_or(ApiError::NotFound("user not found"))?;
    if peer.id == me.user_id {
        return Err(ApiError::BadRequest(
            "a direct room needs another user than yourself".into(),
        ));
    }
    let id = people::direct_room_id(&me.user_id, &peer.id)?;
    let caller = UserRef {
        id: me.user_id,
        name: me.user_name,
    };
    let peer = UserRef {
        id: peer.id,
        name: peer.username,
    };
    let (room, created) = match deps
        .history
        .open_direct(&id, &caller, &peer, deps.limits.max_rooms_created)
        .await
    {
        Ok(opened) => opened,
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(
                "the direct room's id is taken by another room",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let mark = deps.history.mark_read(&id, &caller.id, 0).await?;
    let entry = RoomEntry {
        room,
        role: Some(Role::Member),
        last_seq: mark.last_seq,
        last_read: mark.last_read,
        peer: Some(peer.clone()),
    };
    if created {
        tracing::info!(room = %id, "opened a direct room");
        if let Some(n) = notifier(deps) {
            n.added(&id, &peer.id).await;
        }
    }
    Ok(json(if created { 201 } else { 200 }, entry_json(&entry)))
}
