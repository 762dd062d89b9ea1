//! API Gateway WebSocket proxy events ([`hubbub_core::ws`]): the JSON Lambda hands every
//! `$connect`, `$disconnect` and message route, read into what the handlers use.
//!
//! Properties: no panic reading the caller ([`RouteContext::from_event`],
//! [`RouteContext::connection`], [`token_exp`]) or the frame ([`parse_frame`]); a frame that
//! parses selects its own route; a refused frame's error frame is `type: error` and its
//! `message` echoes nothing of the frame.

use hubbub_core::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use hubbub_core::aws_lambda_events::encodings::Body;
use hubbub_core::routes::RouteKey;
use hubbub_core::ws::{RouteContext, body_text, error_reply, parse_frame, token_exp};
use serde_json::Value;

use crate::echo;

/// The fuzz body: `data` is the event JSON.
pub fn run(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ev) = serde_json::from_str::<ApiGatewayWebsocketProxyRequest>(raw) else {
        return;
    };
    check(raw, &ev);
}

/// The `message` of the error frame a refused frame gets, if the event's frame is refused.
fn error_message(ev: &ApiGatewayWebsocketProxyRequest) -> Option<String> {
    let e = parse_frame(ev).err()?;
    let reply = error_reply(ev, &e);
    let body = match &reply.body {
        Some(Body::Text(t)) => t.clone(),
        other => panic!("an error reply carries a text frame, not {other:?}"),
    };
    let frame: Value = serde_json::from_str(&body).expect("an error frame is JSON");
    assert_eq!(frame["type"], "error");
    let message = frame["message"]
        .as_str()
        .expect("an error frame has a message");
    Some(message.to_owned())
}

/// The properties for one event, read from `raw`.
pub fn check(raw: &str, ev: &ApiGatewayWebsocketProxyRequest) {
    for endpoint_override in [None, Some("http://127.0.0.1:3001/local")] {
        if let Ok(ctx) = RouteContext::from_event(ev, endpoint_override) {
            let conn = ctx.connection();
            assert_eq!(conn.id, ctx.connection_id);
        }
    }
    let _ = token_exp(ev);
    let text = body_text(ev);
    match parse_frame(ev) {
        Ok(frame) => {
            let text = text.expect("a parsed frame came from a text body");
            assert_eq!(frame.route_key(), RouteKey::for_body(text));
        }
        Err(_) => {
            let mut inputs = text.map(echo::candidates).unwrap_or_default();
            if let Some(raw) = ev.body.as_deref() {
                echo::push(&mut inputs, raw);
            }
            let message_of = |raw: &str| {
                serde_json::from_str::<ApiGatewayWebsocketProxyRequest>(raw)
                    .ok()
                    .and_then(|ev| error_message(&ev))
                    .unwrap_or_default()
            };
            echo::assert_no_echo(raw, &inputs, message_of, "an error frame");
        }
    }
}
