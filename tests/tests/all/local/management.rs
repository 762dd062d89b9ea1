//! The @connections management API of hubbub-local, driven by the real AWS SDK client, and
//! shutdown closing connections with 1001.

use aws_sdk_apigatewaymanagement::primitives::Blob;
use hubbub_tests::local::{TestLocal, close_code, recv_type};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn management_client(endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    let conf = aws_sdk_apigatewaymanagement::config::Builder::from(&hubbub_tests::sdk_config())
        .endpoint_url(endpoint)
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(conf)
}

#[tokio::test]
async fn local_connections_api_with_the_sdk() {
    let server = TestLocal::start().await;
    let mut ws = server.ws_subprotocol("alice").await;
    let ids = server.connection_ids();
    let id = ids.first().expect("one connection").clone();
    assert_eq!(id.len(), 16, "API Gateway-style id: {id}");
    assert!(id.ends_with('='));
    let api = management_client(server.management_url());

    // POST: the body arrives as one text frame.
    api.post_to_connection()
        .connection_id(&id)
        .data(Blob::new(r#"{"type":"pong"}"#))
        .send()
        .await
        .expect("post");
    let mut log = Vec::new();
    recv_type(&mut ws, "pong", &mut log).await;

    // Without the stage prefix too.
    let bare = format!("http://{}", server.local_addr());
    management_client(&bare)
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(r#"{"type":"hello"}"#))
        .send()
        .await
        .expect("post without stage");
    recv_type(&mut ws, "hello", &mut log).await;

    // Over 128 KB: 413, and the connection stays.
    let too_big = api
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(vec![b'x'; 128 * 1024 + 1]))
        .send()
        .await
        .expect_err("413");
    assert_eq!(
        too_big.raw_response().map(|r| r.status().as_u16()),
        Some(413)
    );

    // GET: timestamps and identity.
    let info = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("get");
    let identity = info.identity().expect("identity");
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    assert_eq!(identity.user_agent(), Some("hubbub-tests"));
    let connected = info.connected_at().expect("connectedAt").secs();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (now - 60..=now).contains(&connected),
        "{connected} vs {now}"
    );
    assert!(info.last_active_at().expect("lastActiveAt").secs() >= connected);

    // DELETE closes the client; then every call is GoneException.
    api.delete_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("delete");
    assert_eq!(
        close_code(&mut ws).await,
        Some(u16::from(CloseCode::Normal))
    );
    let post = api
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("late"))
        .send()
        .await
        .expect_err("gone");
    assert!(post.into_service_error().is_gone_exception());
    let get = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect_err("gone");
    assert!(get.into_service_error().is_gone_exception());
    // Unsigned requests are refused as API Gateway refuses them.
    let unsigned = server
        .request("POST", &format!("/local/@connections/{id}"), &[], None)
        .await;
    let answer = format!(
        "{:?} {}",
        unsigned.headers,
        String::from_utf8_lossy(&unsigned.body)
    );
    assert_eq!(unsigned.status, 403, "{answer}");
    assert!(
        answer.contains("MissingAuthenticationTokenException"),
        "{answer}"
    );
    // Signed, but on a stage that does not exist: API Gateway's 403 for an unknown stage.
    let wrong_stage = server
        .request(
            "DELETE",
            &format!("/prod/@connections/{id}"),
            &[("Authorization", "AWS4-HMAC-SHA256 x")],
            None,
        )
        .await;
    let answer = format!(
        "{:?} {}",
        wrong_stage.headers,
        String::from_utf8_lossy(&wrong_stage.body)
    );
    assert_eq!(wrong_stage.status, 403, "{answer}");
    assert!(answer.contains("ForbiddenException"), "{answer}");
    let del = api
        .delete_connection()
        .connection_id("AAAAAAAAAAAAAAA=")
        .send()
        .await
        .expect_err("gone");
    assert!(del.into_service_error().is_gone_exception());
    server.shutdown().await;
}

#[tokio::test]
async fn local_shutdown_closes_connections_with_1001() {
    let server = TestLocal::start().await;
    let mut a = server.ws("alice").await;
    let mut b = server.ws_subprotocol("bob").await;
    let addr = server.local_addr();
    server.shutdown().await;
    assert_eq!(close_code(&mut a).await, Some(u16::from(CloseCode::Away)));
    assert_eq!(close_code(&mut b).await, Some(u16::from(CloseCode::Away)));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
