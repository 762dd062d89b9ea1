//! `GET /rooms`, `POST /rooms`, `POST /rooms/{room}/members` and
//! `GET /rooms/{room}/messages`.
//!
//! Private rooms are visible and usable only by their members: listing leaves them out for
//! everybody else, and every per-room route answers 403 to a non-member (404 when the room
//! does not exist at all).

use hubbub_core::protocol::{HistoryQuery, RoomId, UserRef};
use hubbub_core::store::{NewRoom, Room};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

use crate::body;
use crate::{ApiError, HttpDeps, authenticate, json, no_content};

/// Most rooms one `GET /rooms` lists. The route has no pagination (docs/protocol.md); the cap
/// keeps the answer far below Lambda's 6 MB response limit whatever the room count.
pub const ROOMS_LIST_MAX: u32 = 1000;
/// Longest room display name, in characters: it is shown in every client's room list.
const ROOM_NAME_MAX: usize = 100;
/// Longest user id accepted as a member: the longest `sub` a token may carry.
const USER_ID_MAX: usize = 128;

fn room_json(r: &Room) -> Value {
    let created_at = r
        .created_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({"id": r.id, "name": r.name, "private": r.private, "createdAt": created_at})
}

fn room_id(raw: &str) -> Result<RoomId, ApiError> {
    Ok(RoomId::parse(raw)?)
}

/// 404 when the room is missing, 403 when the caller may not use it.
async fn require_access(deps: &HttpDeps, room: &RoomId, user_id: &str) -> Result<(), ApiError> {
    Ok(deps.history.room_access(room, user_id).await?.require()?)
}

/// `GET /rooms`: the rooms the caller may see.
pub async fn list(deps: &HttpDeps, req: &Request) -> Result<Response<Body>, ApiError> {
    let me = authenticate(deps, req).await?;
    let rooms = deps
        .history
        .visible_rooms(&me.user_id, ROOMS_LIST_MAX)
        .await?;
    let rooms: Vec<Value> = rooms.iter().map(room_json).collect();
    Ok(json(200, json!({"rooms": rooms})))
}

/// `POST /rooms`: 201 with the room; 409 when the id is taken. The creator of a private
/// room is its first member.
pub async fn create(deps: &HttpDeps, req: &Request) -> Result<Response<Body>, ApiError> {
    let me = authenticate(deps, req).await?;
    let fields = body::fields(req, &["id", "name", "private"])?;
    let id = RoomId::parse(fields.string("id")?).map_err(|_| {
        ApiError::BadRequest(
            "`id` must be 1..=64 chars from [a-z0-9_-], starting with a letter or digit".into(),
        )
    })?;
    let name = fields.string("name")?;
    let name_len = name.chars().count();
    if name.trim().is_empty() || name_len > ROOM_NAME_MAX || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "`name` must be 1..={ROOM_NAME_MAX} characters, not blank, without control characters"
        )));
    }
    let private = fields.opt_bool("private")?.unwrap_or(false);
    let room = NewRoom { id, name, private };
    let creator = UserRef {
        id: me.user_id,
        name: me.user_name,
    };
    let room = match deps
        .history
        .create_room_within(&room, &creator, deps.limits.max_rooms_created)
        .await
    {
        Ok(room) => room,
        Err(hubbub_core::error::StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict("a room with this id already exists"));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(room = %room.id, private, "created room");
    Ok(json(201, room_json(&room)))
}

/// `POST /rooms/{room}/members`: 204; only someone who may use the room may add members.
pub async fn add_member(
    deps: &HttpDeps,
    req: &Request,
    raw_room: &str,
) -> Result<Response<Body>, ApiError> {
    let me = authenticate(deps, req).await?;
    let room = room_id(raw_room)?;
    let fields = body::fields(req, &["userId"])?;
    let user_id = fields.string("userId")?;
    if user_id.is_empty() || user_id.len() > USER_ID_MAX || user_id.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "`userId` must be 1..={USER_ID_MAX} bytes without control characters"
        )));
    }
    require_access(deps, &room, &me.user_id).await?;
    // The user is not looked up: members may be users of an external issuer, known here only
    // by their token's `sub`.
    deps.history.add_member(&room, &user_id).await?;
    tracing::info!(room = %room, member = %user_id, "added member");
    Ok(no_content())
}

fn query_number(req: &Request, name: &str) -> Result<Option<i64>, ApiError> {
    let params = req.query_string_parameters_ref();
    match params.and_then(|p| p.first(name)) {
        None | Some("") => Ok(None),
        Some(raw) => raw
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("`{name}` must be an integer"))),
    }
}

/// `GET /rooms/{room}/messages?before=&after=&limit=`: a page of history by keyset on `seq`.
pub async fn messages(
    deps: &HttpDeps,
    req: &Request,
    raw_room: &str,
) -> Result<Response<Body>, ApiError> {
    let me = authenticate(deps, req).await?;
    let room = room_id(raw_room)?;
    let query = HistoryQuery::new(
        query_number(req, "before")?,
        query_number(req, "after")?,
        query_number(req, "limit")?,
    )?;
    require_access(deps, &room, &me.user_id).await?;
    let page = deps.history.history(&room, &query, &me.user_id).await?;
    Ok(json(
        200,
        json!({"messages": page.messages, "hasMore": page.has_more}),
    ))
}
