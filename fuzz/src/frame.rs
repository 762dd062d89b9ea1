//! Client frames: [`ClientFrame::parse`] and the route selection of [`RouteKey::for_body`].
//!
//! Properties: no panic; a frame that parses selects the route its action names and, written
//! back as JSON, parses to the same frame; a refusal is `bad_request` or `payload_too_large`
//! and echoes nothing.

use hubbub_core::error::ErrorCode;
use hubbub_core::protocol::{ClientFrame, HistoryCursor, action_of};
use hubbub_core::routes::RouteKey;
use serde_json::{Value, json};

use crate::echo;

/// The fuzz body: `data` is one text frame (invalid UTF-8 is not a text frame).
pub fn run(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    check(raw);
}

/// The properties for one frame text.
pub fn check(raw: &str) {
    let route = RouteKey::for_body(raw);
    match action_of(raw) {
        Some(a) => assert_eq!(route, RouteKey::for_action(&a)),
        None => assert_eq!(route, RouteKey::Default),
    }
    match ClientFrame::parse(raw) {
        Ok(frame) => {
            assert_eq!(
                frame.route_key(),
                route,
                "a parsed frame selects its own route"
            );
            let again = to_json(&frame).to_string();
            assert_eq!(
                ClientFrame::parse(&again).as_ref(),
                Ok(&frame),
                "a parsed frame written back as {again} parses to itself"
            );
        }
        Err(e) => {
            assert!(
                matches!(e.code, ErrorCode::BadRequest | ErrorCode::PayloadTooLarge),
                "a frame refusal is a client error, not {:?}",
                e.code
            );
            let message_of = |raw: &str| ClientFrame::parse(raw).err().map(|e| e.message);
            echo::assert_no_echo(
                raw,
                &echo::candidates(raw),
                |raw| message_of(raw).unwrap_or_default(),
                "a frame refusal",
            );
        }
    }
}

/// The frame as a client would write it (docs/protocol.md, "Client frames").
pub fn to_json(frame: &ClientFrame) -> Value {
    match frame {
        ClientFrame::JoinRoom { room } => json!({"action": "joinRoom", "room": room}),
        ClientFrame::LeaveRoom { room } => json!({"action": "leaveRoom", "room": room}),
        ClientFrame::Typing { room } => json!({"action": "typing", "room": room}),
        ClientFrame::SendMessage {
            room,
            body,
            client_msg_id,
            reply_to,
        } => {
            let mut v = json!({
                "action": "sendMessage", "room": room, "body": body, "clientMsgId": client_msg_id,
            });
            if let Some(r) = reply_to {
                v["replyTo"] = json!(r);
            }
            v
        }
        ClientFrame::EditMessage {
            room,
            seq,
            body,
            client_msg_id,
        } => json!({
            "action": "editMessage", "room": room, "seq": seq, "body": body,
            "clientMsgId": client_msg_id,
        }),
        ClientFrame::DeleteMessage {
            room,
            seq,
            client_msg_id,
        } => json!({
            "action": "deleteMessage", "room": room, "seq": seq, "clientMsgId": client_msg_id,
        }),
        ClientFrame::React {
            room,
            seq,
            emoji,
            remove,
        } => json!({
            "action": "react", "room": room, "seq": seq, "emoji": emoji, "remove": remove,
        }),
        ClientFrame::History { room, query } => {
            let mut v = json!({"action": "history", "room": room, "limit": query.limit});
            match query.cursor {
                HistoryCursor::Latest => {}
                HistoryCursor::Before(b) => v["before"] = json!(b),
                HistoryCursor::After(a) => v["after"] = json!(a),
            }
            v
        }
        ClientFrame::Members {
            room,
            cursor,
            limit,
        } => {
            let mut v = json!({"action": "members", "room": room, "limit": limit});
            if let Some(c) = cursor {
                v["cursor"] = json!(c.as_str());
            }
            v
        }
        ClientFrame::MarkRead { room, seq } => {
            json!({"action": "markRead", "room": room, "seq": seq})
        }
        ClientFrame::Ping => json!({"action": "ping"}),
    }
}
