//! The management-API adapter against a real HTTP server.

use hubbub_core::error::GatewayError;
use hubbub_core::gateway::{ConnectionGateway, Endpoint};
use hubbub_tests::Recorder;

#[tokio::test]
async fn post_get_delete_and_gone() {
    let rec = Recorder::start().await;
    let gw = rec.gateway();
    let ep = Endpoint::for_request("ignored", "ignored", Some(&rec.endpoint()));

    gw.post(&ep, "abc=", br#"{"type":"pong"}"#)
        .await
        .expect("post");
    assert_eq!(
        rec.posts(),
        vec![("abc=".to_owned(), r#"{"type":"pong"}"#.to_owned())]
    );

    let info = gw.get(&ep, "abc=").await.expect("get");
    assert_eq!(info.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(info.user_agent.as_deref(), Some("wscat"));
    assert_eq!(
        info.connected_at.map(|t| t.unix_timestamp()),
        Some(1_768_469_400)
    );

    gw.delete(&ep, "abc=").await.expect("delete");
    assert_eq!(rec.lock().deleted, vec!["abc=".to_owned()]);

    // 410 with AWS's GoneException body, then with an empty body: both are Gone.
    rec.make_gone("old=");
    assert!(matches!(
        gw.post(&ep, "old=", b"{}").await,
        Err(GatewayError::Gone)
    ));
    assert!(matches!(gw.get(&ep, "old=").await, Err(GatewayError::Gone)));
    rec.lock().gone_empty_body = true;
    assert!(matches!(
        gw.post(&ep, "old=", b"{}").await,
        Err(GatewayError::Gone)
    ));
    assert!(matches!(
        gw.delete(&ep, "old=").await,
        Err(GatewayError::Gone)
    ));
}

#[tokio::test]
async fn unreachable_endpoint_is_a_failure_not_gone() {
    let rec = Recorder::start().await;
    let gw = rec.gateway();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let ep = Endpoint::for_request("x", "y", Some(&format!("http://127.0.0.1:{port}/prod")));
    assert!(matches!(
        gw.post(&ep, "abc=", b"{}").await,
        Err(GatewayError::Failed { op: "post", .. })
    ));
}
