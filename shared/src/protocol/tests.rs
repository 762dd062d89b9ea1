//! Unit tests of the frames, fields and limits of [`super`].

use super::*;

fn bad(raw: &str) -> ProtocolError {
    ClientFrame::parse(raw).expect_err(raw)
}

#[test]
fn mark_read_takes_a_room_and_a_seq_of_zero_or_more() {
    assert_eq!(
        ClientFrame::parse(r#"{"action":"markRead","room":"r","seq":0}"#),
        Ok(ClientFrame::MarkRead {
            room: RoomId::parse("r").expect("room"),
            seq: 0
        })
    );
    for raw in [
        r#"{"action":"markRead","room":"r"}"#,
        r#"{"action":"markRead","room":"r","seq":-1}"#,
        r#"{"action":"markRead","room":"r","seq":1.5}"#,
        r#"{"action":"markRead","room":"r","seq":"1"}"#,
        r#"{"action":"markRead","room":"r","seq":1,"limit":2}"#,
        r#"{"action":"markRead","seq":1}"#,
    ] {
        assert_eq!(bad(raw).code, ErrorCode::BadRequest, "{raw}");
    }
    let read = ServerFrame::Read {
        room: RoomId::parse("r").expect("room"),
        last_read: 4,
        unread: 2,
    };
    assert_eq!(
        read.to_json(),
        r#"{"type":"read","room":"r","lastRead":4,"unread":2}"#
    );
    let removed = ServerFrame::Removed {
        room: RoomId::parse("r").expect("room"),
    };
    assert_eq!(removed.to_json(), r#"{"type":"removed","room":"r"}"#);
}

#[test]
fn room_id_limits() {
    assert!(RoomId::parse("general").is_ok());
    assert!(RoomId::parse("0-day_chat").is_ok());
    assert!(RoomId::parse("a".repeat(64)).is_ok());
    for b in ["", "-x", "_x", "General", "a b", "é", "a/b"] {
        assert!(RoomId::parse(b).is_err(), "{b:?} accepted");
    }
    assert!(RoomId::parse("a".repeat(65)).is_err());
}

#[test]
fn client_msg_id_limits() {
    assert!(ClientMsgId::parse("m-0001_X").is_ok());
    assert!(ClientMsgId::parse("x".repeat(64)).is_ok());
    assert!(ClientMsgId::parse("x".repeat(65)).is_err());
    for b in ["", "a b", "a.b", "ü"] {
        assert!(ClientMsgId::parse(b).is_err(), "{b:?} accepted");
    }
}

#[test]
fn body_limits_count_characters_not_bytes() {
    assert!(MessageBody::parse("é".repeat(4000)).is_ok());
    let e = MessageBody::parse("é".repeat(4001)).unwrap_err();
    assert_eq!(e.code, ErrorCode::PayloadTooLarge);
    assert_eq!(
        MessageBody::parse("").unwrap_err().code,
        ErrorCode::BadRequest
    );
}

#[test]
fn parses_every_action() {
    assert_eq!(
        ClientFrame::parse(r#"{"action":"ping"}"#).unwrap(),
        ClientFrame::Ping
    );
    let f = ClientFrame::parse(
        r#"{"action":"sendMessage","room":"general","body":"hi","clientMsgId":"m1"}"#,
    )
    .unwrap();
    assert!(matches!(f, ClientFrame::SendMessage { ref room, .. } if room.as_str() == "general"));
    for (raw, want) in [
        (r#"{"action":"joinRoom","room":"r"}"#, "joinRoom"),
        (r#"{"action":"leaveRoom","room":"r"}"#, "leaveRoom"),
        (r#"{"action":"typing","room":"r"}"#, "typing"),
        (
            r#"{"action":"history","room":"r","after":3,"limit":10}"#,
            "history",
        ),
    ] {
        assert!(ClientFrame::parse(raw).is_ok(), "{want}");
    }
}

#[test]
fn history_query_rules() {
    assert_eq!(
        HistoryQuery::new(None, None, None).unwrap(),
        HistoryQuery {
            cursor: HistoryCursor::Latest,
            limit: 50
        }
    );
    assert_eq!(
        HistoryQuery::new(Some(10), None, Some(100)).unwrap().cursor,
        HistoryCursor::Before(10)
    );
    assert!(HistoryQuery::new(Some(1), Some(1), None).is_err());
    assert!(HistoryQuery::new(None, None, Some(0)).is_err());
    assert!(HistoryQuery::new(None, None, Some(101)).is_err());
    assert!(HistoryQuery::new(Some(0), None, None).is_err());
    assert!(HistoryQuery::new(None, Some(-1), None).is_err());
}

#[test]
fn every_bad_shape_is_bad_request_naming_the_problem() {
    let cases = [
        ("not json", "not valid JSON"),
        ("[1,2]", "JSON object"),
        (r#"{"room":"r"}"#, "missing field `action`"),
        (r#"{"action":7}"#, "`action` must be a string"),
        (r#"{"action":"dance"}"#, "unknown action"),
        (
            r#"{"action":"ping","action":"joinRoom","room":"r"}"#,
            "`action` must appear once",
        ),
        (
            r#"{"action":"joinRoom","action":"ping"}"#,
            "`action` must appear once",
        ),
        (r#"{"action":"joinRoom"}"#, "missing field `room`"),
        (
            r#"{"action":"joinRoom","room":5}"#,
            "`room` must be a string",
        ),
        (r#"{"action":"joinRoom","room":"Bad Room"}"#, "`room`"),
        (
            r#"{"action":"sendMessage","room":"r","body":"x"}"#,
            "missing field `clientMsgId`",
        ),
        (
            r#"{"action":"sendMessage","room":"r","body":"x","clientMsgId":"a b"}"#,
            "`clientMsgId`",
        ),
        (
            r#"{"action":"joinRoom","room":"r","extra":1}"#,
            "unknown field",
        ),
        (r#"{"action":"history","room":"r","limit":500}"#, "`limit`"),
    ];
    for (raw, needle) in cases {
        let e = bad(raw);
        assert_eq!(e.code, ErrorCode::BadRequest, "{raw}");
        assert!(e.message.contains(needle), "{raw}: {}", e.message);
        assert!(!e.message.contains("line "), "{raw}: {}", e.message);
    }
}

#[test]
fn refusals_never_echo_long_values_or_unknown_names() {
    let long = "q".repeat(10_000);
    let cases = [
        (
            format!(r#"{{"action":"history","room":"r","limit":"{long}"}}"#),
            "`limit` must be an integer",
        ),
        (
            format!(r#"{{"action":"joinRoom","room":["{long}"]}}"#),
            "`room` must be a string",
        ),
        (
            format!(r#"{{"action":"joinRoom","room":"r","{long}":1}}"#),
            "unknown field in the frame; allowed: `action`, `room`",
        ),
        (
            format!(r#"{{"action":"joinRoom","room":"{long}"}}"#),
            "`room` must be 1..=64 chars",
        ),
    ];
    for (raw, needle) in cases {
        let e = bad(&raw);
        assert_eq!(e.code, ErrorCode::BadRequest, "{needle}");
        assert!(e.message.contains(needle), "{}", e.message);
        assert!(!e.message.contains("qqq"), "{}", e.message);
        assert!(e.message.len() < 120, "{}", e.message);
    }
}

#[test]
fn nul_in_a_body_is_bad_request() {
    let e = bad(r#"{"action":"sendMessage","room":"r","clientMsgId":"c","body":"a\u0000b"}"#);
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(e.message.contains("NUL"), "{}", e.message);
    // Other control characters are storable and stay allowed.
    assert!(MessageBody::parse("tab\there\u{1}").is_ok());
}

#[test]
fn oversized_body_is_payload_too_large() {
    let raw = format!(
        r#"{{"action":"sendMessage","room":"r","body":"{}","clientMsgId":"m"}}"#,
        "x".repeat(4001)
    );
    assert_eq!(bad(&raw).code, ErrorCode::PayloadTooLarge);
}

#[test]
fn server_frames_match_protocol() {
    let v: serde_json::Value = serde_json::from_str(&ServerFrame::Pong.to_json()).unwrap();
    assert_eq!(v, serde_json::json!({"type":"pong"}));
    let e = ServerFrame::Error {
        code: ErrorCode::Forbidden,
        message: "no".into(),
        request_id: "r1".into(),
        action: Some("sendMessage".into()),
        client_msg_id: None,
        room: None,
        retry_after_ms: None,
    };
    let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"type":"error","code":"forbidden","message":"no","requestId":"r1","action":"sendMessage"})
    );
    let e = ServerFrame::Error {
        code: ErrorCode::NotFound,
        message: "room not found".into(),
        request_id: "r2".into(),
        action: Some("history".into()),
        client_msg_id: None,
        room: Some(RoomId::parse("lobby").unwrap()),
        retry_after_ms: None,
    };
    let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"type":"error","code":"not_found","message":"room not found","requestId":"r2","action":"history","room":"lobby"})
    );
    let e = ServerFrame::Error {
        code: ErrorCode::RateLimited,
        message: "slow down".into(),
        request_id: "r3".into(),
        action: Some("sendMessage".into()),
        client_msg_id: Some("m9".into()),
        room: Some(RoomId::parse("lobby").unwrap()),
        retry_after_ms: Some(200),
    };
    let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"type":"error","code":"rate_limited","message":"slow down","requestId":"r3","action":"sendMessage","clientMsgId":"m9","room":"lobby","retryAfterMs":200})
    );
    let mut m = ChatMessage::plain(
        RoomId::parse("r").unwrap(),
        3,
        UserRef {
            id: "u1".into(),
            name: "alice".into(),
        },
        MessageBody::parse("hi").unwrap(),
        ClientMsgId::parse("m1").unwrap(),
        OffsetDateTime::UNIX_EPOCH,
    );
    m.id = uuid::Uuid::nil();
    let v: serde_json::Value =
        serde_json::from_str(&ServerFrame::Message(m.clone()).to_json()).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["clientMsgId"], "m1");
    assert_eq!(v["sender"]["name"], "alice");
    assert_eq!(v["sentAt"], "1970-01-01T00:00:00Z");
    let v: serde_json::Value = serde_json::from_str(&ServerFrame::ack(&m).to_json()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"type":"ack","room":"r","clientMsgId":"m1","id":uuid::Uuid::nil(),"seq":3,"sentAt":"1970-01-01T00:00:00Z"})
    );
}
