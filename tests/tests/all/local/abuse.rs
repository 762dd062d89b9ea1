//! The abuse suite: hubbub-local driven by real WebSocket and HTTP clients the way a hostile or
//! broken client would drive it. A send flood and a typing flood from one connection are held
//! to their limits while the other users of the same room keep chatting with normal latency;
//! every other route has its own budget; rooms joined per connection and rooms created per
//! user are capped; registration is limited per client address; a stolen login is cut off by
//! its owner's logout or by a replayed refresh token, which close the user's sockets. The
//! limits are the documented defaults (docs/protocol.md, "Limits").

use std::time::{Duration, Instant};

use hubbub_core::limits::Limits;
use hubbub_tests::local::{
    Client, FRAME_WAIT, Stores, TestLocal, close_code, drain, next_frame, recv_type,
    refused_status, send, token,
};
use serde_json::{Value, json};

/// The documented defaults the suite holds the emulator to.
fn defaults() -> Limits {
    Limits::default()
}

/// The latency the bystanders must keep while a flood runs: far above what an unloaded
/// emulator needs (milliseconds), far below what a starved one would show.
const NORMAL_LATENCY: Duration = Duration::from_secs(2);

/// Connects `user` and joins `room`.
async fn member(server: &TestLocal, user: &str, room: &str) -> Client {
    let mut ws = server.ws(user).await;
    send(&mut ws, json!({"action":"joinRoom","room":room})).await;
    recv_type(&mut ws, "joined", &mut Vec::new()).await;
    ws
}

/// Reads frames into `log` until `want` holds for one of them, and returns that one.
async fn until_in(
    ws: &mut Client,
    log: &mut Vec<Value>,
    mut want: impl FnMut(&Value) -> bool,
) -> Value {
    loop {
        match next_frame(ws, FRAME_WAIT).await {
            Some(Ok(v)) if want(&v) => return v,
            Some(Ok(v)) => log.push(v),
            other => panic!("waiting for a frame, got {other:?} after {log:?}"),
        }
    }
}

/// Reads frames until `want` holds for one of them, and returns it.
async fn until(ws: &mut Client, want: impl FnMut(&Value) -> bool) -> Value {
    until_in(ws, &mut Vec::new(), want).await
}

/// Bob sends `n` messages to `room` one after another; each must be acked to him and
/// delivered to carol within [`NORMAL_LATENCY`]. The other frames they receive meanwhile
/// go to `seen` (bob's, then carol's). Returns the slowest round.
async fn bystanders_chat(
    bob: &mut Client,
    carol: &mut Client,
    room: &str,
    n: usize,
    seen: &mut [Vec<Value>; 2],
) -> Duration {
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let id = format!("bob-{i}");
        let started = Instant::now();
        send(
            bob,
            json!({"action":"sendMessage","room":room,"body":"still here","clientMsgId":id}),
        )
        .await;
        let ack = until_in(bob, &mut seen[0], |f| {
            f["type"] == "ack" && f["clientMsgId"] == id
        })
        .await;
        assert_eq!(ack["room"], room);
        let msg = until_in(carol, &mut seen[1], |f| {
            f["type"] == "message" && f["clientMsgId"] == id
        })
        .await;
        assert_eq!(msg["sender"]["id"], "u-bob");
        let took = started.elapsed();
        assert!(
            took < NORMAL_LATENCY,
            "bob's message {i} took {took:?} to be acked and delivered during the flood"
        );
        slowest = slowest.max(took);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    slowest
}

/// Every `rate_limited` error frame among `frames`, each checked for its retry hint.
fn rate_limited(frames: &[Value], action: &str) -> usize {
    let limited: Vec<&Value> = frames
        .iter()
        .filter(|f| f["type"] == "error" && f["code"] == "rate_limited")
        .collect();
    for f in &limited {
        assert_eq!(f["action"], action, "{f}");
        let hint = f["retryAfterMs"].as_u64().unwrap_or(0);
        assert!(
            hint >= 1,
            "a rate_limited frame carries retryAfterMs >= 1: {f}"
        );
    }
    limited.len()
}

/// The connection is still open and served: a `ping` gets its `pong`.
async fn still_open(ws: &mut Client) {
    send(ws, json!({"action":"ping"})).await;
    until(ws, |f| f["type"] == "pong").await;
}

/// A connection sends 100 messages as fast as it can: about a burst's worth is stored and
/// acked, the rest answer `rate_limited` with a retry hint, the connection stays open, and
/// bob and carol in the same room chat on with normal latency meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_abuse_send_flood_is_rate_limited_while_others_chat() {
    const FLOOD: usize = 100;
    let server = TestLocal::start().await;
    let mut bob = member(&server, "bob", "lobby").await;
    let mut carol = member(&server, "carol", "lobby").await;
    let mut mallory = member(&server, "mallory", "lobby").await;

    let flood = tokio::spawn(async move {
        let started = Instant::now();
        for i in 0..FLOOD {
            send(
                &mut mallory,
                json!({"action":"sendMessage","room":"lobby","body":"spam","clientMsgId":format!("f-{i}")}),
            )
            .await;
        }
        let mut frames = Vec::new();
        while frames
            .iter()
            .filter(|f: &&Value| f["type"] == "ack" || f["type"] == "error")
            .count()
            < FLOOD
        {
            match next_frame(&mut mallory, FRAME_WAIT).await {
                Some(Ok(v)) => frames.push(v),
                other => panic!("the flooder waits for an answer to each frame, got {other:?}"),
            }
        }
        (mallory, frames, started.elapsed())
    });
    let mut seen = [Vec::new(), Vec::new()];
    let slowest = bystanders_chat(&mut bob, &mut carol, "lobby", 5, &mut seen).await;
    let (mut mallory, frames, took) = flood.await.expect("flood task");

    let acks = frames.iter().filter(|f| f["type"] == "ack").count();
    let limited = rate_limited(&frames, "sendMessage");
    assert_eq!(
        acks + limited,
        FLOOD,
        "every frame is acked or refused: {frames:?}"
    );
    let send = defaults().send;
    let allowed = send.burst as usize
        + (f64::from(send.rate_per_sec) * took.as_secs_f64()).ceil() as usize
        + 1;
    assert!(
        limited > 0 && acks <= allowed,
        "the flooder got {acks} acks and {limited} rate_limited frames in {took:?} (at most {allowed} acks allowed)"
    );
    still_open(&mut mallory).await;
    println!(
        "send flood: {acks} acked, {limited} rate_limited in {took:?}; bystanders' slowest round {slowest:?}"
    );

    // Carol saw at most the acked floods: a refused send is not stored or delivered.
    let [_, mut log] = seen;
    drain(&mut carol, &mut log).await;
    let spam = log
        .iter()
        .filter(|f| f["type"] == "message" && f["body"] == "spam")
        .count();
    assert!(
        spam <= acks,
        "carol got {spam} flood messages for {acks} acks"
    );
    server.shutdown().await;
}

/// A connection sends 60 typing frames at once: bob sees mallory typing once, not 60 times;
/// the flooder is told nothing (typing is ephemeral); bob and carol chat on meanwhile; and
/// once the debounce interval has passed, typing is relayed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_abuse_typing_flood_is_debounced_while_others_chat() {
    const FLOOD: usize = 60;
    let server = TestLocal::start().await;
    let mut bob = member(&server, "bob", "lobby").await;
    let mut carol = member(&server, "carol", "lobby").await;
    let mut mallory = member(&server, "mallory", "lobby").await;

    let started = Instant::now();
    for _ in 0..FLOOD {
        send(&mut mallory, json!({"action":"typing","room":"lobby"})).await;
    }
    let mut logs = [Vec::new(), Vec::new()];
    bystanders_chat(&mut bob, &mut carol, "lobby", 3, &mut logs).await;
    let [mut seen, _] = logs;
    drain(&mut bob, &mut seen).await;
    let took = started.elapsed();
    let typing = seen
        .iter()
        .filter(|f| f["type"] == "typing" && f["user"]["id"] == "u-mallory")
        .count();
    let interval = defaults().typing_interval;
    let windows = 1 + (took.as_secs_f64() / interval.as_secs_f64()).floor() as usize;
    assert!(
        (1..=windows).contains(&typing),
        "bob saw mallory typing {typing} times for {FLOOD} typing frames in {took:?}"
    );
    let mut answers = Vec::new();
    drain(&mut mallory, &mut answers).await;
    assert!(
        answers.iter().all(|f| f["type"] != "error"),
        "extra typing frames are dropped silently: {answers:?}"
    );

    // After the interval, typing is relayed again.
    tokio::time::sleep(interval).await;
    send(&mut mallory, json!({"action":"typing","room":"lobby"})).await;
    let again = until(&mut bob, |f| f["type"] == "typing").await;
    assert_eq!(again["user"]["id"], "u-mallory");
    server.shutdown().await;
}

/// The other routes have their own, looser budget: a `history` flood is answered
/// `rate_limited` beyond it (the connection stays open), and after the hinted wait the
/// route answers again. The flooder's `sendMessage` budget is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_abuse_other_routes_are_rate_limited() {
    const FLOOD: usize = 300;
    let server = TestLocal::start().await;
    let mut mallory = member(&server, "mallory", "lobby").await;
    let started = Instant::now();
    for _ in 0..FLOOD {
        send(&mut mallory, json!({"action":"history","room":"lobby"})).await;
    }
    let mut frames = Vec::new();
    while frames.len() < FLOOD {
        match next_frame(&mut mallory, FRAME_WAIT).await {
            Some(Ok(v)) if v["type"] == "history" || v["type"] == "error" => frames.push(v),
            Some(Ok(_)) => {}
            other => panic!("waiting for answers to the history flood, got {other:?}"),
        }
    }
    let took = started.elapsed();
    let pages = frames.iter().filter(|f| f["type"] == "history").count();
    let limited = rate_limited(&frames, "history");
    // The join spent one token of the same budget.
    let routes = defaults().routes;
    let allowed = routes.burst as usize
        + (f64::from(routes.rate_per_sec) * took.as_secs_f64()).ceil() as usize;
    assert!(
        limited > 0 && pages <= allowed,
        "{pages} history pages and {limited} rate_limited frames in {took:?} (at most {allowed} pages allowed)"
    );
    assert!(
        frames
            .iter()
            .filter(|f| f["type"] == "error")
            .all(|f| f["room"] == "lobby"),
        "a rate_limited frame names its room"
    );
    let wait = frames
        .iter()
        .rev()
        .find_map(|f| f["retryAfterMs"].as_u64())
        .expect("a retry hint");
    tokio::time::sleep(Duration::from_millis(wait)).await;
    send(&mut mallory, json!({"action":"history","room":"lobby"})).await;
    until(&mut mallory, |f| f["type"] == "history").await;
    // sendMessage has its own bucket: the history flood did not spend it.
    send(
        &mut mallory,
        json!({"action":"sendMessage","room":"lobby","body":"hello","clientMsgId":"after"}),
    )
    .await;
    let answer = until(&mut mallory, |f| f["type"] == "ack" || f["type"] == "error").await;
    assert_eq!(answer["type"], "ack", "{answer}");
    server.shutdown().await;
}

/// One connection may have joined at most 50 rooms at once: the 51st join is refused with
/// `limit_exceeded` naming the room, re-joining a joined room still answers `joined`, and a
/// leave makes room for another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_abuse_rooms_joined_per_connection_are_capped() {
    let server = TestLocal::start().await;
    let mut ws = server.ws("hoarder").await;
    let mut log = Vec::new();
    let max_joined = defaults().max_joined_rooms;
    assert_eq!(max_joined, 50, "the documented default");
    for i in 0..max_joined {
        send(&mut ws, json!({"action":"joinRoom","room":format!("r{i}")})).await;
        let f = recv_type(&mut ws, "joined", &mut log).await;
        assert_eq!(f["room"], format!("r{i}"));
    }
    assert!(log.iter().all(|f| f["type"] != "error"), "{log:?}");
    send(&mut ws, json!({"action":"joinRoom","room":"one-too-many"})).await;
    let refused = until(&mut ws, |f| f["type"] == "error" || f["type"] == "joined").await;
    assert_eq!(refused["type"], "error", "the 51st join: {refused}");
    assert_eq!(refused["code"], "limit_exceeded", "{refused}");
    assert_eq!(refused["room"], "one-too-many");
    assert_eq!(refused["action"], "joinRoom");

    send(&mut ws, json!({"action":"joinRoom","room":"r0"})).await;
    let again = until(&mut ws, |f| f["type"] == "error" || f["type"] == "joined").await;
    assert_eq!(again["type"], "joined", "re-joining a joined room: {again}");

    send(&mut ws, json!({"action":"leaveRoom","room":"r0"})).await;
    until(&mut ws, |f| f["type"] == "left").await;
    send(&mut ws, json!({"action":"joinRoom","room":"one-too-many"})).await;
    let now = until(&mut ws, |f| f["type"] == "error" || f["type"] == "joined").await;
    assert_eq!(now["type"], "joined", "after a leave: {now}");

    // The cap is per connection: the same user's next tab starts with none.
    let mut tab = server.ws("hoarder").await;
    send(&mut tab, json!({"action":"joinRoom","room":"r1"})).await;
    recv_type(&mut tab, "joined", &mut Vec::new()).await;
    server.shutdown().await;
}

/// One user may create at most 100 rooms, whether with `POST /rooms` or by joining a room
/// that does not exist yet: past the cap both are refused with `limit_exceeded`, while
/// joining existing rooms and other users' creations go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_abuse_rooms_created_per_user_are_capped() {
    let server = TestLocal::start().await;
    let builder = format!("Bearer {}", token("builder"));
    let create = |id: String| {
        let auth = builder.clone();
        let server = &server;
        async move {
            let body = json!({"id": id, "name": "a room"}).to_string();
            server
                .request("POST", "/rooms", &[("Authorization", &auth)], Some(&body))
                .await
        }
    };
    let max_created = defaults().max_rooms_created as usize;
    assert_eq!(max_created, 100, "the documented default");
    // All but one with POST /rooms, the last by joining.
    for i in 0..max_created - 1 {
        let a = create(format!("b{i}")).await;
        assert_eq!(
            a.status,
            201,
            "room {i}: {}",
            String::from_utf8_lossy(&a.body)
        );
    }
    let mut ws = server.ws("builder").await;
    send(&mut ws, json!({"action":"joinRoom","room":"b-last"})).await;
    let joined = until(&mut ws, |f| f["type"] == "error" || f["type"] == "joined").await;
    assert_eq!(joined["type"], "joined", "the 100th room: {joined}");

    let refused = create("b-over".to_owned()).await;
    assert_eq!(
        refused.status,
        403,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_eq!(refused.json()["error"]["code"], "limit_exceeded");
    send(&mut ws, json!({"action":"joinRoom","room":"b-over-too"})).await;
    let err = until(&mut ws, |f| f["type"] == "error" || f["type"] == "joined").await;
    assert_eq!(err["code"], "limit_exceeded", "creating by joining: {err}");
    assert_eq!(err["room"], "b-over-too");

    // Joining a room that exists creates nothing, so it still works; and the cap is per user.
    send(&mut ws, json!({"action":"joinRoom","room":"b0"})).await;
    until(&mut ws, |f| f["type"] == "joined").await;
    let other = format!("Bearer {}", token("someone-else"));
    let body = json!({"id": "b-over", "name": "a room"}).to_string();
    let a = server
        .request("POST", "/rooms", &[("Authorization", &other)], Some(&body))
        .await;
    assert_eq!(a.status, 201);
    let (status, listed) = server.get("/rooms", Some(&token("builder"))).await;
    assert_eq!(status, 200);
    assert_eq!(
        listed["rooms"].as_array().map(Vec::len),
        Some(max_created + 1),
        "nothing was created past the cap"
    );
    server.shutdown().await;
}

/// Registration is limited per client address: ten accounts an hour from one address, then
/// 429 `rate_limited` with `Retry-After`, while logging in goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_abuse_registration_is_rate_limited_per_address() {
    let server = TestLocal::start().await;
    let allowance = defaults().registrations;
    assert_eq!(
        (allowance.max, allowance.window.whole_seconds()),
        (10, 3600)
    );
    for i in 0..allowance.max {
        server.register(&format!("farm{i}")).await;
    }
    let body = json!({"username": "farm-over", "password": hubbub_tests::settings::PASSWORD});
    let a = server
        .request("POST", "/auth/register", &[], Some(&body.to_string()))
        .await;
    assert_eq!(a.status, 429, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["error"]["code"], "rate_limited");
    let retry: u64 = a
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=3600).contains(&retry), "Retry-After {retry}");
    // The account was not made, and existing accounts still sign in.
    server.login("farm0").await;
    let (status, _) = server
        .post(
            "/auth/login",
            json!({"username": "farm-over", "password": hubbub_tests::settings::PASSWORD}),
        )
        .await;
    assert_eq!(status, 401);
    server.shutdown().await;
}

/// How long hubbub-local's authorizer may keep answering from its revocation cache (5 s,
/// `REVOCATION_CACHE_TTL`) plus the one-second granularity of `iat`: after this, a revoked
/// access token is refused at every handshake.
const REVOCATION_SETTLES: Duration = Duration::from_secs(7);

fn field(session: &Value, name: &str) -> String {
    session[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {session}"))
        .to_owned()
}

/// `POST /auth/refresh` (or `logout`) with the refresh token of `session`.
async fn spend(server: &TestLocal, path: &str, session: &Value) -> (u16, Value) {
    server
        .post(
            path,
            json!({"refreshToken": field(session, "refreshToken")}),
        )
        .await
}

/// Connects with an access token and joins `room`.
async fn member_with(server: &TestLocal, access_token: &str, room: &str) -> Client {
    let mut ws = server.ws_token(access_token).await;
    send(&mut ws, json!({"action":"joinRoom","room":room})).await;
    recv_type(&mut ws, "joined", &mut Vec::new()).await;
    ws
}

/// Mallory holds a copy of one of alice's logins. Alice logging out closes every socket of
/// hers (mallory's included, and no one else's), the copied refresh token dies with its
/// family, and the copied access token no longer opens a socket. When mallory later spends a
/// refresh token of alice's other login first, alice's own refresh with it is a replay: her
/// sessions end again, mallory's socket with them.
async fn stolen_login_suite(server: &TestLocal) {
    let laptop = server.register("alice").await;
    let phone = server.login("alice").await;
    server.register("bob").await;
    let mut bob = member_with(
        server,
        &field(&server.login("bob").await, "accessToken"),
        "lobby",
    )
    .await;
    let mut mallory = member_with(server, &field(&laptop, "accessToken"), "lobby").await;
    let mut alice_tabs = [
        member_with(server, &field(&laptop, "accessToken"), "lobby").await,
        member_with(server, &field(&phone, "accessToken"), "lobby").await,
    ];

    let (status, _) = spend(server, "/auth/logout", &laptop).await;
    assert_eq!(status, 204);
    assert_eq!(
        close_code(&mut mallory).await,
        Some(1000),
        "mallory's socket"
    );
    for ws in &mut alice_tabs {
        assert_eq!(close_code(ws).await, Some(1000), "alice's own sockets");
    }
    still_open(&mut bob).await;
    let (status, _) = spend(server, "/auth/refresh", &laptop).await;
    assert_eq!(status, 401, "the copied refresh token died with its family");
    tokio::time::sleep(REVOCATION_SETTLES).await;
    for session in [&laptop, &phone] {
        let url = format!(
            "{}/?token={}",
            server.ws_url(),
            field(session, "accessToken")
        );
        assert_eq!(refused_status(&url).await, 401, "a revoked access token");
    }

    // Mallory refreshes with the phone's refresh token before alice does.
    let (status, stolen) = spend(server, "/auth/refresh", &phone).await;
    assert_eq!(status, 200, "{stolen}");
    let mut mallory = member_with(server, &field(&stolen, "accessToken"), "lobby").await;
    still_open(&mut mallory).await;
    let (status, replay) = spend(server, "/auth/refresh", &phone).await;
    assert_eq!(status, 401, "{replay}");
    assert_eq!(
        close_code(&mut mallory).await,
        Some(1000),
        "the replay ends mallory's socket"
    );
    let (status, _) = spend(server, "/auth/refresh", &stolen).await;
    assert_eq!(status, 401, "and the family mallory renewed is revoked");
    still_open(&mut bob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_abuse_logout_closes_the_users_sockets() {
    let server = TestLocal::start().await;
    stolen_login_suite(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_abuse_logout_closes_the_users_sockets_over_postgres_and_dynamodb() {
    let server = TestLocal::over(Stores::PostgresAndDynamo, TestLocal::config()).await;
    stolen_login_suite(&server).await;
    server.shutdown().await;
}
