//! The events hubbub-local builds for the functions have the shape of the captured samples
//! in `events/` (WebSocket and HTTP API).

use hubbub_local::events::{self, ConnMeta};
use serde_json::{Map, Value, json};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

/// Top-level, `requestContext`, `identity` and `authorizer` keys are those of the sample.
fn assert_shape(built: &Value, sample: &str) {
    let want = hubbub_tests::events::raw(sample);
    assert_eq!(keys(built), keys(&want), "{sample}: top level");
    let (b, w) = (&built["requestContext"], &want["requestContext"]);
    assert_eq!(keys(b), keys(w), "{sample}: requestContext");
    assert_eq!(
        keys(&b["identity"]),
        keys(&w["identity"]),
        "{sample}: identity"
    );
    if w.get("authorizer").is_some() {
        assert_eq!(
            keys(&b["authorizer"]),
            keys(&w["authorizer"]),
            "{sample}: authorizer"
        );
    }
}

#[test]
fn local_events_have_the_shape_of_the_samples() {
    let sample = hubbub_tests::events::raw("connect");
    let rc = &sample["requestContext"];
    let authorizer = rc["authorizer"].as_object().expect("authorizer").clone();
    let meta = ConnMeta {
        connection_id: hubbub_local::ids::new_id(),
        connected_at_ms: rc["connectedAt"].as_i64().expect("connectedAt"),
        source_ip: "203.0.113.42".into(),
        user_agent: Some("wscat".into()),
        domain_name: "127.0.0.1:3001".into(),
        stage: "local".into(),
        api_id: "hubbublcl1".into(),
        authorizer: Map::new(),
    };
    let mut headers = axum::http::HeaderMap::new();
    for (k, v) in [
        ("host", "127.0.0.1:3001"),
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "x3JJHMbDL1EzLkh9GBhXDw=="),
        ("sec-websocket-version", "13"),
        ("user-agent", "wscat"),
    ] {
        headers.insert(k, v.parse().expect("header"));
    }
    let arn = events::method_arn("eu-west-1", "123456789012", "hubbublcl1", "local");
    let now = rc["requestTimeEpoch"].as_i64().expect("requestTimeEpoch");
    let auth = events::authorizer_request_json(&meta, &arn, &headers, Some("token=abc"), "r1", now);
    assert_shape(&auth, "authorizer-query-token");
    assert_eq!(
        auth["headers"]["upgrade"], "websocket",
        "the authorizer sees hop headers"
    );
    assert_eq!(
        auth["multiValueQueryStringParameters"]["token"],
        json!(["abc"])
    );
    let bare = events::authorizer_request_json(&meta, &arn, &headers, None, "r1", now);
    assert_eq!(bare["queryStringParameters"], json!({}));

    let meta = ConnMeta { authorizer, ..meta };
    let connect = events::connect_json(&meta, &headers, Some("token=abc"), "r1", now);
    assert_shape(&connect, "connect");
    assert!(
        connect["headers"].get("upgrade").is_none(),
        "no hop headers on $connect"
    );
    assert_eq!(connect["requestContext"]["requestTime"], rc["requestTime"]);
    assert_shape(
        &events::connect_json(&meta, &headers, None, "r1", now),
        "connect-subprotocol",
    );
    let body = r#"{"action":"sendMessage"}"#;
    assert_shape(
        &events::message_json(&meta, "sendMessage", body, false, "r2", "m1", now),
        "send-message",
    );
    let disconnect = events::disconnect_json(&meta, 1001, "Going away", "r3", now);
    assert_shape(&disconnect, "disconnect");
    assert_eq!(
        keys(&disconnect["headers"]),
        keys(&hubbub_tests::events::raw("disconnect")["headers"])
    );

    // The typed events read back as the handlers read them.
    let typed = events::message(&meta, "sendMessage", body, false, "r2", "m1", now).expect("typed");
    let ctx = hubbub_core::ws::RouteContext::from_event(&typed, None).expect("route context");
    assert_eq!(
        (ctx.user.id.as_str(), ctx.user.name.as_str()),
        ("u-alice", "alice")
    );
    assert_eq!(
        hubbub_core::ws::token_exp(&typed),
        rc["authorizer"]["tokenExp"].as_i64()
    );

    // Ids as API Gateway's: 16 base64 characters ending in `=`.
    let id = hubbub_local::ids::new_id();
    assert_eq!(id.len(), 16);
    assert!(id.ends_with('='));
    assert!(id[..15].chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
}

#[test]
fn local_http_events_have_the_shape_of_the_samples() {
    use hubbub_local::events::{HttpRequestMeta, http_api, http_api_json};
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;

    let mut headers = axum::http::HeaderMap::new();
    for (k, v) in [
        ("host", "127.0.0.1:3001"),
        ("accept", "application/json"),
        ("content-type", "application/json"),
        ("content-length", "52"),
        ("user-agent", "curl/8.5.0"),
        ("connection", "keep-alive"),
    ] {
        headers.insert(k, v.parse().expect("header"));
    }
    let body = br#"{"username":"alice","password":"correct horse battery"}"#;
    let matched = hubbub_local::http::match_route("POST", "/auth/login", "local").expect("route");
    assert_eq!(matched.route_key, "POST /auth/login");
    assert_eq!(matched.stage, "$default");
    let meta = HttpRequestMeta {
        method: "POST",
        raw_path: "/auth/login",
        raw_query: None,
        protocol: "HTTP/1.1",
        source_ip: "203.0.113.42",
        port: 3001,
        domain_name: "127.0.0.1:3001",
        stage: &matched.stage,
        route_key: &matched.route_key,
        path_parameters: &matched.path_parameters,
        request_id: "XyZ1bHiDjoEEKcR=",
        api_id: "hubbublcl1",
        account_id: "000000000000",
        now_ms: 1_768_469_390_000,
    };
    let login = http_api_json(&meta, &headers, body);
    let sample = hubbub_tests::events::raw("http-login");
    assert_eq!(keys(&login), keys(&sample), "top level");
    assert_eq!(
        keys(&login["requestContext"]),
        keys(&sample["requestContext"])
    );
    assert_eq!(
        keys(&login["requestContext"]["http"]),
        keys(&sample["requestContext"]["http"])
    );
    assert_eq!(keys(&login["headers"]), keys(&sample["headers"]));
    assert_eq!(
        login["requestContext"]["time"],
        "15/Jan/2026:09:29:50 +0000"
    );

    // A named stage, path parameters and a query string.
    let matched = hubbub_local::http::match_route("GET", "/local/rooms/general/messages", "local")
        .expect("route");
    assert_eq!(matched.route_key, "GET /rooms/{room}/messages");
    assert_eq!(matched.stage, "local");
    let meta = HttpRequestMeta {
        method: "GET",
        raw_path: "/local/rooms/general/messages",
        raw_query: Some("after=0&limit=20"),
        stage: &matched.stage,
        route_key: &matched.route_key,
        path_parameters: &matched.path_parameters,
        ..meta
    };
    let mut get_headers = headers.clone();
    get_headers.remove("content-type");
    get_headers.remove("content-length");
    let messages = http_api_json(&meta, &get_headers, b"");
    let sample = hubbub_tests::events::raw("http-messages");
    let mut want = keys(&sample);
    want.retain(|k| k != "body");
    assert_eq!(keys(&messages), want, "top level");
    assert_eq!(messages["pathParameters"], json!({"room": "general"}));
    assert_eq!(
        messages["queryStringParameters"],
        json!({"after": "0", "limit": "20"})
    );

    // lambda_http turns it into the request the handler reads.
    let req = http_api(&meta, &get_headers, b"").expect("request");
    assert_eq!(req.uri().path(), "/local/rooms/general/messages");
    assert_eq!(req.uri().query(), Some("after=0&limit=20"));
    let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
        panic!("not an HTTP API request context")
    };
    assert_eq!(ctx.request_id.as_deref(), Some("XyZ1bHiDjoEEKcR="));
    assert_eq!(ctx.http.source_ip.as_deref(), Some("203.0.113.42"));
    assert_eq!(ctx.stage.as_deref(), Some("local"));
    assert_eq!(ctx.route_key.as_deref(), Some("GET /rooms/{room}/messages"));
    assert!(req.headers().get("connection").is_none(), "no hop headers");
}
