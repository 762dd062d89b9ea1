//! The client contract of `docs/protocol.md`, as types.
//!
//! Inbound frames are parsed, not validated: a [`ClientFrame`] can only hold a well-formed
//! [`RoomId`], [`ClientMsgId`], [`MessageBody`] and [`HistoryQuery`], so handlers never re-check
//! them. Outbound frames are [`ServerFrame`] values, serialised with the `type` tag.
//!
//! Every limit here is the one docs/protocol.md documents; changing one is a breaking change.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::ErrorCode;
use crate::fields::Fields;
use crate::routes::RouteKey;

/// Longest room id (docs/protocol.md): short enough to sit in a DynamoDB key and a URL path.
pub const ROOM_ID_MAX: usize = 64;
/// Longest client message id (docs/protocol.md): room for a UUID or a ULID with a prefix.
pub const CLIENT_MSG_ID_MAX: usize = 64;
/// Longest message body in characters (docs/protocol.md). 4000 chars of 4-byte UTF-8 plus the
/// envelope stays under API Gateway's 32 KB frame limit, so any accepted message can be fanned out.
pub const BODY_MAX_CHARS: usize = 4000;
/// Largest `history` page (docs/protocol.md): bounds the route response well under 128 KB.
pub const HISTORY_LIMIT_MAX: u32 = 100;
/// `history` page size when the client gives none (docs/protocol.md).
pub const HISTORY_LIMIT_DEFAULT: u32 = 50;
/// Largest `members` page (docs/protocol.md): one store page, and a route response of a few
/// KB (names are short).
pub const MEMBERS_LIMIT_MAX: u32 = 200;
/// `members` page size when the client gives none (docs/protocol.md).
pub const MEMBERS_LIMIT_DEFAULT: u32 = 100;
/// Why a frame or a field was refused; maps onto an error frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    /// `bad_request` for shapes, `payload_too_large` for a body over the limit.
    pub code: ErrorCode,
    /// Human-readable and safe to show to the client: it names the field, never echoes input.
    pub message: String,
}

impl ProtocolError {
    /// A `bad_request` with a client-safe message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::BadRequest,
            message: message.into(),
        }
    }
}

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The validated value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

mod members;
mod message;

pub use members::MembersCursor;
pub use message::{
    EMOJI_MAX_CHARS, Emoji, MessageKind, REACTIONS_PER_MESSAGE_MAX, REPLY_PREVIEW_CHARS,
    ReactionCount, ReplyRef,
};

string_newtype!(
    /// A room id: 1..=64 chars from `[a-z0-9_-]`, starting with a letter or digit.
    RoomId
);

impl RoomId {
    /// Parses a room id.
    pub fn parse(raw: impl Into<String>) -> Result<Self, ProtocolError> {
        let raw = raw.into();
        let first_ok = raw
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let len_ok = (1..=ROOM_ID_MAX).contains(&raw.len());
        let chars_ok = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if first_ok && len_ok && chars_ok {
            Ok(Self(raw))
        } else {
            Err(ProtocolError::bad_request(format!(
                "`room` must be 1..={ROOM_ID_MAX} chars from [a-z0-9_-], starting with a letter or digit"
            )))
        }
    }
}

string_newtype!(
    /// A client message id: 1..=64 chars from `[A-Za-z0-9_-]`, the idempotency key of a send.
    ClientMsgId
);

impl ClientMsgId {
    /// Parses a client message id.
    pub fn parse(raw: impl Into<String>) -> Result<Self, ProtocolError> {
        let raw = raw.into();
        let len_ok = (1..=CLIENT_MSG_ID_MAX).contains(&raw.len());
        let chars_ok = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if len_ok && chars_ok {
            Ok(Self(raw))
        } else {
            Err(ProtocolError::bad_request(format!(
                "`clientMsgId` must be 1..={CLIENT_MSG_ID_MAX} chars from [A-Za-z0-9_-]"
            )))
        }
    }
}

string_newtype!(
    /// A message body: 1..=4000 Unicode scalar values.
    MessageBody
);

impl MessageBody {
    /// Parses a message body; an over-long one is `payload_too_large`, an empty one or one
    /// holding a character no store can keep `bad_request`.
    pub fn parse(raw: impl Into<String>) -> Result<Self, ProtocolError> {
        let raw = raw.into();
        if raw.is_empty() {
            return Err(ProtocolError::bad_request("`body` must not be empty"));
        }
        // Count chars only up to the limit: a 128 KB body need not be walked to the end.
        if raw.chars().nth(BODY_MAX_CHARS).is_some() {
            return Err(ProtocolError {
                code: ErrorCode::PayloadTooLarge,
                message: format!("`body` is longer than {BODY_MAX_CHARS} characters"),
            });
        }
        // PostgreSQL `text` cannot hold U+0000 (every other scalar value is storable, and a
        // Rust string holds no lone surrogate): refused here, so every store answers alike.
        if raw.contains('\0') {
            return Err(ProtocolError::bad_request(
                "`body` must not contain the NUL character (U+0000)",
            ));
        }
        Ok(Self(raw))
    }
}

/// Which page of a room's history to read (keyset pagination by `seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Where the page sits.
    pub cursor: HistoryCursor,
    /// Page size, 1..=100.
    pub limit: u32,
}

/// The keyset cursor of a history page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryCursor {
    /// The newest messages.
    Latest,
    /// Messages with `seq` strictly below this one (scroll-back).
    Before(i64),
    /// Messages with `seq` strictly above this one (catch-up after a reconnect).
    After(i64),
}

impl HistoryQuery {
    /// Builds a query from the optional wire fields, enforcing the rules of docs/protocol.md.
    pub fn new(
        before: Option<i64>,
        after: Option<i64>,
        limit: Option<i64>,
    ) -> Result<Self, ProtocolError> {
        let cursor = match (before, after) {
            (Some(_), Some(_)) => {
                return Err(ProtocolError::bad_request(
                    "give at most one of `before` and `after`",
                ));
            }
            (Some(b), None) if b >= 1 => HistoryCursor::Before(b),
            (None, Some(a)) if a >= 0 => HistoryCursor::After(a),
            (Some(_), None) => {
                return Err(ProtocolError::bad_request("`before` must be a seq >= 1"));
            }
            (None, Some(_)) => {
                return Err(ProtocolError::bad_request("`after` must be a seq >= 0"));
            }
            (None, None) => HistoryCursor::Latest,
        };
        let limit = match limit {
            None => HISTORY_LIMIT_DEFAULT,
            Some(l) if (1..=i64::from(HISTORY_LIMIT_MAX)).contains(&l) => l as u32,
            Some(_) => {
                return Err(ProtocolError::bad_request(format!(
                    "`limit` must be 1..={HISTORY_LIMIT_MAX}"
                )));
            }
        };
        Ok(Self { cursor, limit })
    }
}

/// A frame a client sends, selected by its `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// Join (and, for a new id, create) a public room.
    JoinRoom { room: RoomId },
    /// Leave a room.
    LeaveRoom { room: RoomId },
    /// Post a message to a joined room, optionally answering the message `reply_to`.
    SendMessage {
        room: RoomId,
        body: MessageBody,
        client_msg_id: ClientMsgId,
        reply_to: Option<i64>,
    },
    /// Replace the body of one's own message `seq` (a new entry in the room's sequence).
    EditMessage {
        room: RoomId,
        seq: i64,
        body: MessageBody,
        client_msg_id: ClientMsgId,
    },
    /// Delete one's own message `seq` (any, as the room's owner), leaving a tombstone.
    DeleteMessage {
        room: RoomId,
        seq: i64,
        client_msg_id: ClientMsgId,
    },
    /// Add (or, with `remove`, take back) one's reaction `emoji` to the message `seq`.
    React {
        room: RoomId,
        seq: i64,
        emoji: Emoji,
        remove: bool,
    },
    /// Read a page of a room's history.
    History { room: RoomId, query: HistoryQuery },
    /// Tell the room the user is typing.
    Typing { room: RoomId },
    /// Read a page of who is in a room.
    Members {
        room: RoomId,
        cursor: Option<MembersCursor>,
        limit: u32,
    },
    /// Raise the user's last-read `seq` in a room (never lowers it).
    MarkRead { room: RoomId, seq: i64 },
    /// Liveness check; answered with `pong`.
    Ping,
}

/// The `action` of a frame, if the frame is a JSON object with a string `action`.
///
/// API Gateway selects the route on `$request.body.action`; this is the same reading, used for
/// route selection ([`RouteKey::for_body`]) and for error frames (their `action` field).
pub fn action_of(raw: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        action: String,
    }
    serde_json::from_str::<Probe>(raw).ok().map(|p| p.action)
}

impl ClientFrame {
    /// The route API Gateway sends this frame to (the one its `action` selects).
    pub const fn route_key(&self) -> RouteKey {
        match self {
            Self::JoinRoom { .. } => RouteKey::JoinRoom,
            Self::LeaveRoom { .. } => RouteKey::LeaveRoom,
            Self::SendMessage { .. } => RouteKey::SendMessage,
            Self::EditMessage { .. } => RouteKey::EditMessage,
            Self::DeleteMessage { .. } => RouteKey::DeleteMessage,
            Self::React { .. } => RouteKey::React,
            Self::History { .. } => RouteKey::History,
            Self::Typing { .. } => RouteKey::Typing,
            Self::Members { .. } => RouteKey::Members,
            Self::MarkRead { .. } => RouteKey::MarkRead,
            Self::Ping => RouteKey::Default,
        }
    }

    /// Parses a frame body. Every failure names the field and the problem and never echoes
    /// the input ([`crate::fields`]).
    pub fn parse(raw: &str) -> Result<Self, ProtocolError> {
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|_| ProtocolError::bad_request("the frame is not valid JSON"))?;
        let Some(obj) = value.as_object() else {
            return Err(ProtocolError::bad_request(
                "the frame must be a JSON object",
            ));
        };
        let action = match obj.get("action") {
            Some(serde_json::Value::String(a)) => a.clone(),
            Some(_) => return Err(ProtocolError::bad_request("`action` must be a string")),
            None => return Err(ProtocolError::bad_request("missing field `action`")),
        };
        // The object above kept the last of repeated `action` keys; route selection
        // ([`action_of`]) reads none. Refused, so a frame is never served as an action other
        // than the one that routed it (`{"action":"ping","action":"joinRoom"}` reached
        // `$default` and would have been read as a join).
        if action_of(raw).is_none() {
            return Err(ProtocolError::bad_request("`action` must appear once"));
        }
        let allowed: &[&str] = match action.as_str() {
            "joinRoom" | "leaveRoom" | "typing" => &["action", "room"],
            "sendMessage" => &["action", "room", "body", "clientMsgId", "replyTo"],
            "editMessage" => &["action", "room", "seq", "body", "clientMsgId"],
            "deleteMessage" => &["action", "room", "seq", "clientMsgId"],
            "react" => &["action", "room", "seq", "emoji", "remove"],
            "history" => &["action", "room", "before", "after", "limit"],
            "members" => &["action", "room", "cursor", "limit"],
            "markRead" => &["action", "room", "seq"],
            "ping" => &["action"],
            _ => return Err(ProtocolError::bad_request("unknown action")),
        };
        let f = Fields::from_value(value, "the frame", allowed)?;
        Ok(match action.as_str() {
            "joinRoom" => Self::JoinRoom {
                room: RoomId::parse(f.string("room")?)?,
            },
            "leaveRoom" => Self::LeaveRoom {
                room: RoomId::parse(f.string("room")?)?,
            },
            "typing" => Self::Typing {
                room: RoomId::parse(f.string("room")?)?,
            },
            "sendMessage" => Self::SendMessage {
                room: RoomId::parse(f.string("room")?)?,
                client_msg_id: ClientMsgId::parse(f.string("clientMsgId")?)?,
                body: MessageBody::parse(f.string("body")?)?,
                reply_to: match f.opt_i64("replyTo")? {
                    None => None,
                    some => Some(message::parse_seq(some, "replyTo")?),
                },
            },
            "editMessage" => Self::EditMessage {
                room: RoomId::parse(f.string("room")?)?,
                seq: message::parse_seq(f.opt_i64("seq")?, "seq")?,
                client_msg_id: ClientMsgId::parse(f.string("clientMsgId")?)?,
                body: MessageBody::parse(f.string("body")?)?,
            },
            "deleteMessage" => Self::DeleteMessage {
                room: RoomId::parse(f.string("room")?)?,
                seq: message::parse_seq(f.opt_i64("seq")?, "seq")?,
                client_msg_id: ClientMsgId::parse(f.string("clientMsgId")?)?,
            },
            "react" => Self::React {
                room: RoomId::parse(f.string("room")?)?,
                seq: message::parse_seq(f.opt_i64("seq")?, "seq")?,
                emoji: Emoji::parse(f.string("emoji")?)?,
                remove: f.opt_bool("remove")?.unwrap_or(false),
            },
            "history" => Self::History {
                room: RoomId::parse(f.string("room")?)?,
                query: HistoryQuery::new(
                    f.opt_i64("before")?,
                    f.opt_i64("after")?,
                    f.opt_i64("limit")?,
                )?,
            },
            "members" => Self::Members {
                room: RoomId::parse(f.string("room")?)?,
                cursor: f
                    .opt_string("cursor")?
                    .map(|c| MembersCursor::parse(&c))
                    .transpose()?,
                limit: match f.opt_i64("limit")? {
                    None => MEMBERS_LIMIT_DEFAULT,
                    Some(l) if (1..=i64::from(MEMBERS_LIMIT_MAX)).contains(&l) => l as u32,
                    Some(_) => {
                        return Err(ProtocolError::bad_request(format!(
                            "`limit` must be 1..={MEMBERS_LIMIT_MAX}"
                        )));
                    }
                },
            },
            "markRead" => Self::MarkRead {
                room: RoomId::parse(f.string("room")?)?,
                seq: read_seq(f.opt_i64("seq")?)?,
            },
            "ping" => Self::Ping,
            _ => return Err(ProtocolError::bad_request("unknown action")),
        })
    }
}

/// A read mark's `seq`: required, an integer >= 0 (the same rule as HTTP
/// `PUT /rooms/{room}/read`). A `seq` past the room's last is clamped by the store.
pub fn read_seq(seq: Option<i64>) -> Result<i64, ProtocolError> {
    match seq {
        Some(s) if s >= 0 => Ok(s),
        Some(_) => Err(ProtocolError::bad_request("`seq` must be an integer >= 0")),
        None => Err(ProtocolError::bad_request("missing field `seq`")),
    }
}

/// A user as other clients see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    /// Stable user id (the token's `sub`).
    pub id: String,
    /// Display name (the token's `name`).
    pub name: String,
}

/// A committed entry of a room's sequence (a message, or an edit or delete of one), as
/// stored and as sent. A plain message also carries its current state: the latest edit
/// (`edit_seq`, `edited_at`), whether it was deleted, the quote it replies to and, in history,
/// its reactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub room: RoomId,
    /// Server-assigned unique id.
    pub id: uuid::Uuid,
    /// Per-room sequence number, gap-free, assigned at commit.
    pub seq: i64,
    #[serde(default)]
    pub kind: MessageKind,
    /// The `seq` an edit or delete applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<i64>,
    /// Who sent the message (for an edit or delete: who made it).
    pub sender: UserRef,
    /// The current body; `None` (the empty string on the wire) for a deleted message, an
    /// edit of one, and a delete.
    #[serde(with = "message::body_or_empty")]
    pub body: Option<MessageBody>,
    pub client_msg_id: ClientMsgId,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyRef>,
    /// The seq of the edit whose body `body` holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_seq: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub edited_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "message::is_false")]
    pub deleted: bool,
    /// Reaction counts by emoji (byte order); only in history, where `me` is the reader's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<ReactionCount>,
}

impl ChatMessage {
    /// A plain message with no edit, reply or reaction yet.
    pub fn plain(
        room: RoomId,
        seq: i64,
        sender: UserRef,
        body: MessageBody,
        client_msg_id: ClientMsgId,
        sent_at: OffsetDateTime,
    ) -> Self {
        Self {
            room,
            id: uuid::Uuid::now_v7(),
            seq,
            kind: MessageKind::Message,
            target: None,
            sender,
            body: Some(body),
            client_msg_id,
            sent_at,
            reply_to: None,
            edit_seq: None,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
        }
    }
}

/// Presence transitions announced to a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceState {
    Joined,
    Left,
}

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerFrame {
    Joined {
        room: RoomId,
    },
    Left {
        room: RoomId,
    },
    #[serde(rename_all = "camelCase")]
    Ack {
        room: RoomId,
        client_msg_id: ClientMsgId,
        id: uuid::Uuid,
        seq: i64,
        #[serde(with = "time::serde::rfc3339")]
        sent_at: OffsetDateTime,
        /// `edit` or `delete` for those; absent for a message.
        #[serde(skip_serializing_if = "MessageKind::is_message")]
        kind: MessageKind,
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<i64>,
        /// The body as stored, when the moderation hook replaced the one sent.
        #[serde(skip_serializing_if = "Option::is_none")]
        body: Option<MessageBody>,
    },
    /// A reaction added or taken back: `count` users now react to `seq` with `emoji`.
    /// Not sequenced; history holds the truth.
    Reaction {
        room: RoomId,
        seq: i64,
        emoji: Emoji,
        count: u32,
        user: UserRef,
        added: bool,
    },
    #[serde(rename_all = "camelCase")]
    History {
        room: RoomId,
        messages: Vec<ChatMessage>,
        has_more: bool,
    },
    Message(ChatMessage),
    /// Several messages of a busy room in one frame (see [`crate::queue::coalesce`]): the
    /// same as each of them as a `message` frame, in `seq` order.
    Messages {
        room: RoomId,
        messages: Vec<ChatMessage>,
    },
    Typing {
        room: RoomId,
        user: UserRef,
    },
    /// A window's joins and leaves in a room (see [`crate::presence`]): names up to
    /// [`crate::presence::PRESENCE_DETAIL_LIMIT`] members, the occupancy `count` always.
    Presence {
        room: RoomId,
        joined: Vec<UserRef>,
        left: Vec<UserRef>,
        count: usize,
    },
    /// A page of the users connected to a room, each once; `next` while more remain.
    Members {
        room: RoomId,
        members: Vec<UserRef>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next: Option<MembersCursor>,
    },
    /// The user's read position in a room: to the sender of `markRead`, and to the user's
    /// other connections when it moved.
    #[serde(rename_all = "camelCase")]
    Read {
        room: RoomId,
        last_read: i64,
        unread: i64,
    },
    /// A member's read position moved (rooms with read receipts, up to
    /// [`crate::people::RECEIPTS_ROOM_MAX`] connections).
    #[serde(rename_all = "camelCase")]
    Receipt {
        room: RoomId,
        user: UserRef,
        last_read: i64,
    },
    /// The user was made a member of a private room (or a direct room was opened with them).
    Added {
        room: RoomId,
    },
    /// The user is no longer a member of the room: this connection has left it.
    Removed {
        room: RoomId,
    },
    Pong,
    #[serde(rename_all = "camelCase")]
    Error {
        code: ErrorCode,
        message: String,
        request_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        action: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        /// The room the failed frame named, when it was a well-formed room id.
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<RoomId>,
        /// With `rate_limited`: milliseconds until the route accepts a frame again.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl ServerFrame {
    /// The ack for a committed message.
    pub fn ack(m: &ChatMessage) -> Self {
        Self::Ack {
            room: m.room.clone(),
            client_msg_id: m.client_msg_id.clone(),
            id: m.id,
            seq: m.seq,
            sent_at: m.sent_at,
            kind: m.kind,
            target: m.target,
            body: None,
        }
    }

    /// The ack for a committed message whose body the moderation hook replaced: it tells the
    /// sender the body as stored.
    pub fn ack_replaced(m: &ChatMessage) -> Self {
        match Self::ack(m) {
            Self::Ack {
                room,
                client_msg_id,
                id,
                seq,
                sent_at,
                kind,
                target,
                ..
            } => Self::Ack {
                room,
                client_msg_id,
                id,
                seq,
                sent_at,
                kind,
                target,
                body: m.body.clone(),
            },
            other => other,
        }
    }

    /// Serialises the frame. Our frames hold only strings, numbers and timestamps, which
    /// serde_json always encodes; the fallback keeps the signature infallible without a panic.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            tracing::error!(error = %e, "server frame failed to serialise");
            r#"{"type":"error","code":"internal","message":"internal error","requestId":""}"#
                .to_owned()
        })
    }
}

#[cfg(test)]
mod tests;
