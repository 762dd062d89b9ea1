//! Every captured HTTP API sample event gets a sensible answer.

use super::*;

#[tokio::test]
async fn every_http_sample_event_gets_a_sensible_answer() {
    let deps = memory_deps();
    let reg = call(&deps, Http::sample("http-register")).await;
    assert_eq!(reg.status, 201, "{reg:?}");
    assert_eq!(reg.body["user"]["name"], "alice");
    let login = call(&deps, Http::sample("http-login")).await;
    assert_eq!(login.status, 200, "{login:?}");
    let s = session_of(&login);
    let swap = |name: &str| {
        Http::sample(name).with(|v| {
            if v["headers"].get("authorization").is_some() {
                v["headers"]["authorization"] = json!(format!("Bearer {}", s.access));
            }
        })
    };
    let fresh = call(
        &deps,
        swap("http-refresh").json(json!({"refreshToken": s.refresh})),
    )
    .await;
    assert_eq!(fresh.status, 200, "{fresh:?}");
    let s2 = session_of(&fresh);
    assert_eq!(call(&deps, swap("http-create-room")).await.status, 201);
    let listed = call(&deps, swap("http-list-rooms")).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["rooms"][0]["id"], "secret-plans");
    assert_eq!(call(&deps, swap("http-add-member")).await.status, 204);
    let members = call(&deps, swap("http-list-members")).await;
    assert_eq!(members.status, 200, "{members:?}");
    assert_eq!(members.body["members"].as_array().map(Vec::len), Some(2));
    let read = call(&deps, swap("http-mark-read")).await;
    assert_eq!(
        (read.status, &read.body),
        (
            200,
            &json!({"room": "secret-plans", "lastRead": 0, "unread": 0})
        )
    );
    call(&deps, swap("http-open-direct"))
        .await
        .assert_error(404, "not_found");
    register(&deps, "bob").await;
    let dm = call(&deps, swap("http-open-direct")).await;
    assert_eq!((dm.status, &dm.body["with"]["name"]), (201, &json!("bob")));
    assert_eq!(call(&deps, swap("http-remove-member")).await.status, 204);
    call(&deps, swap("http-remove-member"))
        .await
        .assert_error(404, "not_found");
    let msgs = call(&deps, swap("http-messages")).await;
    assert_eq!(
        (msgs.status, &msgs.body),
        (200, &json!({"messages": [], "hasMore": false}))
    );
    let health = call(&deps, Http::sample("http-health")).await;
    assert_eq!(
        (health.status, &health.body),
        (200, &json!({"status": "ok"}))
    );
    let out = call(
        &deps,
        swap("http-logout").json(json!({"refreshToken": s2.refresh})),
    )
    .await;
    assert_eq!((out.status, &out.body), (204, &Value::Null));
    // The samples' placeholder tokens are refused as they are.
    call(&deps, Http::sample("http-list-rooms"))
        .await
        .assert_error(401, "unauthorized");
    call(&deps, Http::sample("http-refresh"))
        .await
        .assert_error(401, "unauthorized");

    let mut files: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../events"))
            .expect("events dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("http-") && n.ends_with(".json"))
            .collect();
    files.sort();
    assert_eq!(
        files.len(),
        13,
        "a new HTTP sample event needs a line in this test: {files:?}"
    );
}
