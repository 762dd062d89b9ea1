//! hubbub-load against hubbub-local: the load client, called as a library, runs a small load on
//! the emulator (port 0, in-memory stores) and its judge finds every owed delivery, once.

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
