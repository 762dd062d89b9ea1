//! The WebSocket rows of the bad-input catalogue: frames of every malformed, oversized,
//! unknown or unauthorized kind, and refused handshakes.

use serde_json::{Value, json};

use super::{Expect, Input, LOBBY, MARK, MISSING, PRIVATE, Row, Seqs, Tokens};

/// A text frame from a fresh connection.
fn text(name: &'static str, text: impl Into<String>, expect: Expect) -> Row {
    Row {
        name,
        input: Input::Frame {
            text: text.into(),
            join: None,
            times: 1,
        },
        expect,
    }
}

/// A JSON frame from a fresh connection.
fn frame(name: &'static str, v: Value, expect: Expect) -> Row {
    text(name, v.to_string(), expect)
}

/// A JSON frame from a fresh connection that joined [`LOBBY`] first, sent `times` times.
fn in_lobby(name: &'static str, v: Value, times: usize, expect: Expect) -> Row {
    Row {
        name,
        input: Input::Frame {
            text: v.to_string(),
            join: Some(LOBBY),
            times,
        },
        expect,
    }
}

/// A handshake to `path_and_query` offering `protocol` (`Sec-WebSocket-Protocol`).
fn handshake(
    name: &'static str,
    path_and_query: String,
    protocol: Option<String>,
    status: u16,
) -> Row {
    Row {
        name,
        input: Input::Handshake {
            path_and_query,
            protocol,
        },
        expect: Expect::Refused(status),
    }
}

/// `sendMessage` with the given fields over a valid base.
fn send(fields: Value) -> Value {
    let mut v = json!({"action":"sendMessage","room":LOBBY,"body":MARK,"clientMsgId":"m-1"});
    for (k, f) in fields.as_object().expect("an object") {
        if f.is_null() {
            v.as_object_mut().expect("an object").remove(k);
        } else {
            v[k] = f.clone();
        }
    }
    v
}

pub fn rows(t: &Tokens, seqs: &Seqs) -> Vec<Row> {
    use Expect::{Close, Frame};
    const BAD: Expect = Frame("bad_request");
    let long_room = "r".repeat(65);
    vec![
        // Not a frame at all.
        text(
            "not JSON",
            format!("{{\"action\":\"joinRoom\",\"room\":\"{MARK}"),
            BAD,
        ),
        text("plain text", format!("hello {MARK}"), BAD),
        text("empty text frame", "", BAD),
        text("JSON array", json!([MARK, "joinRoom"]).to_string(), BAD),
        text("JSON string", json!(MARK).to_string(), BAD),
        text("JSON number", "42", BAD),
        text("JSON null", "null", BAD),
        text("nested 5000 deep", "[".repeat(5000), BAD),
        text(
            "duplicate action keys",
            format!(r#"{{"action":"ping","action":"{MARK}"}}"#),
            BAD,
        ),
        text(
            "duplicate action keys, a known action last",
            format!(r#"{{"action":"ping","action":"joinRoom","room":"{LOBBY}"}}"#),
            BAD,
        ),
        text(
            "duplicate action keys, ping last",
            r#"{"action":"joinRoom","action":"ping"}"#,
            BAD,
        ),
        Row {
            name: "binary frame",
            input: Input::Binary(format!("{{\"action\":\"ping\",\"x\":\"{MARK}\"}}").into_bytes()),
            expect: BAD,
        },
        // The action.
        frame("no action", json!({"room": MARK}), BAD),
        frame("action is a number", json!({"action": 7}), BAD),
        frame("action is null", json!({"action": null}), BAD),
        frame(
            "action is an object",
            json!({"action": {"name": MARK}}),
            BAD,
        ),
        frame("unknown action", json!({"action": MARK}), BAD),
        frame(
            "action in the wrong case",
            json!({"action": "JoinRoom", "room": LOBBY}),
            BAD,
        ),
        frame("route key as action", json!({"action": "$connect"}), BAD),
        // Fields.
        frame("joinRoom without room", json!({"action": "joinRoom"}), BAD),
        frame(
            "joinRoom room is a number",
            json!({"action": "joinRoom", "room": 5}),
            BAD,
        ),
        frame(
            "joinRoom room is an array",
            json!({"action": "joinRoom", "room": [MARK]}),
            BAD,
        ),
        frame(
            "joinRoom room null",
            json!({"action": "joinRoom", "room": null}),
            BAD,
        ),
        frame(
            "joinRoom room empty",
            json!({"action": "joinRoom", "room": ""}),
            BAD,
        ),
        frame(
            "joinRoom room of 65 chars",
            json!({"action": "joinRoom", "room": long_room}),
            BAD,
        ),
        frame(
            "joinRoom room upper case",
            json!({"action": "joinRoom", "room": MARK}),
            BAD,
        ),
        frame(
            "joinRoom room with a space",
            json!({"action": "joinRoom", "room": format!("a {}", MARK.to_lowercase())}),
            BAD,
        ),
        frame(
            "joinRoom room starting with -",
            json!({"action": "joinRoom", "room": "-abc"}),
            BAD,
        ),
        frame(
            "joinRoom room non-ASCII",
            json!({"action": "joinRoom", "room": "caf\u{e9}"}),
            BAD,
        ),
        frame(
            "joinRoom unknown field",
            json!({"action": "joinRoom", "room": LOBBY, MARK: 1}),
            BAD,
        ),
        frame(
            "ping with a field",
            json!({"action": "ping", MARK: true}),
            BAD,
        ),
        frame(
            "leaveRoom bad room",
            json!({"action": "leaveRoom", "room": MARK}),
            BAD,
        ),
        frame(
            "typing bad room",
            json!({"action": "typing", "room": MARK}),
            BAD,
        ),
        frame(
            "sendMessage without clientMsgId",
            send(json!({"clientMsgId": null})),
            BAD,
        ),
        frame(
            "sendMessage clientMsgId of 65 chars",
            send(json!({"clientMsgId": "m".repeat(65)})),
            BAD,
        ),
        frame(
            "sendMessage clientMsgId with bad chars",
            send(json!({"clientMsgId": format!("{MARK}!")})),
            BAD,
        ),
        frame(
            "sendMessage clientMsgId a number",
            send(json!({"clientMsgId": 17})),
            BAD,
        ),
        frame(
            "sendMessage clientMsgId empty",
            send(json!({"clientMsgId": ""})),
            BAD,
        ),
        frame("sendMessage without body", send(json!({"body": null})), BAD),
        frame("sendMessage body empty", send(json!({"body": ""})), BAD),
        frame(
            "sendMessage body an object",
            send(json!({"body": {"text": MARK}})),
            BAD,
        ),
        frame(
            "sendMessage body with NUL",
            send(json!({"body": format!("{MARK}\u{0}")})),
            BAD,
        ),
        frame(
            "sendMessage body of 4001 chars",
            send(json!({"body": format!("{MARK}{}", "b".repeat(4001 - MARK.len()))})),
            Frame("payload_too_large"),
        ),
        frame("sendMessage without room", send(json!({"room": null})), BAD),
        frame("sendMessage extra field", send(json!({"seq": 1})), BAD),
        frame(
            "history limit 0",
            json!({"action": "history", "room": LOBBY, "limit": 0}),
            BAD,
        ),
        frame(
            "history limit 101",
            json!({"action": "history", "room": LOBBY, "limit": 101}),
            BAD,
        ),
        frame(
            "history limit a string",
            json!({"action": "history", "room": LOBBY, "limit": "5"}),
            BAD,
        ),
        frame(
            "history limit 5.0",
            json!({"action": "history", "room": LOBBY, "limit": 5.0}),
            BAD,
        ),
        frame(
            "history limit 1e30",
            json!({"action": "history", "room": LOBBY, "limit": 1e30}),
            BAD,
        ),
        frame(
            "history before 0",
            json!({"action": "history", "room": LOBBY, "before": 0}),
            BAD,
        ),
        frame(
            "history after -1",
            json!({"action": "history", "room": LOBBY, "after": -1}),
            BAD,
        ),
        frame(
            "history before and after",
            json!({"action": "history", "room": LOBBY, "before": 5, "after": 1}),
            BAD,
        ),
        frame(
            "members limit 201",
            json!({"action": "members", "room": LOBBY, "limit": 201}),
            BAD,
        ),
        frame(
            "members cursor not ours",
            json!({"action": "members", "room": LOBBY, "cursor": MARK}),
            BAD,
        ),
        // Edits, deletes, replies and reactions: shapes.
        frame(
            "editMessage without seq",
            json!({"action": "editMessage", "room": LOBBY, "body": MARK, "clientMsgId": "e-1"}),
            BAD,
        ),
        frame(
            "editMessage seq 0",
            json!({"action": "editMessage", "room": LOBBY, "seq": 0, "body": MARK, "clientMsgId": "e-1"}),
            BAD,
        ),
        frame(
            "editMessage seq a string",
            json!({"action": "editMessage", "room": LOBBY, "seq": "1", "body": MARK, "clientMsgId": "e-1"}),
            BAD,
        ),
        frame(
            "editMessage body empty",
            json!({"action": "editMessage", "room": LOBBY, "seq": 1, "body": "", "clientMsgId": "e-1"}),
            BAD,
        ),
        frame(
            "deleteMessage without clientMsgId",
            json!({"action": "deleteMessage", "room": LOBBY, "seq": 1}),
            BAD,
        ),
        frame(
            "deleteMessage with a body",
            json!({"action": "deleteMessage", "room": LOBBY, "seq": 1, "clientMsgId": "d-1", "body": MARK}),
            BAD,
        ),
        frame(
            "react with a word for emoji",
            json!({"action": "react", "room": LOBBY, "seq": 1, "emoji": MARK}),
            BAD,
        ),
        frame(
            "react with remove a string",
            json!({"action": "react", "room": LOBBY, "seq": 1, "emoji": "\u{1f44d}", "remove": MARK}),
            BAD,
        ),
        frame("sendMessage replyTo 0", send(json!({"replyTo": 0})), BAD),
        frame(
            "sendMessage replyTo a string",
            send(json!({"replyTo": MARK})),
            BAD,
        ),
        // Edits, deletes, replies and reactions: messages the caller may not change.
        frame(
            "editMessage in a room not joined",
            json!({"action": "editMessage", "room": LOBBY, "seq": seqs.others, "body": MARK, "clientMsgId": "e-2"}),
            Frame("forbidden"),
        ),
        in_lobby(
            "editMessage of a missing message",
            json!({"action": "editMessage", "room": LOBBY, "seq": 1_000_000, "body": MARK, "clientMsgId": "e-3"}),
            1,
            Frame("not_found"),
        ),
        in_lobby(
            "editMessage of another user's message",
            json!({"action": "editMessage", "room": LOBBY, "seq": seqs.others, "body": MARK, "clientMsgId": "e-4"}),
            1,
            Frame("forbidden"),
        ),
        in_lobby(
            "deleteMessage of another user's message",
            json!({"action": "deleteMessage", "room": LOBBY, "seq": seqs.others, "clientMsgId": "d-2"}),
            1,
            Frame("forbidden"),
        ),
        in_lobby(
            "editMessage of a deleted message",
            json!({"action": "editMessage", "room": LOBBY, "seq": seqs.deleted, "body": MARK, "clientMsgId": "e-5"}),
            1,
            Frame("gone"),
        ),
        in_lobby(
            "react to a deleted message",
            json!({"action": "react", "room": LOBBY, "seq": seqs.deleted, "emoji": "\u{1f44d}"}),
            1,
            Frame("gone"),
        ),
        in_lobby(
            "react to a missing message",
            json!({"action": "react", "room": LOBBY, "seq": 1_000_000, "emoji": "\u{1f44d}"}),
            1,
            Frame("not_found"),
        ),
        in_lobby(
            "sendMessage replying to a missing message",
            send(json!({"replyTo": 1_000_000, "clientMsgId": "r-1"})),
            1,
            Frame("not_found"),
        ),
        in_lobby(
            "sendMessage replying to a deleted message",
            send(json!({"replyTo": seqs.deleted, "clientMsgId": "r-2"})),
            1,
            Frame("gone"),
        ),
        // Oversized: API Gateway's frame limit (docs/protocol.md), before any route.
        frame(
            "frame over 32 KB",
            send(json!({"body": format!("{MARK}{}", "x".repeat(33 * 1024))})),
            Close(1009),
        ),
        // Rooms the caller may not use, and missing ones.
        frame(
            "joinRoom private room",
            json!({"action": "joinRoom", "room": PRIVATE}),
            Frame("forbidden"),
        ),
        frame(
            "sendMessage to a room not joined",
            send(json!({})),
            Frame("forbidden"),
        ),
        frame(
            "sendMessage to a missing room",
            send(json!({"room": MISSING})),
            Frame("not_found"),
        ),
        frame(
            "sendMessage to a private room",
            send(json!({"room": PRIVATE})),
            Frame("forbidden"),
        ),
        frame(
            "typing in a room not joined",
            json!({"action": "typing", "room": LOBBY}),
            Frame("forbidden"),
        ),
        frame(
            "members of a room not joined",
            json!({"action": "members", "room": LOBBY}),
            Frame("forbidden"),
        ),
        frame(
            "history of a missing room",
            json!({"action": "history", "room": MISSING}),
            Frame("not_found"),
        ),
        frame(
            "history of a private room",
            json!({"action": "history", "room": PRIVATE}),
            Frame("forbidden"),
        ),
        // Read state: only in rooms the caller may use.
        frame(
            "markRead in a private room",
            json!({"action": "markRead", "room": PRIVATE, "seq": 1}),
            Frame("forbidden"),
        ),
        frame(
            "markRead in a missing room",
            json!({"action": "markRead", "room": MISSING, "seq": 1}),
            Frame("not_found"),
        ),
        frame(
            "markRead with a negative seq",
            json!({"action": "markRead", "room": LOBBY, "seq": -1}),
            Frame("bad_request"),
        ),
        frame(
            "markRead with a string seq",
            json!({"action": "markRead", "room": LOBBY, "seq": MARK}),
            Frame("bad_request"),
        ),
        // Limits: the send budget is a burst of 20 (docs/protocol.md, "Limits").
        in_lobby(
            "sendMessage flood",
            send(json!({})),
            25,
            Frame("rate_limited"),
        ),
        // The access token expired while the connection was open: the next frame is refused
        // (and the connection closed).
        Row {
            name: "frame after the access token expired",
            input: Input::FrameAfterExpiry {
                text: json!({"action": "ping"}).to_string(),
            },
            expect: Frame("unauthorized"),
        },
        // Handshakes (docs/protocol.md, "Connecting").
        handshake("connect without a token", "/".into(), None, 401),
        handshake("connect with an empty token", "/?token=".into(), None, 401),
        handshake(
            "connect with a garbage token",
            format!("/?token={MARK}"),
            None,
            401,
        ),
        handshake(
            "connect with an expired token",
            format!("/?token={}", t.expired),
            None,
            401,
        ),
        handshake(
            "connect with a wrong signature",
            format!("/?token={}", t.wrong_signature),
            None,
            401,
        ),
        handshake(
            "connect with alg none",
            format!("/?token={}", t.alg_none),
            None,
            401,
        ),
        handshake(
            "connect with another issuer's token",
            format!("/?token={}", t.wrong_issuer),
            None,
            403,
        ),
        handshake(
            "connect with another audience's token",
            format!("/?token={}", t.wrong_audience),
            None,
            403,
        ),
        handshake(
            "connect with a garbage bearer subprotocol",
            "/".into(),
            Some(format!("hubbub.v1, bearer.{MARK}")),
            401,
        ),
        handshake(
            "connect with an empty bearer subprotocol",
            "/".into(),
            Some("hubbub.v1, bearer.".into()),
            401,
        ),
        handshake(
            "connect to an unknown stage",
            format!("/{}/?token={}", MARK.to_lowercase(), t.valid),
            None,
            403,
        ),
    ]
}
