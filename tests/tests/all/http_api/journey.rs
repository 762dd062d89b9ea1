//! The whole journey (register, log in, connect, refresh), and every route matching its
//! path template.

use super::*;

async fn full_flow(deps: &HttpDeps) {
    let verifier = deps.verifier.clone();
    let reg = register(deps, "alice").await;
    let logged_in = login(deps, "alice", PASSWORD, "203.0.113.42").await;
    assert_eq!(logged_in.status, 200, "{logged_in:?}");
    let s = session_of(&logged_in);
    assert_eq!(s.user_id, reg.user_id);

    // The access token opens the WebSocket door.
    let resp = authorizer::handle(
        &verifier,
        &events::authorizer("authorizer-query-token", Some(&s.access)),
    )
    .await
    .expect("allowed");
    let v = serde_json::to_value(&resp).expect("policy");
    assert_eq!(v["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(v["context"]["userId"], json!(s.user_id));
    assert_eq!(v["context"]["userName"], "alice");

    // Refresh, then the old refresh token is refused.
    let fresh = refresh(deps, &s.refresh).await;
    assert_eq!(fresh.status, 200, "{fresh:?}");
    let s2 = session_of(&fresh);
    authorizer::handle(
        &verifier,
        &events::authorizer("authorizer-subprotocol", Some(&s2.access)),
    )
    .await
    .expect("the new access token is allowed too");
    refresh(deps, &s.refresh)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn register_login_connect_refresh_on_memory_stores() {
    full_flow(&memory_deps()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_connect_refresh_on_postgres() {
    full_flow(&*postgres_deps_with(accounts_config()).await).await;
}

#[test]
fn http_routes_match_their_path_templates() {
    use http_api::HttpRoute;
    for route in HttpRoute::ALL {
        let path = route.path().replace("{room}", "general");
        let found = HttpRoute::find(route.method(), &path).expect("each route finds itself");
        assert_eq!(found.route, route, "{path}");
        assert_eq!(
            found.param("room").is_some(),
            route.path().contains("{room}")
        );
        assert!(HttpRoute::is_route_path(&path));
        assert_eq!(route.route_key(), route.to_string());
    }
    let found = HttpRoute::find("POST", "/rooms/general/members").expect("route");
    assert_eq!(found.route, HttpRoute::AddMember);
    assert_eq!(found.param("room"), Some("general"));
    assert_eq!(found.param("user"), None);
    // One path, two methods.
    assert_eq!(
        HttpRoute::find("GET", "/rooms").map(|m| m.route),
        Some(HttpRoute::ListRooms)
    );
    assert_eq!(
        HttpRoute::find("POST", "/rooms").map(|m| m.route),
        Some(HttpRoute::CreateRoom)
    );
    for (method, path) in [
        ("GET", "/auth/login"),
        ("DELETE", "/rooms"),
        ("POST", "/rooms//members"),
        ("POST", "/rooms/general/members/extra"),
        ("GET", "/rooms/"),
        ("GET", "health"),
        ("GET", ""),
        ("get", "/health"),
    ] {
        assert!(
            HttpRoute::find(method, path).is_none(),
            "{method} {path} is no route"
        );
    }
    assert!(!HttpRoute::is_route_path("/auth"));
    let paths = HttpRoute::paths();
    assert_eq!(
        paths.len(),
        HttpRoute::ALL.len() - 2,
        "`/rooms` and `/rooms/{{room}}/members` once"
    );
    assert!(paths.contains(&"/rooms/{room}/messages"));
}
