//! Tokens: external issuers (a JWKS served over real HTTP, cached and refetched) and the
//! attacks refused both by the HTTP API and at the WebSocket authorizer.

use super::*;

/// A token an attacker might try, and whether the authorizer answers Deny (403) rather than
/// Unauthorized (401).
struct Attack {
    name: &'static str,
    token: String,
    deny: bool,
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn attacks() -> Vec<Attack> {
    let issuer = JwtIssuer::hs256(&jwt_config()).expect("issuer");
    let base = issuer.claims("u-alice", "alice", time::Duration::minutes(15));
    let now = now();
    let own = |c: Claims| issuer.sign(&c).expect("sign");
    let good = own(base.clone());
    let parts: Vec<&str> = good.split('.').collect();
    let tampered_payload = b64(serde_json::to_string(&Claims {
        sub: "u-admin".into(),
        ..base.clone()
    })
    .expect("json")
    .as_bytes());
    let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    // HS256 "signed" with the issuer's RSA public key: the classic algorithm confusion.
    let confused = {
        hubbub_core::auth::crypto::install();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        jsonwebtoken::encode(
            &header,
            &external_claims(),
            &EncodingKey::from_secret(&fixture("rsa-public.pem")).expect("hmac key"),
        )
        .expect("sign")
    };
    let mut ext_expired = external_claims();
    ext_expired["exp"] = json!(now - 300);
    let mut ext_wrong_aud = external_claims();
    ext_wrong_aud["aud"] = json!("someone-else");
    let mut ext_wrong_iss = external_claims();
    ext_wrong_iss["iss"] = json!("https://evil.example.test/");
    let ext_tampered = {
        let t = sign_external(
            Algorithm::RS256,
            "rsa-1",
            "rsa-private.pem",
            &external_claims(),
        );
        let p: Vec<&str> = t.split('.').collect();
        let mut c = external_claims();
        c["sub"] = json!("ext|admin");
        format!("{}.{}.{}", p[0], b64(c.to_string().as_bytes()), p[2])
    };
    vec![
        Attack {
            name: "alg none, no signature",
            token: format!("{none_header}.{}.", parts[1]),
            deny: false,
        },
        Attack {
            name: "alg none, stolen signature",
            token: format!("{none_header}.{}.{}", parts[1], parts[2]),
            deny: false,
        },
        Attack {
            name: "HS256 signed with the RS public key",
            token: confused,
            deny: false,
        },
        Attack {
            name: "expired",
            token: own(Claims {
                exp: now - 300,
                ..base.clone()
            }),
            deny: false,
        },
        Attack {
            name: "not yet valid",
            token: own(Claims {
                nbf: now + 600,
                ..base.clone()
            }),
            deny: false,
        },
        Attack {
            name: "wrong iss",
            token: own(Claims {
                iss: "someone-else".into(),
                ..base.clone()
            }),
            deny: true,
        },
        Attack {
            name: "wrong aud",
            token: own(Claims {
                aud: "another-api".into(),
                ..base.clone()
            }),
            deny: true,
        },
        Attack {
            name: "tampered payload",
            token: format!("{}.{tampered_payload}.{}", parts[0], parts[2]),
            deny: false,
        },
        Attack {
            name: "unknown kid",
            token: sign_external(
                Algorithm::RS256,
                "rsa-404",
                "rsa-rotated-private.pem",
                &external_claims(),
            ),
            deny: false,
        },
        Attack {
            name: "known kid, other key",
            token: sign_external(
                Algorithm::RS256,
                "rsa-1",
                "rsa-rotated-private.pem",
                &external_claims(),
            ),
            deny: false,
        },
        Attack {
            name: "RS key named for an ES256 token",
            token: sign_external(
                Algorithm::ES256,
                "rsa-1",
                "ec-private.pem",
                &external_claims(),
            ),
            deny: false,
        },
        Attack {
            name: "external, expired",
            token: sign_external(Algorithm::RS256, "rsa-1", "rsa-private.pem", &ext_expired),
            deny: false,
        },
        Attack {
            name: "external, wrong aud",
            token: sign_external(Algorithm::ES256, "ec-1", "ec-private.pem", &ext_wrong_aud),
            deny: true,
        },
        Attack {
            name: "external, wrong iss",
            token: sign_external(Algorithm::RS256, "rsa-1", "rsa-private.pem", &ext_wrong_iss),
            deny: true,
        },
        Attack {
            name: "external, tampered payload",
            token: ext_tampered,
            deny: false,
        },
    ]
}

#[tokio::test]
async fn jwt_attacks_are_refused_on_http_and_at_the_authorizer() {
    let jwks = JwksServer::start().await;
    let verifier = Arc::new(jwks.verifier(Duration::from_secs(3600)));
    let mut deps = memory_deps();
    deps.verifier = verifier.clone();

    // The real thing passes both doors: own HS256, external RS256 and ES256.
    let own = JwtIssuer::hs256(&jwt_config())
        .expect("issuer")
        .issue("u-alice", "alice", time::Duration::minutes(5))
        .expect("token");
    for (name, token, user) in [
        ("own HS256", own, "u-alice"),
        (
            "external RS256",
            sign_external(
                Algorithm::RS256,
                "rsa-1",
                "rsa-private.pem",
                &external_claims(),
            ),
            "ext:ext|4711",
        ),
        (
            "external ES256",
            sign_external(
                Algorithm::ES256,
                "ec-1",
                "ec-private.pem",
                &external_claims(),
            ),
            "ext:ext|4711",
        ),
    ] {
        let a = call(&deps, get("/rooms", &token)).await;
        assert_eq!(a.status, 200, "{name}: {a:?}");
        for sample in ["authorizer-query-token", "authorizer-subprotocol"] {
            let resp = authorizer::handle(&verifier, &events::authorizer(sample, Some(&token)))
                .await
                .unwrap_or_else(|e| panic!("{name}/{sample}: {e}"));
            let v = serde_json::to_value(&resp).expect("policy");
            assert_eq!(
                v["policyDocument"]["Statement"][0]["Effect"], "Allow",
                "{name}"
            );
            assert_eq!(v["context"]["userId"], user, "{name}");
        }
    }
    // External users can create and use rooms like anyone.
    let ext = sign_external(
        Algorithm::ES256,
        "ec-1",
        "ec-private.pem",
        &external_claims(),
    );
    let made = call(
        &deps,
        post("/rooms", &ext, json!({"id": "ext-room", "name": "Ext"})),
    )
    .await;
    assert_eq!(made.status, 201, "{made:?}");

    for attack in attacks() {
        let a = call(&deps, get("/rooms", &attack.token)).await;
        a.assert_error(401, "unauthorized");
        assert!(
            !a.message().contains("signature") && !a.message().contains("kid"),
            "{}: the reason stays in the log: {a:?}",
            attack.name
        );
        for sample in ["authorizer-query-token", "authorizer-subprotocol"] {
            let req = events::authorizer(sample, Some(&attack.token));
            match authorizer::handle(&verifier, &req).await {
                Err(e) => {
                    assert!(!attack.deny, "{}/{sample}: expected Deny", attack.name);
                    assert_eq!(e.to_string(), "Unauthorized", "{}", attack.name);
                }
                Ok(resp) => {
                    assert!(attack.deny, "{}/{sample}: allowed!", attack.name);
                    let v = serde_json::to_value(&resp).expect("policy");
                    assert_eq!(
                        v["policyDocument"]["Statement"][0]["Effect"], "Deny",
                        "{}",
                        attack.name
                    );
                }
            }
        }
    }
    // All of that took one key-set fetch: the unknown kid did not refetch within the hour.
    assert_eq!(jwks.fetches(), 1);

    // Refresh-token reuse (the refresh token is an HTTP-only credential).
    let s = register(&deps, "victim").await;
    let first = refresh(&deps, &s.refresh).await;
    assert_eq!(first.status, 200);
    let next = session_of(&first);
    refresh(&deps, &s.refresh)
        .await
        .assert_error(401, "unauthorized");
    refresh(&deps, &next.refresh)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn the_key_set_is_cached_and_refetched_on_an_unknown_kid() {
    let jwks = JwksServer::start().await;
    let claims = external_claims();
    let old_key = sign_external(Algorithm::RS256, "rsa-1", "rsa-private.pem", &claims);
    let new_key = sign_external(
        Algorithm::RS256,
        "rsa-2",
        "rsa-rotated-private.pem",
        &claims,
    );

    // Interval 0: an unknown kid refetches at once, so a rotation is picked up.
    let eager = jwks.verifier(Duration::ZERO);
    assert!(eager.verify(&old_key).await.is_ok());
    assert!(eager.verify(&old_key).await.is_ok());
    assert_eq!(jwks.fetches(), 1, "cached");
    jwks.publish(fixture("jwks-rotated.json"));
    let id = eager.verify(&new_key).await.expect("rotated key");
    assert_eq!(id.user_id, "ext:ext|4711");
    assert_eq!(id.user_name, "Erin@ext");
    assert_eq!(jwks.fetches(), 2, "refetched for the new kid");
    assert!(eager.verify(&old_key).await.is_err(), "the old key is gone");

    // A long interval: made-up kids cannot make us hammer the issuer.
    let fetches = jwks.fetches();
    let patient = jwks.verifier(Duration::from_secs(3600));
    assert!(patient.verify(&new_key).await.is_ok());
    for i in 0..5 {
        let junk = sign_external(
            Algorithm::RS256,
            &format!("junk-{i}"),
            "rsa-rotated-private.pem",
            &claims,
        );
        assert!(patient.verify(&junk).await.is_err());
    }
    assert_eq!(jwks.fetches(), fetches + 1);

    // The issuer is down: its tokens get 503 on HTTP (retry later), Unauthorized at the
    // authorizer; hubbub's own tokens are unaffected.
    jwks.fail_with(500);
    let down = Arc::new(jwks.verifier(Duration::ZERO));
    let mut deps = memory_deps();
    deps.verifier = down.clone();
    call(&deps, get("/rooms", &new_key))
        .await
        .assert_error(503, "unavailable");
    let req = events::authorizer("authorizer-query-token", Some(&new_key));
    assert!(authorizer::handle(&down, &req).await.is_err());
    let own = JwtIssuer::hs256(&jwt_config())
        .expect("issuer")
        .issue("u-alice", "alice", time::Duration::minutes(5))
        .expect("token");
    assert_eq!(call(&deps, get("/rooms", &own)).await.status, 200);
}
