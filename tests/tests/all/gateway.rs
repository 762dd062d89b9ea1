//! The management-API adapter against a real HTTP server.

use bytes::Bytes;
use hubbub_core::error::GatewayError;
use hubbub_core::gateway::management::{GatewayOptions, MAX_ATTEMPTS, ManagementGateway};
use hubbub_core::gateway::{ConnectionGateway, Endpoint};
use hubbub_tests::Recorder;

#[tokio::test]
async fn post_get_delete_and_gone() {
    let rec = Recorder::start().await;
    let gw = rec.gateway();
    let ep = Endpoint::for_request("ignored", "ignored", Some(&rec.endpoint()));

    gw.post(&ep, "abc=", &Bytes::from_static(br#"{"type":"pong"}"#))
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
        gw.post(&ep, "old=", &Bytes::from_static(b"{}")).await,
        Err(GatewayError::Gone)
    ));
    assert!(matches!(gw.get(&ep, "old=").await, Err(GatewayError::Gone)));
    rec.lock().gone_empty_body = true;
    assert!(matches!(
        gw.post(&ep, "old=", &Bytes::from_static(b"{}")).await,
        Err(GatewayError::Gone)
    ));
    assert!(matches!(
        gw.delete(&ep, "old=").await,
        Err(GatewayError::Gone)
    ));
}

/// Every call is SigV4-signed for execute-api with the configured credentials and region.
#[tokio::test]
async fn posts_are_signed_for_execute_api() {
    let rec = Recorder::start().await;
    let ep = Endpoint::for_request("x", "y", Some(&rec.endpoint()));
    rec.gateway()
        .post(&ep, "abc=", &Bytes::from_static(b"{}"))
        .await
        .expect("post");
    let auth = rec.lock().attempts[0].1.clone();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
            && auth.contains("/eu-west-1/execute-api/aws4_request")
            && auth.contains("Signature="),
        "{auth}"
    );
}

/// 429, 500 and 503 mean "not delivered": retried with backoff until one succeeds, and the
/// frame is delivered once.
#[tokio::test]
async fn throttled_and_failed_posts_are_retried_then_delivered_once() {
    let rec = Recorder::start().await;
    let ep = Endpoint::for_request("x", "y", Some(&rec.endpoint()));
    rec.fail_next("abc=", &[429, 503]);
    rec.gateway()
        .post(&ep, "abc=", &Bytes::from_static(b"{}"))
        .await
        .expect("delivered on the third attempt");
    assert_eq!(rec.attempts_to("abc="), 3);
    assert_eq!(rec.posts().len(), 1);

    rec.fail_next("def=", &[500; 5]);
    let err = rec
        .gateway()
        .post(&ep, "def=", &Bytes::from_static(b"{}"))
        .await
        .expect_err("gives up");
    assert!(
        matches!(err, GatewayError::Rejected { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(rec.attempts_to("def="), MAX_ATTEMPTS as usize);
}

/// Other refusals are final, and a post with no answer in time is never repeated: it may
/// have been delivered, and a repeat could deliver it twice.
#[tokio::test]
async fn refusals_are_final_and_unknown_outcomes_are_not_retried() {
    let rec = Recorder::start().await;
    let ep = Endpoint::for_request("x", "y", Some(&rec.endpoint()));
    rec.fail_next("abc=", &[403]);
    let err = rec
        .gateway()
        .post(&ep, "abc=", &Bytes::from_static(b"{}"))
        .await
        .expect_err("refused");
    assert!(
        matches!(err, GatewayError::Rejected { status: 403, .. }),
        "{err:?}"
    );
    assert_eq!(rec.attempts_to("abc="), 1);

    rec.lock().post_delay = std::time::Duration::from_millis(400);
    let impatient = ManagementGateway::with_options(
        &hubbub_tests::sdk_config(),
        GatewayOptions {
            attempt_timeout: std::time::Duration::from_millis(100),
            ..GatewayOptions::default()
        },
    );
    let err = impatient
        .post(&ep, "slow=", &Bytes::from_static(b"{}"))
        .await
        .expect_err("timed out");
    assert!(matches!(err, GatewayError::Unknown { .. }), "{err:?}");
    // Real time, not paused: a repeat would arrive over a real socket at the recorder, and
    // paused time would skip past it. 500 ms outlasts the 400 ms slow answer and any retry.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(rec.attempts_to("slow="), 1, "never repeated");
}

/// A 502 or 504 comes from something between the caller and the API that gave up waiting:
/// the request may have been carried out, so it is an unknown outcome, never repeated.
#[tokio::test]
async fn gateway_timeouts_in_between_are_unknown_outcomes_never_retried() {
    let rec = Recorder::start().await;
    let ep = Endpoint::for_request("x", "y", Some(&rec.endpoint()));
    for (id, status) in [("bad-gateway=", 502), ("timeout=", 504)] {
        rec.fail_next(id, &[status]);
        let err = rec
            .gateway()
            .post(&ep, id, &Bytes::from_static(b"{}"))
            .await
            .expect_err("not delivered here");
        assert!(
            matches!(err, GatewayError::Unknown { .. }),
            "{status}: {err:?}"
        );
        assert_eq!(rec.attempts_to(id), 1, "{status}: never repeated");
    }
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
        gw.post(&ep, "abc=", &Bytes::from_static(b"{}")).await,
        Err(GatewayError::Failed { op: "post", .. })
    ));
}

/// A connection that cannot be opened never carried the request: a connect that stalls
/// (here: a listener whose accept queue is full, so the kernel drops further SYNs) ends in a
/// retried failure, not an unknown outcome. An unknown outcome is never retried and leaves
/// the recipient to catch-up; a failure is retried and, in a worker's chunk, re-enqueued.
#[tokio::test]
async fn a_connect_that_stalls_is_a_failure_not_an_unknown_outcome() {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(0).expect("listen");
    let addr = listener.local_addr().expect("addr");
    // Fills the accept queue (never accepted): every later connect waits for a SYN-ACK.
    let _queued = std::net::TcpStream::connect(addr).expect("first connect");
    let gw = ManagementGateway::new(&hubbub_tests::sdk_config());
    let ep = Endpoint::for_request("x", "y", Some(&format!("http://{addr}/prod")));
    let err = gw
        .post(&ep, "abc=", &Bytes::from_static(b"{}"))
        .await
        .expect_err("nothing accepts");
    assert!(
        matches!(err, GatewayError::Failed { op: "post", .. }),
        "a connection never opened is a failure: {err:?}"
    );
    drop(listener);
}

/// A room larger than one member page: everyone but the sender gets the frame exactly once,
/// with posts in flight concurrently but never more than the documented bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_pages_through_a_big_room_with_bounded_concurrency() {
    use hubbub_core::fanout::{FANOUT_CONCURRENCY, MEMBER_PAGE_SIZE, broadcast};
    use hubbub_core::protocol::ServerFrame;
    use hubbub_core::store::ConnectionStore;
    use hubbub_core::store::memory::MemoryConnectionStore;
    use hubbub_tests::contract::{connection, room};

    let rec = Recorder::start().await;
    rec.lock().post_delay = std::time::Duration::from_millis(5);
    let store = MemoryConnectionStore::new();
    let big = room("big");
    let members = 2 * MEMBER_PAGE_SIZE as usize + 50;
    let mut ids = Vec::new();
    for i in 0..members {
        let c = connection(&format!("u{i}"));
        store.put_connection(&c).await.expect("put");
        store.join_room(&c, &big).await.expect("join");
        ids.push(c.id);
    }
    let sender = ids[7].clone();
    let gone = ids[300].clone();
    rec.make_gone(&gone);
    let ep = Endpoint::for_request("x", "y", Some(&rec.endpoint()));
    let report = broadcast(
        &store,
        rec.gateway().as_ref(),
        &ep,
        &big,
        &ServerFrame::Pong,
        Some(&sender),
    )
    .await
    .expect("broadcast");
    assert_eq!(
        (report.delivered, report.gone, report.failed),
        (members - 2, 1, 0)
    );

    let posts = rec.posts();
    let unique: std::collections::HashSet<&String> = posts.iter().map(|(id, _)| id).collect();
    assert_eq!(
        (posts.len(), unique.len()),
        (members - 2, members - 2),
        "each member exactly once"
    );
    assert!(!unique.contains(&sender), "never to the sender");
    assert!(
        store.get_connection(&gone).await.expect("get").is_none(),
        "gone member removed"
    );
    let max = rec.lock().max_in_flight;
    assert!(
        max > 1 && max <= FANOUT_CONCURRENCY,
        "in flight at once: {max}"
    );
}

/// Concurrent fan-outs sharing one gateway (in-process workers) keep no more requests in
/// flight than it keeps pooled connections; the rest wait their turn and are all delivered,
/// once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_bounded_per_gateway() {
    use hubbub_core::fanout::FANOUT_CONCURRENCY;
    use hubbub_core::gateway::management::MAX_CONNECTIONS;

    let rec = Recorder::start().await;
    rec.lock().post_delay = std::time::Duration::from_millis(20);
    let gw = rec.gateway();
    let ep = Endpoint::for_request("x", "y", Some(&rec.endpoint()));
    let n = 2 * MAX_CONNECTIONS + 10;
    let data = Bytes::from_static(b"{}");
    let results = futures::future::join_all((0..n).map(|i| {
        let (gw, ep, data) = (gw.clone(), ep.clone(), data.clone());
        async move { gw.post(&ep, &format!("c{i}="), &data).await }
    }))
    .await;
    assert!(results.iter().all(Result::is_ok), "every post delivered");
    let posts = rec.posts();
    let unique: std::collections::HashSet<&String> = posts.iter().map(|(id, _)| id).collect();
    assert_eq!((posts.len(), unique.len()), (n, n), "each exactly once");
    let max = rec.lock().max_in_flight;
    assert!(
        max > FANOUT_CONCURRENCY && max <= MAX_CONNECTIONS,
        "in flight at once: {max}"
    );
}
