//! The authorizer (query and subprotocol tokens, refusals), `$connect` and `$default`.

use super::*;

// --- authorizer -------------------------------------------------------------------------------

#[tokio::test]
async fn authorizer_allows_query_and_subprotocol_tokens() {
    let issuer = JwtIssuer::hs256(&jwt_config()).expect("issuer");
    let verifier = TokenVerifier::new(JwtVerifier::hs256(&jwt_config()).expect("verifier"), None);
    let token = issuer
        .issue("u-alice", "alice", time::Duration::minutes(15))
        .expect("token");
    for sample in ["authorizer-query-token", "authorizer-subprotocol"] {
        let req = events::authorizer(sample, Some(&token));
        let resp = authorizer::handle(&verifier, &req).await.expect(sample);
        let v = serde_json::to_value(&resp).expect("serialise");
        assert_eq!(v["principalId"], "u-alice", "{sample}");
        let st = &v["policyDocument"]["Statement"][0];
        assert_eq!(st["Effect"], "Allow");
        assert_eq!(st["Action"], json!(["execute-api:Invoke"]));
        assert_eq!(
            st["Resource"],
            json!([req.method_arn.clone().expect("arn")])
        );
        assert_eq!(v["context"]["userId"], "u-alice");
        assert_eq!(v["context"]["userName"], "alice");
        assert!(v["context"]["tokenExp"].as_i64().expect("tokenExp") > 0);
    }
}

#[tokio::test]
async fn authorizer_refuses_bad_tokens() {
    let cfg = jwt_config();
    let issuer = JwtIssuer::hs256(&cfg).expect("issuer");
    let verifier = TokenVerifier::new(JwtVerifier::hs256(&cfg).expect("verifier"), None);
    let base = issuer.claims("u-alice", "alice", time::Duration::minutes(15));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let forger = JwtIssuer::hs256(&JwtConfig {
        secret: b"a-different-secret-that-is-long-enough!!".to_vec(),
        ..cfg.clone()
    })
    .expect("forger");
    let unauthorized = [
        ("missing", None),
        ("garbage", Some("not-a-jwt".to_owned())),
        (
            "expired",
            Some(
                issuer
                    .sign(&Claims {
                        exp: now - 300,
                        ..base.clone()
                    })
                    .expect("sign"),
            ),
        ),
        ("forged", Some(forger.sign(&base).expect("sign"))),
        (
            "alg none",
            Some(format!(
                "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
                issuer
                    .sign(&base)
                    .expect("sign")
                    .split('.')
                    .nth(1)
                    .expect("payload")
            )),
        ),
    ];
    for sample in ["authorizer-query-token", "authorizer-subprotocol"] {
        for (case, token) in &unauthorized {
            let req = events::authorizer(sample, token.as_deref());
            let err = authorizer::handle(&verifier, &req).await.expect_err(case);
            let diag = lambda_runtime_diagnostic(err);
            assert_eq!(
                diag, "Unauthorized",
                "{sample}/{case}: API Gateway needs this exact text for a 401"
            );
        }
        // Correctly signed, but for another API: a Deny policy (403).
        let foreign = issuer
            .sign(&Claims {
                aud: "another-api".into(),
                ..base.clone()
            })
            .expect("sign");
        let resp = authorizer::handle(&verifier, &events::authorizer(sample, Some(&foreign)))
            .await
            .expect("deny is a policy");
        let v = serde_json::to_value(&resp).expect("serialise");
        assert_eq!(v["policyDocument"]["Statement"][0]["Effect"], "Deny");
        assert!(
            v["context"].get("userId").is_none(),
            "a denied caller gets no identity"
        );
    }
}

/// What the Lambda runtime reports as `errorMessage` for the authorizer's error.
fn lambda_runtime_diagnostic(e: authorizer::AuthorizerError) -> String {
    lambda_runtime::Diagnostic::from(e).error_message
}

// --- $connect / $default ----------------------------------------------------------------------

#[tokio::test]
async fn connect_stores_the_connection_and_echoes_the_subprotocol() {
    let store = Arc::new(MemoryConnectionStore::new());
    let deps = connect::ConnectDeps {
        connections: store.clone(),
    };

    let plain = Ws::sample("connect").build();
    let resp = connect::handle(&deps, &plain).await;
    assert_eq!(resp.status_code, 200);
    assert!(
        resp.headers.get("sec-websocket-protocol").is_none(),
        "nothing offered, nothing echoed"
    );
    let id = plain.request_context.connection_id.clone().expect("id");
    let stored = store
        .get_connection(&id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(
        (stored.user.id.as_str(), stored.user.name.as_str()),
        ("u-alice", "alice")
    );

    let sub = Ws::sample("connect-subprotocol")
        .connection("Sub0000000A=")
        .build();
    let resp = connect::handle(&deps, &sub).await;
    assert_eq!(resp.status_code, 200);
    assert_eq!(
        resp.headers
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().ok()),
        Some(Some("hubbub.v1"))
    );

    // Invoked without an authorizer context (not through API Gateway): refused, nothing stored.
    let bare = Ws::sample("connect")
        .connection("Bare000000A=")
        .with(|v| v["requestContext"]["authorizer"] = json!(null))
        .build();
    assert_eq!(connect::handle(&deps, &bare).await.status_code, 401);
    assert!(
        store
            .get_connection("Bare000000A=")
            .await
            .expect("get")
            .is_none()
    );
}

#[tokio::test]
async fn default_route_answers_ping_and_explains_everything_else() {
    let rec = Recorder::start().await;
    let dd = default_deps(&rec);
    let resp = default_route::handle(&dd, &Ws::sample("ping").build()).await;
    assert_eq!(body_json(&resp), json!({"type":"pong"}));

    let resp = default_route::handle(
        &dd,
        &Ws::sample("unknown-action").request_id("req-7").build(),
    )
    .await;
    let v = body_json(&resp);
    assert_error(&v, "bad_request");
    assert_eq!(v["requestId"], "req-7");
    assert!(
        v.get("action").is_none(),
        "an unknown action is not echoed back"
    );

    for raw in [
        "not json at all",
        "[]",
        r#"{"action":42}"#,
        r#"{"room":"general"}"#,
        "",
    ] {
        let resp = default_route::handle(&dd, &Ws::sample("ping").body(raw).build()).await;
        assert_error(&body_json(&resp), "bad_request");
    }
}
