//! The parts of the message object that edits, deletes, replies and reactions add
//! (docs/protocol.md, "Message object"): the [`MessageKind`] of a sequence entry, the quote of
//! a reply ([`ReplyRef`]), reaction counts ([`ReactionCount`]) and the [`Emoji`] a reaction
//! names.
//!
//! Every addition is a field an old client may ignore: a deleted body is the empty string
//! rather than absent, so a client that expects a string keeps working.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{MessageBody, ProtocolError, UserRef};
#[cfg(test)]
use crate::error::ErrorCode;

/// Characters of the quoted message a reply carries (`replyTo.bodyPreview`): enough for a
/// one-line quote; the whole message is in history by its `seq`.
pub const REPLY_PREVIEW_CHARS: usize = 100;
/// Longest emoji in Unicode scalar values: the longest common emoji (ZWJ family sequences,
/// flags of subdivisions) are 7; a reaction is a symbol, not a message.
pub const EMOJI_MAX_CHARS: usize = 8;
/// Distinct emoji on one message: bounds the size of a message object in history pages
/// (a page of 100 messages stays far under the 128 KB route response limit).
pub const REACTIONS_PER_MESSAGE_MAX: usize = 20;

/// What a sequence entry is: a message, or an edit or delete of the message `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    #[default]
    Message,
    Edit,
    Delete,
}

impl MessageKind {
    /// The stored spelling (the `kind` column).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Edit => "edit",
            Self::Delete => "delete",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "message" => Some(Self::Message),
            "edit" => Some(Self::Edit),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }

    /// A plain message (serde's `skip_serializing_if`).
    pub fn is_message(&self) -> bool {
        *self == Self::Message
    }
}

/// The message a reply answers, as much as a client needs to render the quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplyRef {
    pub seq: i64,
    pub sender: UserRef,
    /// The first [`REPLY_PREVIEW_CHARS`] characters of the quoted message's current body;
    /// empty when it was deleted.
    pub body_preview: String,
    /// The quoted message was deleted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
}

impl ReplyRef {
    /// The quote of the message `seq` by `sender` whose current body is `body` (`None`:
    /// deleted).
    pub fn new(seq: i64, sender: UserRef, body: Option<&str>) -> Self {
        Self {
            seq,
            sender,
            body_preview: body
                .map(|b| b.chars().take(REPLY_PREVIEW_CHARS).collect())
                .unwrap_or_default(),
            deleted: body.is_none(),
        }
    }
}

/// How many users reacted to a message with one emoji, and whether the reader is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionCount {
    pub emoji: Emoji,
    pub count: u32,
    /// The user who read the page reacted with this emoji.
    pub me: bool,
}

/// serde's `skip_serializing_if` for flags that are absent when false.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

string_newtype!(
    /// A reaction: 1..=8 Unicode scalar values, no whitespace or control characters, and not
    /// only ASCII (a reaction is a symbol, not a short message).
    Emoji
);

impl Emoji {
    /// Parses a reaction emoji.
    pub fn parse(raw: impl Into<String>) -> Result<Self, ProtocolError> {
        let raw = raw.into();
        let len_ok = !raw.is_empty() && raw.chars().nth(EMOJI_MAX_CHARS).is_none();
        let chars_ok = raw.chars().all(|c| !c.is_whitespace() && !c.is_control());
        if len_ok && chars_ok && !raw.is_ascii() {
            Ok(Self(raw))
        } else {
            Err(ProtocolError::bad_request(format!(
                "`emoji` must be 1..={EMOJI_MAX_CHARS} characters, not only ASCII, with no whitespace or control characters"
            )))
        }
    }
}

/// serde for a message's `body`: `None` (a tombstone, a delete event) is the empty string on
/// the wire, which no client can send (bodies are 1..=4000 characters), so old clients that
/// expect a string still get one.
pub(crate) mod body_or_empty {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::MessageBody;

    pub fn serialize<S: Serializer>(body: &Option<MessageBody>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(body.as_ref().map_or("", MessageBody::as_str))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MessageBody>, D::Error> {
        let raw = String::deserialize(d)?;
        if raw.is_empty() {
            return Ok(None);
        }
        MessageBody::parse(raw)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// A `seq` field of a client frame: an integer ≥ 1.
pub(crate) fn parse_seq(value: Option<i64>, field: &str) -> Result<i64, ProtocolError> {
    match value {
        Some(s) if s >= 1 => Ok(s),
        Some(_) => Err(ProtocolError::bad_request(format!(
            "`{field}` must be a seq >= 1"
        ))),
        None => Err(ProtocolError::bad_request(format!(
            "missing field `{field}`"
        ))),
    }
}

/// The error code of a refused emoji, for tests.
#[cfg(test)]
fn emoji_code(raw: &str) -> Option<ErrorCode> {
    Emoji::parse(raw).err().map(|e| e.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_rules() {
        for ok in ["👍", "❤️", "🇫🇷", "👨‍👩‍👧‍👦", "🎉", "ä"] {
            assert!(Emoji::parse(ok).is_ok(), "{ok:?} refused");
        }
        for bad in [
            "",
            "+1",
            "ok",
            "👍 ",
            "a\u{1}",
            "👍👍👍👍👍👍👍👍👍",
            "\u{200b} ",
        ] {
            assert_eq!(emoji_code(bad), Some(ErrorCode::BadRequest), "{bad:?}");
        }
    }

    #[test]
    fn reply_preview_is_cut_by_characters_and_empty_when_deleted() {
        let who = UserRef {
            id: "u".into(),
            name: "n".into(),
        };
        let long = "é".repeat(150);
        let r = ReplyRef::new(3, who.clone(), Some(&long));
        assert_eq!(r.body_preview.chars().count(), REPLY_PREVIEW_CHARS);
        assert!(!r.deleted);
        let gone = ReplyRef::new(3, who, None);
        assert_eq!(gone.body_preview, "");
        assert!(gone.deleted);
        let v = serde_json::to_value(&gone).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"seq":3,"sender":{"id":"u","name":"n"},"bodyPreview":"","deleted":true})
        );
    }

    #[test]
    fn seq_fields_are_positive() {
        assert_eq!(parse_seq(Some(1), "seq"), Ok(1));
        assert!(parse_seq(Some(0), "seq").is_err());
        assert!(
            parse_seq(None, "seq")
                .unwrap_err()
                .message
                .contains("missing")
        );
    }
}

#[cfg(test)]
mod frame_tests {
    use crate::error::ErrorCode;
    use crate::protocol::{ClientFrame, ServerFrame};

    fn parse(raw: &str) -> Result<ClientFrame, crate::protocol::ProtocolError> {
        ClientFrame::parse(raw)
    }

    #[test]
    fn message_actions_parse_and_refuse_bad_fields() {
        let f = parse(
            r#"{"action":"sendMessage","room":"r","body":"x","clientMsgId":"c","replyTo":4}"#,
        )
        .unwrap();
        assert!(matches!(
            f,
            ClientFrame::SendMessage {
                reply_to: Some(4),
                ..
            }
        ));
        let f =
            parse(r#"{"action":"react","room":"r","seq":2,"emoji":"🎉","remove":true}"#).unwrap();
        assert!(matches!(
            f,
            ClientFrame::React {
                seq: 2,
                remove: true,
                ..
            }
        ));
        let cases = [
            (
                r#"{"action":"sendMessage","room":"r","body":"x","clientMsgId":"c","replyTo":0}"#,
                ErrorCode::BadRequest,
            ),
            (
                r#"{"action":"editMessage","room":"r","body":"x","clientMsgId":"c"}"#,
                ErrorCode::BadRequest,
            ),
            (
                r#"{"action":"editMessage","room":"r","seq":-1,"body":"x","clientMsgId":"c"}"#,
                ErrorCode::BadRequest,
            ),
            (
                r#"{"action":"editMessage","room":"r","seq":1,"body":"","clientMsgId":"c"}"#,
                ErrorCode::BadRequest,
            ),
            (
                r#"{"action":"deleteMessage","room":"r","seq":1}"#,
                ErrorCode::BadRequest,
            ),
            (
                r#"{"action":"deleteMessage","room":"r","seq":1,"clientMsgId":"c","body":"x"}"#,
                ErrorCode::BadRequest,
            ),
            (
                r#"{"action":"react","room":"r","seq":1,"emoji":"lol"}"#,
                ErrorCode::BadRequest,
            ),
            (
                r#"{"action":"react","room":"r","seq":1,"emoji":"👍","remove":"yes"}"#,
                ErrorCode::BadRequest,
            ),
        ];
        for (raw, code) in cases {
            assert_eq!(parse(raw).unwrap_err().code, code, "{raw}");
        }
        let long = format!(
            r#"{{"action":"editMessage","room":"r","seq":1,"body":"{}","clientMsgId":"c"}}"#,
            "x".repeat(4001)
        );
        assert_eq!(parse(&long).unwrap_err().code, ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn reaction_frame_shape() {
        let f = ServerFrame::Reaction {
            room: crate::protocol::RoomId::parse("r").unwrap(),
            seq: 5,
            emoji: super::Emoji::parse("👍").unwrap(),
            count: 2,
            user: crate::protocol::UserRef {
                id: "u".into(),
                name: "n".into(),
            },
            added: true,
        };
        let v: serde_json::Value = serde_json::from_str(&f.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"reaction","room":"r","seq":5,"emoji":"👍","count":2,
                "user":{"id":"u","name":"n"},"added":true})
        );
    }
}
