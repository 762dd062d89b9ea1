//! The web client served by hubbub-local.

use hubbub_tests::local::{TestLocal, recv_type, refused_status, send};
use serde_json::json;

#[tokio::test]
async fn local_web_client_is_served() {
    let dir = std::env::temp_dir().join(format!("hubbub-local-web-{}", uuid::Uuid::new_v4()));
    let write = |rel: &str, contents: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("folder");
        std::fs::write(path, contents).expect("file");
    };
    let index = "<!doctype html><title>hubbub test client</title>";
    write("index.html", index);
    write("app.js", "console.log('hi');");
    write("room-state.js", "export const x = 1;");
    write("img/logo.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>");
    write("lib/deep/mod.mjs", "export default 1;");
    // What only the tests use is not served, though it is there.
    write("e2e/harness.mjs", "secret");
    write("test/room-state.test.mjs", "secret");
    write("node_modules/x/index.js", "secret");
    write("lib/node_modules/y.js", "secret");
    write("package.json", "{}");
    write("room-state.test.mjs", "secret");
    write(".env", "secret");
    let mut c = TestLocal::config();
    c.web_dir = Some(dir.clone());
    let server = TestLocal::with_config(c).await;

    for path in ["/", "/index.html"] {
        let resp = server.request("GET", path, &[], None).await;
        assert_eq!(resp.status, 200, "{path}");
        assert_eq!(
            resp.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(resp.header("cache-control"), Some("no-cache"));
        assert_eq!(resp.body, index.as_bytes());
    }
    for (path, content_type, body) in [
        (
            "/app.js",
            "text/javascript; charset=utf-8",
            "console.log('hi');",
        ),
        (
            "/room-state.js",
            "text/javascript; charset=utf-8",
            "export const x = 1;",
        ),
        (
            "/img/logo.svg",
            "image/svg+xml",
            "<svg xmlns='http://www.w3.org/2000/svg'/>",
        ),
        (
            "/lib/deep/mod.mjs",
            "text/javascript; charset=utf-8",
            "export default 1;",
        ),
    ] {
        let resp = server.request("GET", path, &[], None).await;
        assert_eq!(resp.status, 200, "{path}");
        assert_eq!(resp.header("content-type"), Some(content_type), "{path}");
        assert_eq!(resp.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(resp.body, body.as_bytes(), "{path}");
    }
    // Edited on disk: served without a restart.
    write("app.js", "console.log('edited');");
    let js = server.request("GET", "/app.js", &[], None).await;
    assert_eq!(js.body, b"console.log('edited');");
    // Missing, a folder, test files, hidden, or outside the folder: 404.
    for path in [
        "/style.css",
        "/favicon.ico",
        "/js/app.js",
        "/img",
        "/img/",
        "/e2e/harness.mjs",
        "/test/room-state.test.mjs",
        "/node_modules/x/index.js",
        "/lib/node_modules/y.js",
        "/package.json",
        "/room-state.test.mjs",
        "/.env",
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/..%2FCargo.toml",
        "/img/..%2F..%2FCargo.toml",
    ] {
        let resp = server.request("GET", path, &[], None).await;
        assert_eq!(resp.status, 404, "{path}");
        assert_ne!(resp.body, b"secret", "{path}");
    }
    // Only reads: anything else at a file's path is API Gateway's 404.
    let resp = server.request("POST", "/img/logo.svg", &[], None).await;
    assert_eq!(resp.status, 404);
    // `/` with an Upgrade header is still the WebSocket endpoint, and so is `/{stage}`.
    let mut ws = server.ws("alice").await;
    send(&mut ws, json!({"action":"ping"})).await;
    recv_type(&mut ws, "pong", &mut Vec::new()).await;
    assert_eq!(refused_status(&format!("{}/", server.ws_url())).await, 401);
    let mut ws = server.ws_subprotocol("bob").await;
    send(&mut ws, json!({"action":"ping"})).await;
    recv_type(&mut ws, "pong", &mut Vec::new()).await;
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).expect("remove temp dir");

    // Without --web-dir: the files compiled in, which are every client file of web/ (modules
    // included, tests not) with the content type of its extension.
    let server = TestLocal::start().await;
    let embedded = hubbub_local::web::embedded_files();
    for name in [
        "index.html",
        "app.js",
        "room-state.js",
        "socket.js",
        "view.js",
        "style.css",
    ] {
        assert!(embedded.contains(&name), "{name} is built in: {embedded:?}");
    }
    for name in &embedded {
        assert!(hubbub_local::web::is_client_file(name), "{name}");
        assert!(
            !name.starts_with("e2e/") && !name.starts_with("test/") && *name != "package.json",
            "{name} is not part of the client"
        );
        let resp = server.request("GET", &format!("/{name}"), &[], None).await;
        assert_eq!(resp.status, 200, "{name}");
        assert_eq!(
            resp.header("content-type"),
            Some(hubbub_local::web::content_type(name)),
            "{name}"
        );
        assert_eq!(resp.header("cache-control"), Some("no-cache"));
        assert!(!resp.body.is_empty(), "{name}");
    }
    for path in [
        "/e2e/harness.mjs",
        "/test/room-state.test.mjs",
        "/package.json",
    ] {
        let resp = server.request("GET", path, &[], None).await;
        assert_eq!(resp.status, 404, "{path}");
    }
    server.shutdown().await;
}
