//! The WebSocket connection itself: handshake refusals, frame limits and fragmentation,
//! and the idle and maximum-duration timeouts.

use futures::SinkExt;
use hubbub_core::auth::JwtIssuer;
use hubbub_core::config::JwtConfig;
use hubbub_tests::local::{
    FRAME_WAIT, TestLocal, close_code, next_frame, recv_type, refused_status, send, token,
    token_for,
};
use hubbub_tests::settings::jwt_config;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

#[tokio::test]
async fn local_handshake_refusals() {
    let server = TestLocal::start().await;
    let ws = server.ws_url();
    // Missing, malformed, or signed with another secret: 401.
    assert_eq!(refused_status(&format!("{ws}/")).await, 401);
    assert_eq!(refused_status(&format!("{ws}/?token=nonsense")).await, 401);
    let foreign = JwtIssuer::hs256(&JwtConfig {
        secret: b"another-secret-that-is-long-enough-32b".to_vec(),
        ..jwt_config("hubbub")
    })
    .expect("issuer")
    .issue("u-eve", "eve", time::Duration::minutes(5))
    .expect("token");
    assert_eq!(refused_status(&format!("{ws}/?token={foreign}")).await, 401);
    // Expired (beyond the 30 s leeway): 401.
    let issuer = JwtIssuer::hs256(&jwt_config("hubbub")).expect("issuer");
    let mut claims = issuer.claims("u-alice", "alice", time::Duration::minutes(15));
    claims.nbf -= 3600;
    claims.iat -= 3600;
    claims.exp = claims.iat + 60;
    let expired = issuer.sign(&claims).expect("token");
    assert_eq!(refused_status(&format!("{ws}/?token={expired}")).await, 401);
    // Correctly signed for another audience: the policy denies, 403.
    let other = token_for("alice", "another-api");
    assert_eq!(refused_status(&format!("{ws}/?token={other}")).await, 403);
    // A stage that does not exist.
    assert_eq!(
        refused_status(&format!("{ws}/prod?token={}", token("alice"))).await,
        403
    );
    assert!(server.connection_ids().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn local_oversized_frame_closes_with_1009() {
    let server = TestLocal::start().await;
    let mut ws = server.ws("alice").await;
    // Just under the 32 KB frame limit: delivered (and refused by $default, being no JSON).
    ws.send(Message::Text("x".repeat(32 * 1024 - 16).into()))
        .await
        .expect("send");
    let mut log = Vec::new();
    let err = recv_type(&mut ws, "error", &mut log).await;
    assert_eq!(err["code"], "bad_request");
    // Over it: closed with 1009, and gone.
    ws.send(Message::Text("x".repeat(40 * 1024).into()))
        .await
        .expect("send");
    assert_eq!(close_code(&mut ws).await, Some(u16::from(CloseCode::Size)));
    assert!(server.connection_ids().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn local_fragmented_messages_and_binary_frames() {
    let server = TestLocal::start().await;
    let mut ws = server.ws("alice").await;
    let mut log = Vec::new();
    let fragments = |n: usize| {
        (0..n).map(move |i| {
            let op = if i == 0 { Data::Text } else { Data::Continue };
            Message::Frame(Frame::message(
                vec![b'x'; 30 * 1024],
                OpCode::Data(op),
                i + 1 == n,
            ))
        })
    };
    // 90 KB in three frames of 30 KB: one message, within the 128 KB limit.
    for f in fragments(3) {
        ws.send(f).await.expect("send fragment");
    }
    let err = recv_type(&mut ws, "error", &mut log).await;
    assert_eq!(err["code"], "bad_request");
    // A binary frame reaches $default base64-encoded, which refuses it.
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .expect("send binary");
    let err = recv_type(&mut ws, "error", &mut log).await;
    assert_eq!(err["code"], "bad_request");
    // 150 KB in five frames: over the message limit, closed with 1009.
    for f in fragments(5) {
        ws.send(f).await.expect("send fragment");
    }
    assert_eq!(close_code(&mut ws).await, Some(u16::from(CloseCode::Size)));
    assert!(server.connection_ids().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn local_idle_connection_is_closed() {
    let mut c = TestLocal::config();
    c.idle_timeout = Duration::from_millis(300);
    let server = TestLocal::with_config(c).await;
    let mut ws = server.ws("alice").await;
    assert_eq!(close_code(&mut ws).await, Some(u16::from(CloseCode::Away)));
    assert!(server.connection_ids().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn local_max_duration_closes_busy_connections() {
    let mut c = TestLocal::config();
    c.max_connection = Duration::from_millis(800);
    let server = TestLocal::with_config(c).await;
    let mut ws = server.ws("alice").await;
    // Busy, so never idle: pings every 100 ms until the server closes.
    let started = std::time::Instant::now();
    let code = loop {
        send(&mut ws, json!({"action":"ping"})).await;
        match next_frame(&mut ws, Duration::from_millis(100)).await {
            Some(Err(code)) => break code,
            _ => assert!(started.elapsed() < FRAME_WAIT, "never closed"),
        }
    };
    assert_eq!(code, Some(u16::from(CloseCode::Away)));
    assert!(started.elapsed() >= Duration::from_millis(700));
    server.shutdown().await;
}

/// Frames are small and each is written when it is due: the server's end of a WebSocket has
/// Nagle's delay off. With it on, a frame written while the previous one was not yet
/// acknowledged waited for the client's ACK, which a client may delay by up to 40 ms.
#[tokio::test]
#[expect(
    unsafe_code,
    reason = "the server runs in this process; its socket is found by duplicating this process's fds"
)]
async fn local_websocket_sockets_have_no_nagle_delay() {
    use std::os::fd::BorrowedFd;
    use tokio_tungstenite::MaybeTlsStream;

    let server = TestLocal::start().await;
    let ws = server.ws("alice").await;
    let MaybeTlsStream::Plain(tcp) = ws.get_ref() else {
        panic!("a plain TCP connection");
    };
    let client = tcp.local_addr().expect("client address");
    let mut server_end = None;
    for entry in std::fs::read_dir("/proc/self/fd").expect("list fds") {
        let Ok(fd) = entry
            .expect("fd")
            .file_name()
            .to_string_lossy()
            .parse::<i32>()
        else {
            continue;
        };
        // SAFETY: only duplicated at once (`try_clone_to_owned`, fcntl F_DUPFD_CLOEXEC), which
        // fails cleanly if another test closed the fd meanwhile; a reused number is just
        // another socket whose peer is not ours.
        let Ok(owned) = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned() else {
            continue;
        };
        let socket = std::net::TcpStream::from(owned);
        if socket.peer_addr().ok() == Some(client) {
            server_end = Some(socket.nodelay().expect("TCP_NODELAY"));
            break;
        }
    }
    assert_eq!(
        server_end,
        Some(true),
        "the server's end of the connection is found and has TCP_NODELAY set"
    );
    drop(ws);
    server.shutdown().await;
}
