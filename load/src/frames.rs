//! The few frames of hubbub's client protocol that the load client speaks, and the encoding of
//! its own message ids and bodies.
//!
//! Outbound frames are small `Serialize` structs over borrowed strings. Inbound frames are read
//! into one flat [`ServerFrame`] that borrows from the received text wherever the JSON string
//! has no escapes (the fields the judge reads — `type`, `room`, `clientMsgId`, `body`, `code` —
//! never do), so a delivery costs one parse and no allocation. Fields the judge does not need
//! (`sender`, `id`, `sentAt`, error texts) are skipped by the parser. Unknown frame types parse
//! too and are only counted, so the server can add frames without breaking a run.

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest room id (the protocol's limit).
pub const ROOM_ID_MAX: usize = 64;
/// Longest message body in characters (the protocol's limit).
pub const BODY_MAX_CHARS: usize = 4000;
/// Largest `history` page (the protocol's limit); catch-up reads pages of this size.
pub const HISTORY_LIMIT_MAX: u32 = 100;

/// `{"action":"joinRoom","room"}`.
pub fn join_room(room: &str) -> String {
    #[derive(Serialize)]
    struct F<'a> {
        action: &'static str,
        room: &'a str,
    }
    to_json(&F {
        action: "joinRoom",
        room,
    })
}

/// `{"action":"sendMessage","room","body","clientMsgId"}`.
pub fn send_message(room: &str, body: &str, client_msg_id: &str) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct F<'a> {
        action: &'static str,
        room: &'a str,
        body: &'a str,
        client_msg_id: &'a str,
    }
    to_json(&F {
        action: "sendMessage",
        room,
        body,
        client_msg_id,
    })
}

/// `{"action":"history","room","after","limit"}`: the catch-up page after `after`.
pub fn history_after(room: &str, after: i64, limit: u32) -> String {
    #[derive(Serialize)]
    struct F<'a> {
        action: &'static str,
        room: &'a str,
        after: i64,
        limit: u32,
    }
    to_json(&F {
        action: "history",
        room,
        after,
        limit,
    })
}

/// These frames hold only strings and integers, which serde_json always encodes; the fallback
/// keeps the builders infallible without a panic (the server answers `bad_request`, counted).
fn to_json<T: Serialize>(frame: &T) -> String {
    serde_json::to_string(frame).unwrap_or_default()
}

/// Whether `room` is a valid room id: 1..=64 chars of `[a-z0-9_-]`, starting with a letter or
/// digit.
pub fn is_room_id(room: &str) -> bool {
    let first_ok = room
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    first_ok
        && room.len() <= ROOM_ID_MAX
        && room
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A string field that borrows from the frame text when it can (no escapes) and owns otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl Str<'_> {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// One message as the server sends it: the `message` frame's fields, an element of a batched
/// `messages` frame, or an element of a `history` page.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireMessage<'a> {
    #[serde(borrow, default)]
    pub room: Option<Str<'a>>,
    #[serde(default)]
    pub seq: Option<i64>,
    #[serde(borrow, default)]
    pub client_msg_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub body: Option<Str<'a>>,
}

/// Any server frame, flattened: which fields are present depends on `type`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerFrame<'a> {
    #[serde(rename = "type", borrow)]
    pub ty: Str<'a>,
    #[serde(borrow, default)]
    pub room: Option<Str<'a>>,
    #[serde(default)]
    pub seq: Option<i64>,
    #[serde(borrow, default)]
    pub client_msg_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub body: Option<Str<'a>>,
    /// `error` frames: the error code.
    #[serde(borrow, default)]
    pub code: Option<Str<'a>>,
    /// `messages` (batched delivery) and `history` frames.
    #[serde(borrow, default)]
    pub messages: Option<Vec<WireMessage<'a>>>,
    /// `history` frames: whether older/newer pages remain.
    #[serde(default)]
    pub has_more: Option<bool>,
}

impl<'a> ServerFrame<'a> {
    /// Parses one text frame; `None` when it is not a JSON object with a string `type`.
    pub fn parse(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// The frame's fields seen as one message (for `type: message`).
    pub fn as_message(&self) -> WireMessage<'_> {
        WireMessage {
            room: self.room.as_ref().map(|s| Str(Cow::Borrowed(s.as_str()))),
            seq: self.seq,
            client_msg_id: self
                .client_msg_id
                .as_ref()
                .map(|s| Str(Cow::Borrowed(s.as_str()))),
            body: self.body.as_ref().map(|s| Str(Cow::Borrowed(s.as_str()))),
        }
    }
}

/// Who sent a message of this run: the sending connection and its message number there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgKey {
    pub conn: u32,
    pub n: u32,
}

/// Encodes and decodes this run's `clientMsgId`s: `{run}-{conn}-{n}`. The run id keeps two
/// load clients on the same rooms (or a rerun on persistent rooms) from judging each other's
/// messages.
#[derive(Debug, Clone)]
pub struct MsgIds {
    prefix: String,
}

impl MsgIds {
    /// Ids for run `run` (`[a-z0-9]`, at most 20 chars so every id fits in 64).
    pub fn new(run: &str) -> Self {
        Self {
            prefix: format!("{run}-"),
        }
    }

    /// Writes the id of message `key` into `out` (cleared first).
    pub fn write(&self, key: MsgKey, out: &mut String) {
        out.clear();
        out.push_str(&self.prefix);
        // Writing to a String cannot fail.
        let _ = write!(out, "{}-{}", key.conn, key.n);
    }

    /// The key of an id of this run; `None` for anything else.
    pub fn parse(&self, id: &str) -> Option<MsgKey> {
        let rest = id.strip_prefix(self.prefix.as_str())?;
        let (conn, n) = rest.split_once('-')?;
        Some(MsgKey {
            conn: conn.parse().ok()?,
            n: n.parse().ok()?,
        })
    }
}

/// Writes a message body: `t{micros}.` (the send time since the run's epoch, read back by the
/// receivers for the delivery latency) padded with `x` to `size` bytes.
pub fn write_body(sent_us: u64, size: usize, out: &mut String) {
    out.clear();
    // Writing to a String cannot fail.
    let _ = write!(out, "t{sent_us}.");
    while out.len() < size {
        out.push('x');
    }
}

/// The send time stamped into a body by [`write_body`].
pub fn body_sent_us(body: &str) -> Option<u64> {
    let rest = body.strip_prefix('t')?;
    let end = rest.find('.')?;
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_are_the_protocol_shapes() {
        let v: serde_json::Value = serde_json::from_str(&join_room("general")).unwrap();
        assert_eq!(v, serde_json::json!({"action":"joinRoom","room":"general"}));
        let v: serde_json::Value = serde_json::from_str(&send_message("r", "hi", "a-1-2")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"action":"sendMessage","room":"r","body":"hi","clientMsgId":"a-1-2"})
        );
        let v: serde_json::Value = serde_json::from_str(&history_after("r", 7, 100)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"action":"history","room":"r","after":7,"limit":100})
        );
    }

    #[test]
    fn parses_a_message_borrowing_its_fields() {
        let text = r#"{"type":"message","room":"r-1","id":"0190","seq":12,"sender":{"id":"u","name":"al\"ice"},"body":"t5.xx","clientMsgId":"ab-3-4","sentAt":"2026-01-01T00:00:00Z"}"#;
        let f = ServerFrame::parse(text).unwrap();
        assert_eq!(f.ty.as_str(), "message");
        assert_eq!(f.seq, Some(12));
        assert!(matches!(f.room.as_ref().unwrap().0, Cow::Borrowed("r-1")));
        assert!(matches!(
            f.client_msg_id.as_ref().unwrap().0,
            Cow::Borrowed(_)
        ));
        let m = f.as_message();
        assert_eq!(body_sent_us(m.body.unwrap().as_str()), Some(5));
    }

    #[test]
    fn parses_escaped_strings_by_owning_them() {
        let f =
            ServerFrame::parse(r#"{"type":"error","code":"rate_\u006cimited","message":"a\nb"}"#)
                .unwrap();
        assert_eq!(f.code.unwrap().as_str(), "rate_limited");
    }

    #[test]
    fn parses_batched_and_history_frames() {
        let f = ServerFrame::parse(
            r#"{"type":"messages","room":"r","messages":[{"room":"r","seq":1,"clientMsgId":"a-0-0","body":"t1."},{"room":"r","seq":2,"clientMsgId":"a-0-1","body":"t2."}]}"#,
        )
        .unwrap();
        let ms = f.messages.unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[1].seq, Some(2));
        let f =
            ServerFrame::parse(r#"{"type":"history","room":"r","messages":[],"hasMore":false}"#)
                .unwrap();
        assert_eq!(f.has_more, Some(false));
        assert!(ServerFrame::parse(r#"{"type":"presence.batch","joined":3}"#).is_some());
        assert!(ServerFrame::parse("[1]").is_none());
        assert!(ServerFrame::parse(r#"{"no":"type"}"#).is_none());
    }

    #[test]
    fn message_ids_round_trip_and_ignore_other_runs() {
        let ids = MsgIds::new("k3x9");
        let mut s = String::new();
        ids.write(MsgKey { conn: 19999, n: 65 }, &mut s);
        assert_eq!(s, "k3x9-19999-65");
        assert_eq!(ids.parse(&s), Some(MsgKey { conn: 19999, n: 65 }));
        assert_eq!(ids.parse("zzzz-1-2"), None);
        assert_eq!(ids.parse("k3x9-1"), None);
        assert_eq!(ids.parse("k3x9-a-2"), None);
        let long = MsgIds::new(&"z".repeat(20));
        long.write(
            MsgKey {
                conn: u32::MAX,
                n: u32::MAX,
            },
            &mut s,
        );
        assert!(s.len() <= 64);
    }

    #[test]
    fn bodies_carry_their_send_time_and_size() {
        let mut b = String::new();
        write_body(123_456, 40, &mut b);
        assert_eq!(b.len(), 40);
        assert_eq!(body_sent_us(&b), Some(123_456));
        write_body(123_456, 1, &mut b);
        assert_eq!(b, "t123456.");
        assert_eq!(body_sent_us("hello"), None);
    }

    #[test]
    fn room_ids() {
        assert!(is_room_id("load-abc-0"));
        assert!(!is_room_id("-x"));
        assert!(!is_room_id("Load"));
        assert!(!is_room_id(&"a".repeat(65)));
        assert!(!is_room_id(""));
    }
}
