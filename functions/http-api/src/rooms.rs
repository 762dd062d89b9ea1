//! `GET /rooms` (paged by room id, with the caller's role and unread count in each room),
//! `POST /rooms` and `GET /rooms/{room}/messages`; the member, direct-room and read routes
//! are in [`crate::people`].
//!
//! Private rooms are visible and usable only by their members: listing leaves them out for
//! everybody else, and every per-room route answers 403 to a non-member (404 when the room
//! does not exist at all).

use hubbub_core::people;
use hubbub_core::protocol::{HistoryQuery, RoomId, UserRef};
use hubbub_core::store::{NewRoom, Room, RoomEntry};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

use crate::body;
use crate::{ApiError, HttpDeps, authenticate, json};

/// Most rooms one `GET /rooms` page lists, and the page size when `limit` is not given (what
/// the route listed before it had pages): the cap keeps the answer far below Lambda's 6 MB
/// response limit whatever the room count.
pub const ROOMS_LIST_MAX: u32 = 1000;
/// Longest room display name, in characters: it is shown in every client's room list.
const ROOM_NAME_MAX: usize = 100;

pub(crate) fn room_json(r: &Room) -> Value {
    let created_at = r
        .created_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "id": r.id, "name": r.name, "private": r.private, "createdAt": created_at,
        "kind": r.kind.as_str(), "readReceipts": r.read_receipts,
    })
}

/// A room of the caller's list: the room, the caller's role (private rooms), the room's last
/// `seq`, the caller's last-read `seq` and unread count, and in a direct room the other user.
pub(crate) fn entry_json(e: &RoomEntry) -> Value {
    let mut v = room_json(&e.room);
    if let Some(role) = e.role {
        v["role"] = json!(role.as_str());
    }
    v["lastSeq"] = json!(e.last_seq);
    v["lastRead"] = json!(e.last_read);
    v["unread"] = json!(e.unread());
    if let Some(peer) = &e.peer {
        v["with"] = json!(peer);
    }
    v
}

/// The `{room}` of a path, with the rules of a WebSocket `room`.
pub fn room_id(raw: &str) -> Result<RoomId, ApiError> {
    Ok(RoomId::parse(raw)?)
}

/// The `after` and `limit` query parameters of a page: `after` as given (a listed item's key,
/// checked by the caller's store), `limit` 1..=`max`, `max` when absent.
pub fn page_params(req: &Request, max: u32) -> Result<(Option<String>, u32), ApiError> {
    let after = req
        .query_string_parameters_ref()
        .and_then(|p| p.first("after"))
        .filter(|a| !a.is_empty())
        .map(str::to_owned);
    let limit = match query_number(req, "limit")? {
        None => max,
        Some(l) if (1..=i64::from(max)).contains(&l) => l as u32,
        Some(_) => return Err(ApiError::BadRequest(format!("`limit` must be 1..={max}"))),
    };
    Ok((after, limit))
}

/// 404 when the room is missing, 403 when the caller may not use it.
async fn require_access(deps: &HttpDeps, room: &RoomId, user_id: &str) -> Result<(), ApiError> {
    Ok(deps.history.room_access(room, user_id).await?.require()?)
}

/// `GET /rooms?after=&limit=`: a page of the rooms the caller may see, by id; `next` (the
/// last id) while more may follow.
pub async fn list(deps: &HttpDeps, req: &Request) -> Result<Response<Body>, ApiError> {
    let me = authenticate(deps, req).await?;
    let (after, limit) = page_params(req, ROOMS_LIST_MAX)?;
    let after = after
        .map(RoomId::parse)
        .transpose()
        .map_err(|_| ApiError::BadRequest("`after` must be a room id".into()))?;
    // One more than the page, to learn whether another page follows.
    let mut rooms = deps
        .history
        .room_list(&me.user_id, after.as_ref(), limit + 1)
        .await?;
    let more = rooms.len() > limit as usize;
    rooms.truncate(limit as usize);
    let mut answer = json!({"rooms": rooms.iter().map(entry_json).collect::<Vec<_>>()});
    if more && let Some(last) = rooms.last() {
        answer["next"] = json!(last.room.id);
    }
    Ok(json(200, answer))
}

/// Reads the `{"id","name","private"?,"readReceipts"?}` body of `POST /rooms` with the rules
/// of docs/protocol.md ("Field rules").
pub fn new_room(req: &Request) -> Result<NewRoom, ApiError> {
    let fields = body::fields(req, &["id", "name", "private", "readReceipts"])?;
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
    if people::is_direct_id(&id) {
        return Err(ApiError::BadRequest(format!(
            "`id` may not start with `{}`: those ids are kept for direct rooms",
            people::DIRECT_PREFIX
        )));
    }
    let private = fields.opt_bool("private")?.unwrap_or(false);
    let read_receipts = fields.opt_bool("readReceipts")?.unwrap_or(private);
    if read_receipts && !private {
        return Err(ApiError::BadRequest(
            "`readReceipts` may be on in private rooms only".into(),
        ));
    }
    Ok(NewRoom {
        read_receipts,
        ..NewRoom::new(id, name, private)
    })
}

/// `POST /rooms`: 201 with the room; 409 when the id is taken. The creator of a private
/// room is its first member.
pub async fn create(deps: &HttpDeps, req: &Request) -> Result<Response<Body>, ApiError> {
    let me = authenticate(deps, req).await?;
    let room = new_room(req)?;
    let private = room.private;
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

/// The `before`, `after` and `limit` query parameters of `GET /rooms/{room}/messages`.
pub fn history_query(req: &Request) -> Result<HistoryQuery, ApiError> {
    Ok(HistoryQuery::new(
        query_number(req, "before")?,
        query_number(req, "after")?,
        query_number(req, "limit")?,
    )?)
}

/// `GET /rooms/{room}/messages?before=&after=&limit=`: a page of history by keyset on `seq`.
pub async fn messages(
    deps: &HttpDeps,
    req: &Request,
    raw_room: &str,
) -> Result<Response<Body>, ApiError> {
    let me = authenticate(deps, req).await?;
    let room = room_id(raw_room)?;
    let query = history_query(req)?;
    require_access(deps, &room, &me.user_id).await?;
    let page = deps.history.history(&room, &query, &me.user_id).await?;
    Ok(json(
        200,
        json!({"messages": page.messages, "hasMore": page.has_more}),
    ))
}
