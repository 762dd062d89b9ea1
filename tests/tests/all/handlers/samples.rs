//! Every sample event of `events/`, replayed through its function.

use super::*;

#[tokio::test]
async fn every_sample_event_gets_a_sensible_answer() {
    let (rec, deps) = memory_deps().await;
    let verifier = TokenVerifier::new(JwtVerifier::hs256(&jwt_config()).expect("verifier"), None);
    let token = JwtIssuer::hs256(&jwt_config())
        .expect("issuer")
        .issue("u-alice", "alice", time::Duration::minutes(5))
        .expect("token");
    for sample in ["authorizer-query-token", "authorizer-subprotocol"] {
        authorizer::handle(&verifier, &events::authorizer(sample, Some(&token)))
            .await
            .expect(sample);
    }
    let conn_deps = connect::ConnectDeps {
        connections: deps.live.connections.clone(),
    };
    assert_eq!(
        connect::handle(&conn_deps, &Ws::sample("connect").build())
            .await
            .status_code,
        200
    );
    assert_eq!(
        connect::handle(&conn_deps, &Ws::sample("connect-subprotocol").build())
            .await
            .status_code,
        200
    );
    let run = |name: &str| Ws::sample(name).build();
    assert_eq!(
        body_json(&rooms::handle(&deps, &run("join-room")).await)["type"],
        "joined"
    );
    assert!(rooms::handle(&deps, &run("typing")).await.body.is_none());
    let members = body_json(&rooms::handle(&deps, &run("members")).await);
    assert_eq!(members["type"], "members");
    assert_eq!(members["members"][0]["name"], "alice");
    let sent = send_message::handle(&deps, &run("send-message")).await;
    assert!(sent.body.is_none(), "the ack is posted at commit");
    let sample = run("send-message");
    let sender = sample
        .request_context
        .connection_id
        .as_deref()
        .expect("sample connection id");
    assert_eq!(of_type(&rec.frames_to(sender), "ack").len(), 1);
    let last_ack_kind = |rec: &Recorder| {
        of_type(&rec.frames_to(sender), "ack")
            .last()
            .map(|a| a["kind"].clone())
    };
    assert!(
        send_message::handle(&deps, &run("edit-message"))
            .await
            .body
            .is_none()
    );
    assert_eq!(last_ack_kind(&rec), Some(json!("edit")));
    let reacted = body_json(&send_message::handle(&deps, &run("react")).await);
    assert_eq!(
        (reacted["type"].as_str(), reacted["count"].as_i64()),
        (Some("reaction"), Some(1))
    );
    assert!(
        send_message::handle(&deps, &run("delete-message"))
            .await
            .body
            .is_none()
    );
    assert_eq!(last_ack_kind(&rec), Some(json!("delete")));
    let read = body_json(&rooms::handle(&deps, &run("mark-read")).await);
    assert_eq!(
        read,
        serde_json::json!({"type": "read", "room": "general", "lastRead": 1, "unread": 2})
    );
    let h = body_json(&rooms::handle(&deps, &run("history")).await);
    assert_eq!(
        (h["type"].as_str(), h["messages"].as_array().map(Vec::len)),
        (Some("history"), Some(3)),
        "the message, its edit and its delete"
    );
    assert_eq!(
        body_json(&default_route::handle(&default_deps(&rec), &run("ping")).await)["type"],
        "pong"
    );
    assert_eq!(
        body_json(&default_route::handle(&default_deps(&rec), &run("unknown-action")).await)["code"],
        "bad_request"
    );
    assert_eq!(
        body_json(&rooms::handle(&deps, &run("leave-room")).await)["type"],
        "left"
    );
    let dis = run("disconnect");
    assert_eq!(dis.request_context.disconnect_status_code, Some(1001));
    assert_eq!(disconnect::handle(&deps.live, &dis).await.status_code, 200);
    assert!(
        deps.live
            .connections
            .get_connection("L0SM9cOFvHcCIhw=")
            .await
            .expect("get")
            .is_none()
    );
    drop(rec);

    // Every file in events/ is exercised: the WebSocket ones above, the HTTP API ones
    // (`http-*.json`) in http_api::every_http_sample_event_gets_a_sensible_answer.
    let mut files: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../events"))
            .expect("events dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
    files.sort();
    // migrate-create.json is exercised by the deploy tests; maintenance-schedule.json is the
    // schedule's event, whose content the maintenance function ignores.
    assert_eq!(
        files.len(),
        32,
        "a new sample event needs a line in this test: {files:?}"
    );
}

/// The value `cargo lambda watch` gives `var`: the root Cargo.toml's
/// `[workspace.metadata.lambda.env]` (read as text: one `NAME = "value"` a line).
fn local_invocation_env(var: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let manifest = std::fs::read_to_string(&path).expect("root Cargo.toml");
    let section = manifest
        .split("[workspace.metadata.lambda.env]")
        .nth(1)
        .expect("a [workspace.metadata.lambda.env] section");
    section
        .lines()
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == var)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("{var} missing from [workspace.metadata.lambda.env]"))
}

/// A local invoke of the authorizer with a sample event, as events/README.md tells it, is
/// allowed: the samples' tokens are signed with the local invocation secret and live for years.
#[tokio::test]
async fn sample_tokens_verify_against_the_local_invocation_secret() {
    let secret = local_invocation_env("HUBBUB_JWT_SECRET");
    let lookup = |var: &str| (var == "HUBBUB_JWT_SECRET").then(|| secret.clone());
    let verifier = TokenVerifier::new(
        JwtVerifier::hs256(&JwtConfig::from_lookup(&lookup).expect("config")).expect("verifier"),
        None,
    );
    for sample in ["authorizer-query-token", "authorizer-subprotocol"] {
        let event = serde_json::from_value(events::raw(sample)).expect("authorizer event");
        let answer = authorizer::handle(&verifier, &event).await.expect(sample);
        let policy = serde_json::to_value(&answer).expect("policy");
        assert_eq!(
            policy["policyDocument"]["Statement"][0]["Effect"], "Allow",
            "{sample}: {policy}"
        );
        let exp = policy["context"]["tokenExp"].as_i64().expect("tokenExp");
        let in_ten_years = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
        assert!(
            exp > in_ten_years.unix_timestamp(),
            "{sample} expires too soon"
        );
    }
    for sample in [
        "http-create-room",
        "http-list-rooms",
        "http-add-member",
        "http-messages",
    ] {
        let header = events::raw(sample)["headers"]["authorization"]
            .as_str()
            .expect("authorization header")
            .to_owned();
        let token = header.strip_prefix("Bearer ").expect("bearer");
        verifier.verify(token).await.expect(sample);
    }
}
