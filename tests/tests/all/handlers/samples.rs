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
    let sent = send_message::handle(&deps, &run("send-message")).await;
    assert!(sent.body.is_none(), "the ack is posted at commit");
    let sample = run("send-message");
    let sender = sample
        .request_context
        .connection_id
        .as_deref()
        .expect("sample connection id");
    assert_eq!(of_type(&rec.frames_to(sender), "ack").len(), 1);
    let h = body_json(&rooms::handle(&deps, &run("history")).await);
    assert_eq!(
        (h["type"].as_str(), h["messages"].as_array().map(Vec::len)),
        (Some("history"), Some(1))
    );
    assert_eq!(
        body_json(&default_route::handle(&run("ping")).await)["type"],
        "pong"
    );
    assert_eq!(
        body_json(&default_route::handle(&run("unknown-action")).await)["code"],
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
    // migrate-create.json is exercised by the deploy tests.
    assert_eq!(
        files.len(),
        22,
        "a new sample event needs a line in this test: {files:?}"
    );
}
