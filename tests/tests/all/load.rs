//! hubbub-load against hubbub-local: the load client, called as a library, runs a small load on
//! the emulator (port 0, in-memory stores) and its judge finds every owed delivery, once; and
//! when the server closes connections mid-run, the client reconnects, resends, catches up, and
//! the stored history read back holds every acked message once.

use std::time::Duration;

use hubbub_core::auth::JwtIssuer;
use hubbub_load::{AuthMode, TokenSource};
use hubbub_tests::local::TestLocal;
use hubbub_tests::settings::jwt_config;

fn tokens(n: usize) -> Vec<String> {
    let issuer = JwtIssuer::hs256(&jwt_config("hubbub")).expect("issuer");
    (0..n)
        .map(|i| {
            issuer
                .issue(
                    &format!("u-load-{i}"),
                    &format!("load-{i}"),
                    time::Duration::minutes(15),
                )
                .expect("token")
        })
        .collect()
}

/// 40 connections in 2 rooms, 2 senders per room at 1.5 messages/s per room for 2 s: every
/// message reaches the 19 other members of its room live, exactly once. The load is small
/// because the emulator runs unoptimised in this binary (each join alone fans presence out to
/// the room); the point is the judge's bookkeeping end to end, on real sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_client_judges_a_clean_run_on_hubbub_local() {
    let server = TestLocal::start().await;
    let mut cfg = hubbub_load::Config::new(format!("{}/", server.ws_url()), tokens(10));
    cfg.connections = 40;
    cfg.rooms = 2;
    cfg.senders_per_room = 2;
    cfg.rate = 1.5;
    cfg.duration = Duration::from_secs(2);
    cfg.drain = Duration::from_secs(5);
    let report = hubbub_load::run(cfg).await.expect("the run is carried out");
    let text = report.to_text();
    assert!(report.verdict.ok, "{text}");
    assert_eq!(text.lines().last(), Some("VERDICT: ok"), "{text}");
    let o = &report.outcomes;
    // 3 messages per room, each owed to the room's 19 other connections.
    let expected = 2 * 3 * 19;
    assert_eq!((o.sent, o.acked), (6, 6), "{text}");
    assert_eq!(o.expected_deliveries, expected, "{text}");
    assert_eq!(o.delivered_live, expected, "{text}");
    assert_eq!(o.msgs_delivered_live, 6, "{text}");
    assert_eq!(report.connecting.joined, 40, "{text}");
    assert_eq!(report.delivery_latency.count, expected, "{text}");
    assert_eq!(
        report.frames.message, expected,
        "one frame per delivery: {text}"
    );
    server.shutdown().await;
}

/// Tokens from the HTTP API (`--register`: register, and log in when the name is taken) carried
/// in the `bearer.` subprotocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_client_registers_users_and_connects_by_subprotocol() {
    let server = TestLocal::start().await;
    let source = TokenSource::Register {
        base: server.http_url(),
        users: 2,
        prefix: "load-user-".into(),
        password: "load-password-123".into(),
    };
    let first = hubbub_load::obtain(&source).await.expect("registered");
    let again = hubbub_load::obtain(&source).await.expect("logged in");
    assert_eq!((first.len(), again.len()), (2, 2));
    let mut cfg = hubbub_load::Config::new(format!("{}/", server.ws_url()), again);
    cfg.connections = 4;
    cfg.rate = 2.0;
    cfg.duration = Duration::from_secs(1);
    cfg.auth = AuthMode::Subprotocol;
    let report = hubbub_load::run(cfg).await.expect("the run is carried out");
    assert!(report.verdict.ok, "{}", report.to_text());
    assert_eq!(
        report.outcomes.delivered_live,
        2 * 3,
        "{}",
        report.to_text()
    );
    server.shutdown().await;
}

/// `DELETE @connections` on half the connections in the middle of the send phase (the server
/// closes them, 1000): each reconnects with backoff, rejoins, resends what was unanswered and
/// reads `history after` for the gap. With faults allowed the run is ok; every acked message is
/// stored once under its ack's seq, and every owed delivery arrived live or by catch-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_client_reconnects_and_catches_up_after_the_server_closes_connections() {
    let server = TestLocal::start().await;
    let mut cfg = hubbub_load::Config::new(format!("{}/", server.ws_url()), tokens(10));
    cfg.connections = 10;
    cfg.senders_per_room = 2;
    cfg.rate = 4.0;
    cfg.duration = Duration::from_secs(3);
    cfg.thresholds.allow_faults = true;
    let run = tokio::spawn(hubbub_load::run(cfg));
    // Joined by now (10 local handshakes), and mid-way through the 3 s of sending.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let api = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(&hubbub_tests::sdk_config())
            .endpoint_url(server.management_url())
            .build(),
    );
    let ids = server.connection_ids();
    assert_eq!(ids.len(), 10, "every connection is open before the kick");
    for id in ids.iter().step_by(2) {
        api.delete_connection()
            .connection_id(id)
            .send()
            .await
            .expect("DELETE @connections");
    }
    let report = run
        .await
        .expect("run task")
        .expect("the run is carried out");
    let text = report.to_text();
    let (o, st) = (&report.outcomes, &report.storage);
    eprintln!(
        "server closes 5 of 10: acked {}, stored {}, live {}, recovered {}, lost {}, stored duplicates {}, reconnects {}",
        o.acked,
        st.stored_once,
        o.delivered_live,
        o.recovered,
        o.lost,
        st.duplicates,
        report.connecting.reconnects
    );
    assert!(report.verdict.ok, "{text}");
    assert_eq!(report.connecting.reconnects, 5, "{text}");
    assert_eq!(
        o.acked, 12,
        "every send is answered, resent ones too: {text}"
    );
    assert_eq!(st.stored_once, o.acked, "{text}");
    assert_eq!(
        (st.missing, st.duplicates, st.seq_gaps),
        (0, 0, 0),
        "{text}"
    );
    assert_eq!(o.lost, 0, "{text}");
    // Live, or (a message sent while its receiver was reconnecting) by catch-up.
    assert_eq!(
        o.delivered_live + o.recovered,
        o.expected_deliveries,
        "{text}"
    );
    server.shutdown().await;
}
