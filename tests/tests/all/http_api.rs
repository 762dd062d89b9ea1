//! The HTTP API (functions/http-api) fed API Gateway HTTP API events built from the samples in
//! `events/http-*.json`, on the in-memory stores and on PostgreSQL; external-issuer tokens are
//! checked against a JWKS served by a real local HTTP server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get as get_route;
use http_api::{HttpDeps, Passwords};
use hubbub_core::auth::{
    Claims, ExternalVerifier, HttpJwksSource, JwtIssuer, JwtVerifier, TokenVerifier,
};
use hubbub_core::config::{AccountsConfig, Argon2Config, ExternalIssuerConfig, JwtConfig};
use hubbub_core::protocol::{ClientMsgId, MessageBody};
use hubbub_core::store::memory::{MemoryHistoryStore, MemoryUserStore};
use hubbub_core::store::postgres::{PostgresHistoryStore, PostgresUserStore};
use hubbub_core::store::{HistoryStore, NewMessage};
use hubbub_tests::contract::{room, user};
use hubbub_tests::events::{self, Http};
use hubbub_tests::fresh_history;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lambda_http::Body;
use serde_json::{Value, json};

const SECRET: &str = "http-api-tests-secret-at-least-32-bytes-long";
const EXTERNAL_ISSUER: &str = "https://idp.example.test/";
const EXTERNAL_AUDIENCE: &str = "hubbub-web";
const PASSWORD: &str = "correct horse battery";

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn jwt_config() -> JwtConfig {
    JwtConfig {
        secret: SECRET.as_bytes().to_vec(),
        issuer: "hubbub".into(),
        audience: "hubbub".into(),
        leeway: Duration::from_secs(30),
    }
}

/// Cheap argon2 costs: the tests hash many passwords on a shared CPU.
fn accounts_config() -> AccountsConfig {
    AccountsConfig {
        argon2: Argon2Config {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        },
        login_max_failures: 3,
        ..AccountsConfig::from_lookup(&|_| None).expect("defaults")
    }
}

// --- a JWKS endpoint ----------------------------------------------------------------------

/// What the key-set server publishes, how often it was fetched, and the status it answers.
type JwksState = Arc<Mutex<(Vec<u8>, usize, u16)>>;

/// A real HTTP server publishing a key set, counting fetches.
#[derive(Clone)]
struct JwksServer {
    url: String,
    state: JwksState,
}

async fn serve_jwks(State(s): State<JwksState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut st = s.lock().expect("jwks lock");
    st.1 += 1;
    let status = axum::http::StatusCode::from_u16(st.2).expect("status");
    (status, [("content-type", "application/json")], st.0.clone()).into_response()
}

impl JwksServer {
    async fn start() -> Self {
        let state = Arc::new(Mutex::new((fixture("jwks.json"), 0, 200)));
        let app = Router::new()
            .route("/.well-known/jwks.json", get_route(serve_jwks))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind jwks");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/.well-known/jwks.json"),
            state,
        }
    }

    fn fetches(&self) -> usize {
        self.state.lock().expect("jwks lock").1
    }

    fn publish(&self, doc: Vec<u8>) {
        self.state.lock().expect("jwks lock").0 = doc;
    }

    fn fail_with(&self, status: u16) {
        self.state.lock().expect("jwks lock").2 = status;
    }

    fn verifier(&self, refetch: Duration) -> TokenVerifier {
        let cfg = ExternalIssuerConfig {
            issuer: EXTERNAL_ISSUER.into(),
            audience: EXTERNAL_AUDIENCE.into(),
            jwks_url: self.url.clone(),
            refetch_min_interval: refetch,
            leeway: Duration::from_secs(30),
        };
        let source = Arc::new(HttpJwksSource::new(&self.url).expect("jwks source"));
        TokenVerifier::new(
            JwtVerifier::hs256(&jwt_config()).expect("verifier"),
            Some(ExternalVerifier::new(cfg, source)),
        )
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn external_claims() -> Value {
    let now = now();
    json!({"sub": "ext|4711", "name": "Erin", "iat": now, "nbf": now, "exp": now + 600,
           "iss": EXTERNAL_ISSUER, "aud": EXTERNAL_AUDIENCE})
}

fn sign_external(alg: Algorithm, kid: &str, key_file: &str, claims: &Value) -> String {
    let pem = fixture(key_file);
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).expect("ec key"),
        _ => EncodingKey::from_rsa_pem(&pem).expect("rsa key"),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

// --- harness -------------------------------------------------------------------------------

fn deps_over(
    users: Arc<dyn UsersAndAttempts>,
    history: Arc<dyn HistoryStore>,
    verifier: TokenVerifier,
    config: AccountsConfig,
) -> HttpDeps {
    HttpDeps {
        users: users.clone().as_users(),
        attempts: users.as_attempts(),
        history,
        verifier: Arc::new(verifier),
        issuer: Arc::new(JwtIssuer::hs256(&jwt_config()).expect("issuer")),
        passwords: Passwords::new(&config.argon2).expect("passwords"),
        config,
    }
}

/// Both ports of one adapter, as trait objects.
trait UsersAndAttempts: Send + Sync {
    fn as_users(self: Arc<Self>) -> Arc<dyn hubbub_core::store::UserStore>;
    fn as_attempts(self: Arc<Self>) -> Arc<dyn hubbub_core::store::AttemptStore>;
}

impl UsersAndAttempts for MemoryUserStore {
    fn as_users(self: Arc<Self>) -> Arc<dyn hubbub_core::store::UserStore> {
        self
    }
    fn as_attempts(self: Arc<Self>) -> Arc<dyn hubbub_core::store::AttemptStore> {
        self
    }
}

impl UsersAndAttempts for PostgresUserStore {
    fn as_users(self: Arc<Self>) -> Arc<dyn hubbub_core::store::UserStore> {
        self
    }
    fn as_attempts(self: Arc<Self>) -> Arc<dyn hubbub_core::store::AttemptStore> {
        self
    }
}

fn own_verifier() -> TokenVerifier {
    JwtVerifier::hs256(&jwt_config()).expect("verifier").into()
}

fn memory_deps_with(config: AccountsConfig) -> HttpDeps {
    deps_over(
        Arc::new(MemoryUserStore::new()),
        Arc::new(MemoryHistoryStore::new()),
        own_verifier(),
        config,
    )
}

fn memory_deps() -> HttpDeps {
    memory_deps_with(accounts_config())
}

async fn postgres_deps_with(config: AccountsConfig) -> HttpDeps {
    let (history, _) = fresh_history().await;
    let users = Arc::new(PostgresUserStore::new(history.pool()));
    deps_over(users, Arc::new(history), own_verifier(), config)
}

/// An answer, taken apart.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    headers: lambda_http::http::HeaderMap,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the error shape, the code and that the request id is echoed.
    fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "{self:?}");
        let e = &self.body["error"];
        assert_eq!(e["code"], code, "{self:?}");
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{self:?}"
        );
        assert!(
            e["requestId"].as_str().is_some_and(|r| !r.is_empty()),
            "{self:?}"
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        self
    }

    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }
}

async fn call(deps: &HttpDeps, ev: Http) -> Answer {
    let resp = http_api::handle(deps, ev.build()).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).expect("answer is JSON"),
        Body::Binary(b) => serde_json::from_slice(b).expect("answer is JSON"),
        _ => Value::Null,
    };
    Answer {
        status,
        body,
        headers,
    }
}

/// A session as the API returned it.
#[derive(Debug, Clone)]
struct Session {
    user_id: String,
    access: String,
    refresh: String,
}

fn session_of(a: &Answer) -> Session {
    let b = &a.body;
    assert!(b["accessToken"].is_string(), "{a:?}");
    assert!(b["refreshToken"].is_string(), "{a:?}");
    assert_eq!(b["expiresIn"], 900, "{a:?}");
    Session {
        user_id: b["user"]["id"].as_str().expect("user id").to_owned(),
        access: b["accessToken"].as_str().expect("access").to_owned(),
        refresh: b["refreshToken"].as_str().expect("refresh").to_owned(),
    }
}

fn credentials(name: &str, password: &str) -> Value {
    json!({"username": name, "password": password})
}

async fn register(deps: &HttpDeps, name: &str) -> Session {
    let a = call(
        deps,
        Http::sample("http-register").json(credentials(name, PASSWORD)),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.body["user"]["name"], name);
    session_of(&a)
}

async fn login(deps: &HttpDeps, name: &str, password: &str, ip: &str) -> Answer {
    call(
        deps,
        Http::sample("http-login")
            .json(credentials(name, password))
            .source_ip(ip),
    )
    .await
}

async fn refresh(deps: &HttpDeps, token: &str) -> Answer {
    call(
        deps,
        Http::sample("http-refresh").json(json!({"refreshToken": token})),
    )
    .await
}

fn get(path: &str, token: &str) -> Http {
    Http::sample("http-list-rooms")
        .route("GET", path)
        .bearer(token)
}

fn post(path: &str, token: &str, body: Value) -> Http {
    Http::sample("http-create-room")
        .route("POST", path)
        .bearer(token)
        .json(body)
}

// --- sample events -------------------------------------------------------------------------

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
        9,
        "a new HTTP sample event needs a line in this test: {files:?}"
    );
}

// --- accounts ------------------------------------------------------------------------------

async fn accounts_suite(deps: &HttpDeps) {
    // register
    let alice = register(deps, "alice").await;
    call(
        deps,
        Http::sample("http-register").json(credentials("alice", "another password")),
    )
    .await
    .assert_error(409, "conflict");
    for (body, needle) in [
        (credentials("al", PASSWORD), "`username`"),
        (credentials("al ice", PASSWORD), "`username`"),
        (credentials(&"a".repeat(33), PASSWORD), "`username`"),
        (credentials("bob", "short"), "`password`"),
        (credentials("bob", &"p".repeat(129)), "`password`"),
        (json!({"username": "bob"}), "missing field `password`"),
        (
            json!({"username": "bob", "password": 12345678}),
            "`password` must be a string",
        ),
        (
            json!({"username": "bob", "password": PASSWORD, "admin": true}),
            "unknown field `admin`",
        ),
        (json!(["bob", PASSWORD]), "JSON object"),
    ] {
        let a = call(deps, Http::sample("http-register").json(body.clone())).await;
        a.assert_error(400, "bad_request");
        assert!(a.message().contains(needle), "{body}: {a:?}");
        assert!(!a.message().contains("12345678"), "no input echo: {a:?}");
    }
    for raw in ["{\"username\":", "", "null"] {
        call(deps, Http::sample("http-register").body(raw))
            .await
            .assert_error(400, "bad_request");
    }

    // login: one answer for every wrong credential
    let ok = login(deps, "alice", PASSWORD, "198.51.100.1").await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let via_login = session_of(&ok);
    assert_eq!(via_login.user_id, alice.user_id);
    let wrong = login(deps, "alice", "wrong password!", "198.51.100.2").await;
    wrong.assert_error(401, "unauthorized");
    let unknown = login(deps, "mallory", PASSWORD, "198.51.100.3").await;
    unknown.assert_error(401, "unauthorized");
    assert_eq!(wrong.message(), unknown.message());
    let odd = login(deps, "not a valid name!", PASSWORD, "198.51.100.4").await;
    odd.assert_error(401, "unauthorized");
    assert_eq!(odd.message(), wrong.message());

    // refresh rotates; the spent token is refused and takes its successors down with it
    let r1 = refresh(deps, &via_login.refresh).await;
    assert_eq!(r1.status, 200, "{r1:?}");
    let s1 = session_of(&r1);
    assert_ne!(s1.refresh, via_login.refresh);
    assert_eq!(s1.user_id, alice.user_id);
    let r2 = refresh(deps, &s1.refresh).await;
    assert_eq!(r2.status, 200, "{r2:?}");
    let s2 = session_of(&r2);
    refresh(deps, &via_login.refresh)
        .await
        .assert_error(401, "unauthorized");
    refresh(deps, &s2.refresh)
        .await
        .assert_error(401, "unauthorized");
    // the registration's family is another login: untouched
    let r3 = refresh(deps, &alice.refresh).await;
    assert_eq!(r3.status, 200, "{r3:?}");
    let s3 = session_of(&r3);
    refresh(deps, "not-a-token")
        .await
        .assert_error(401, "unauthorized");
    refresh(deps, &"x".repeat(500))
        .await
        .assert_error(401, "unauthorized");
    call(deps, Http::sample("http-refresh").json(json!({})))
        .await
        .assert_error(400, "bad_request");

    // logout revokes; logging out again is fine
    let logout = |t: &str| {
        call(
            deps,
            Http::sample("http-logout").json(json!({"refreshToken": t})),
        )
    };
    assert_eq!(logout(&s3.refresh).await.status, 204);
    assert_eq!(logout(&s3.refresh).await.status, 204);
    assert_eq!(logout("never-issued").await.status, 204);
    let a = call(
        deps,
        Http::sample("http-logout").json(json!({"token": "x"})),
    )
    .await;
    a.assert_error(400, "bad_request");
    assert!(a.message().contains("`token`"), "{a:?}");
    refresh(deps, &s3.refresh)
        .await
        .assert_error(401, "unauthorized");

    // the access token works on authenticated routes
    let a = call(deps, get("/rooms", &s1.access)).await;
    assert_eq!(a.status, 200, "{a:?}");
}

#[tokio::test]
async fn accounts_on_memory_stores() {
    accounts_suite(&memory_deps()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_on_postgres() {
    accounts_suite(&postgres_deps_with(accounts_config()).await).await;
}

async fn rate_limit_suite(deps: &HttpDeps) {
    register(deps, "alice").await;
    register(deps, "bob").await;
    register(deps, "carol").await;
    // Three failures for alice from one address: the limit (3) is reached.
    for _ in 0..3 {
        login(deps, "alice", "wrong password!", "192.0.2.1")
            .await
            .assert_error(401, "unauthorized");
    }
    // Now even the right password is refused, from any address (per username) ...
    for ip in ["192.0.2.1", "192.0.2.99"] {
        let a = login(deps, "alice", PASSWORD, ip).await;
        a.assert_error(429, "rate_limited");
        let retry: u64 = a
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After");
        assert!((1..=900).contains(&retry), "{retry}");
    }
    // ... and any username from that address (per IP).
    login(deps, "bob", PASSWORD, "192.0.2.1")
        .await
        .assert_error(429, "rate_limited");
    assert_eq!(login(deps, "bob", PASSWORD, "192.0.2.2").await.status, 200);
    // Unknown usernames are counted like real ones.
    for i in 0..3 {
        login(deps, "nobody", "whatever!", &format!("192.0.2.{}", 10 + i))
            .await
            .assert_error(401, "unauthorized");
    }
    login(deps, "nobody", "whatever!", "192.0.2.20")
        .await
        .assert_error(429, "rate_limited");
    // A success clears the username's count.
    for i in 0..2 {
        login(
            deps,
            "carol",
            "wrong password!",
            &format!("192.0.2.{}", 30 + i),
        )
        .await
        .assert_error(401, "unauthorized");
    }
    assert_eq!(
        login(deps, "carol", PASSWORD, "192.0.2.40").await.status,
        200
    );
    for i in 0..2 {
        login(
            deps,
            "carol",
            "wrong password!",
            &format!("192.0.2.{}", 50 + i),
        )
        .await
        .assert_error(401, "unauthorized");
    }
    assert_eq!(
        login(deps, "carol", PASSWORD, "192.0.2.60").await.status,
        200
    );
}

#[tokio::test]
async fn failed_logins_are_rate_limited_on_memory_stores() {
    rate_limit_suite(&memory_deps()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited_on_postgres() {
    rate_limit_suite(&postgres_deps_with(accounts_config()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_cost_as_much_as_wrong_passwords() {
    // Costs high enough that a skipped verification would stand out (a few ms per hash).
    let deps = memory_deps_with(AccountsConfig {
        argon2: Argon2Config {
            memory_kib: 8 * 1024,
            iterations: 2,
            parallelism: 1,
        },
        login_max_failures: 1000,
        ..accounts_config()
    });
    register(&deps, "alice").await;
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        login(&deps, "alice", "wrong password!", &format!("192.0.2.{i}")).await;
        wrong.push(t.elapsed());
        let t = Instant::now();
        login(
            &deps,
            "nobody-here",
            "wrong password!",
            &format!("192.0.2.{i}"),
        )
        .await;
        unknown.push(t.elapsed());
    }
    wrong.sort();
    unknown.sort();
    let (w, u) = (wrong[2], unknown[2]);
    assert!(
        u * 3 >= w && w * 3 >= u,
        "medians differ too much: wrong password {w:?}, unknown user {u:?}"
    );
}

// --- rooms and history ---------------------------------------------------------------------

async fn rooms_suite(deps: &HttpDeps) {
    let alice = register(deps, "alice").await;
    let bob = register(deps, "bob").await;

    // create
    let lobby = call(
        deps,
        post(
            "/rooms",
            &alice.access,
            json!({"id": "lobby", "name": "The lobby"}),
        ),
    )
    .await;
    assert_eq!(lobby.status, 201, "{lobby:?}");
    assert_eq!(lobby.body["id"], "lobby");
    assert_eq!(lobby.body["name"], "The lobby");
    assert_eq!(lobby.body["private"], false);
    assert!(
        time::OffsetDateTime::parse(
            lobby.body["createdAt"].as_str().expect("createdAt"),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
    call(
        deps,
        post(
            "/rooms",
            &bob.access,
            json!({"id": "lobby", "name": "Mine"}),
        ),
    )
    .await
    .assert_error(409, "conflict");
    for (body, needle) in [
        (json!({"id": "Lobby!", "name": "x"}), "`id`"),
        (json!({"name": "x"}), "missing field `id`"),
        (json!({"id": "x"}), "missing field `name`"),
        (json!({"id": "x", "name": "   "}), "`name`"),
        (json!({"id": "x", "name": "n".repeat(101)}), "`name`"),
        (
            json!({"id": "x", "name": "x", "private": "yes"}),
            "`private`",
        ),
    ] {
        let a = call(deps, post("/rooms", &alice.access, body.clone())).await;
        a.assert_error(400, "bad_request");
        assert!(a.message().contains(needle), "{body}: {a:?}");
    }
    let secret = call(
        deps,
        post(
            "/rooms",
            &alice.access,
            json!({"id": "secret", "name": "Secret", "private": true}),
        ),
    )
    .await;
    assert_eq!(
        (secret.status, &secret.body["private"]),
        (201, &json!(true))
    );

    // list: private rooms only for members
    let ids = |a: &Answer| -> Vec<String> {
        a.body["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let mine = call(deps, get("/rooms", &alice.access)).await;
    assert_eq!(ids(&mine), vec!["lobby", "secret"]);
    assert_eq!(mine.body["rooms"][0], lobby.body, "list and create agree");
    assert_eq!(
        ids(&call(deps, get("/rooms", &bob.access)).await),
        vec!["lobby"]
    );

    // a non-member may neither read nor add members
    call(deps, get("/rooms/secret/messages", &bob.access))
        .await
        .assert_error(403, "forbidden");
    call(
        deps,
        post(
            "/rooms/secret/members",
            &bob.access,
            json!({"userId": bob.user_id}),
        ),
    )
    .await
    .assert_error(403, "forbidden");
    call(
        deps,
        post(
            "/rooms/nowhere/members",
            &alice.access,
            json!({"userId": bob.user_id}),
        ),
    )
    .await
    .assert_error(404, "not_found");
    call(
        deps,
        post(
            "/rooms/secret/members",
            &alice.access,
            json!({"user": bob.user_id}),
        ),
    )
    .await
    .assert_error(400, "bad_request");
    // a member adds bob
    let added = call(
        deps,
        post(
            "/rooms/secret/members",
            &alice.access,
            json!({"userId": bob.user_id}),
        ),
    )
    .await;
    assert_eq!(
        (added.status, &added.body),
        (204, &Value::Null),
        "{added:?}"
    );
    assert_eq!(
        ids(&call(deps, get("/rooms", &bob.access)).await),
        vec!["lobby", "secret"]
    );

    // history by keyset
    for i in 1..=7 {
        deps.history
            .commit_message(&NewMessage {
                room: room("secret"),
                sender: user("alice"),
                body: MessageBody::parse(format!("m{i}")).expect("body"),
                client_msg_id: ClientMsgId::parse(format!("c{i}")).expect("cmid"),
            })
            .await
            .expect("commit");
    }
    let page = |query: &str| {
        call(
            deps,
            get("/rooms/secret/messages", &bob.access).query(query),
        )
    };
    let seqs = |a: &Answer| -> Vec<i64> {
        a.body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["seq"].as_i64().expect("seq"))
            .collect()
    };
    let latest = page("limit=3").await;
    assert_eq!(
        (seqs(&latest), &latest.body["hasMore"]),
        (vec![5, 6, 7], &json!(true))
    );
    assert_eq!(latest.body["messages"][2]["body"], "m7");
    assert_eq!(latest.body["messages"][2]["clientMsgId"], "c7");
    let back = page("before=5&limit=3").await;
    assert_eq!(
        (seqs(&back), &back.body["hasMore"]),
        (vec![2, 3, 4], &json!(true))
    );
    let after = page("after=5").await;
    assert_eq!(
        (seqs(&after), &after.body["hasMore"]),
        (vec![6, 7], &json!(false))
    );
    assert_eq!(seqs(&page("").await), (1..=7).collect::<Vec<_>>());
    for (query, needle) in [
        ("limit=0", "`limit`"),
        ("limit=101", "`limit`"),
        ("before=abc", "`before`"),
        ("after=1.5", "`after`"),
        ("before=3&after=1", "at most one"),
    ] {
        let a = page(query).await;
        a.assert_error(400, "bad_request");
        assert!(a.message().contains(needle), "{query}: {a:?}");
    }
    call(deps, get("/rooms/nowhere/messages", &bob.access))
        .await
        .assert_error(404, "not_found");
    call(deps, get("/rooms/Not%20A%20Room/messages", &bob.access))
        .await
        .assert_error(400, "bad_request");

    // every authenticated route wants a bearer token
    for ev in [
        get("/rooms", "x"),
        post("/rooms", "x", json!({"id": "y", "name": "y"})),
        post("/rooms/lobby/members", "x", json!({"userId": "u"})),
        get("/rooms/lobby/messages", "x"),
    ] {
        let a = call(deps, ev.clone()).await;
        a.assert_error(401, "unauthorized");
        assert_eq!(a.header("www-authenticate"), Some("Bearer"));
        call(deps, ev.header("authorization", None))
            .await
            .assert_error(401, "unauthorized");
    }
    call(
        deps,
        get("/rooms", "x").header("authorization", Some(&format!("Basic {}", alice.access))),
    )
    .await
    .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn rooms_and_history_on_memory_stores() {
    rooms_suite(&memory_deps()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_history_on_postgres() {
    rooms_suite(&postgres_deps_with(accounts_config()).await).await;
}

// --- errors --------------------------------------------------------------------------------

#[tokio::test]
async fn every_failure_has_the_error_shape_and_leaks_nothing() {
    let deps = memory_deps();
    let alice = register(&deps, "alice").await;

    // the request id comes back
    let a = call(
        &deps,
        Http::sample("http-login")
            .json(credentials("alice", "nope nope"))
            .request_id("req-id-0042="),
    )
    .await;
    a.assert_error(401, "unauthorized");
    assert_eq!(a.body["error"]["requestId"], "req-id-0042=");

    // too large: 413 before parsing (the limit is 16 KiB)
    let big = json!({"username": "alice", "password": "p".repeat(20 * 1024)});
    call(&deps, Http::sample("http-login").json(big))
        .await
        .assert_error(413, "payload_too_large");

    // unknown routes and methods
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/auth/login"),
        ("DELETE", "/rooms"),
        ("GET", "/rooms/lobby/members"),
    ] {
        call(
            &deps,
            Http::sample("http-health")
                .route(method, path)
                .bearer(&alice.access),
        )
        .await
        .assert_error(404, "not_found");
    }

    // a named stage in front of the path is not part of the route
    let staged = call(
        &deps,
        Http::sample("http-health")
            .route("GET", "/prod/health")
            .with(|v| v["requestContext"]["stage"] = json!("prod")),
    )
    .await;
    assert_eq!(staged.status, 200, "{staged:?}");

    // a database that cannot be reached: 503, and not a word about it
    let down = PostgresHistoryStore::connect(
        &hubbub_core::config::PostgresConfig {
            url: "postgres://hubbub@127.0.0.1:9/secretdb".into(),
        },
        1,
    )
    .expect("pool");
    let broken = deps_over(
        Arc::new(PostgresUserStore::new(down.pool())),
        Arc::new(down),
        own_verifier(),
        accounts_config(),
    );
    for ev in [
        Http::sample("http-register").json(credentials("dave", PASSWORD)),
        get("/rooms", &alice.access),
    ] {
        let a = call(&broken, ev).await;
        a.assert_error(503, "unavailable");
        let text = a.body.to_string();
        for secret in ["127.0.0.1", "secretdb", "refused", "postgres"] {
            assert!(!text.contains(secret), "leaks {secret}: {text}");
        }
    }
}

// --- tokens: external issuers and attacks --------------------------------------------------

/// A token an attacker might try, and whether the authorizer answers Deny (403) rather than
/// Unauthorized (401).
struct Attack {
    name: &'static str,
    token: String,
    deny: bool,
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn attacks() -> Vec<Attack> {
    let issuer = JwtIssuer::hs256(&jwt_config()).expect("issuer");
    let base = issuer.claims("u-alice", "alice", time::Duration::minutes(15));
    let now = now();
    let own = |c: Claims| issuer.sign(&c).expect("sign");
    let good = own(base.clone());
    let parts: Vec<&str> = good.split('.').collect();
    let tampered_payload = b64(serde_json::to_string(&Claims {
        sub: "u-admin".into(),
        ..base.clone()
    })
    .expect("json")
    .as_bytes());
    let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    // HS256 "signed" with the issuer's RSA public key: the classic algorithm confusion.
    let confused = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        jsonwebtoken::encode(
            &header,
            &external_claims(),
            &EncodingKey::from_secret(&fixture("rsa-public.pem")).expect("hmac key"),
        )
        .expect("sign")
    };
    let mut ext_expired = external_claims();
    ext_expired["exp"] = json!(now - 300);
    let mut ext_wrong_aud = external_claims();
    ext_wrong_aud["aud"] = json!("someone-else");
    let mut ext_wrong_iss = external_claims();
    ext_wrong_iss["iss"] = json!("https://evil.example.test/");
    let ext_tampered = {
        let t = sign_external(
            Algorithm::RS256,
            "rsa-1",
            "rsa-private.pem",
            &external_claims(),
        );
        let p: Vec<&str> = t.split('.').collect();
        let mut c = external_claims();
        c["sub"] = json!("ext|admin");
        format!("{}.{}.{}", p[0], b64(c.to_string().as_bytes()), p[2])
    };
    vec![
        Attack {
            name: "alg none, no signature",
            token: format!("{none_header}.{}.", parts[1]),
            deny: false,
        },
        Attack {
            name: "alg none, stolen signature",
            token: format!("{none_header}.{}.{}", parts[1], parts[2]),
            deny: false,
        },
        Attack {
            name: "HS256 signed with the RS public key",
            token: confused,
            deny: false,
        },
        Attack {
            name: "expired",
            token: own(Claims {
                exp: now - 300,
                ..base.clone()
            }),
            deny: false,
        },
        Attack {
            name: "not yet valid",
            token: own(Claims {
                nbf: now + 600,
                ..base.clone()
            }),
            deny: false,
        },
        Attack {
            name: "wrong iss",
            token: own(Claims {
                iss: "someone-else".into(),
                ..base.clone()
            }),
            deny: true,
        },
        Attack {
            name: "wrong aud",
            token: own(Claims {
                aud: "another-api".into(),
                ..base.clone()
            }),
            deny: true,
        },
        Attack {
            name: "tampered payload",
            token: format!("{}.{tampered_payload}.{}", parts[0], parts[2]),
            deny: false,
        },
        Attack {
            name: "unknown kid",
            token: sign_external(
                Algorithm::RS256,
                "rsa-404",
                "rsa-rotated-private.pem",
                &external_claims(),
            ),
            deny: false,
        },
        Attack {
            name: "known kid, other key",
            token: sign_external(
                Algorithm::RS256,
                "rsa-1",
                "rsa-rotated-private.pem",
                &external_claims(),
            ),
            deny: false,
        },
        Attack {
            name: "RS key named for an ES256 token",
            token: sign_external(
                Algorithm::ES256,
                "rsa-1",
                "ec-private.pem",
                &external_claims(),
            ),
            deny: false,
        },
        Attack {
            name: "external, expired",
            token: sign_external(Algorithm::RS256, "rsa-1", "rsa-private.pem", &ext_expired),
            deny: false,
        },
        Attack {
            name: "external, wrong aud",
            token: sign_external(Algorithm::ES256, "ec-1", "ec-private.pem", &ext_wrong_aud),
            deny: true,
        },
        Attack {
            name: "external, wrong iss",
            token: sign_external(Algorithm::RS256, "rsa-1", "rsa-private.pem", &ext_wrong_iss),
            deny: true,
        },
        Attack {
            name: "external, tampered payload",
            token: ext_tampered,
            deny: false,
        },
    ]
}

#[tokio::test]
async fn jwt_attacks_are_refused_on_http_and_at_the_authorizer() {
    let jwks = JwksServer::start().await;
    let verifier = Arc::new(jwks.verifier(Duration::from_secs(3600)));
    let mut deps = memory_deps();
    deps.verifier = verifier.clone();

    // The real thing passes both doors: own HS256, external RS256 and ES256.
    let own = JwtIssuer::hs256(&jwt_config())
        .expect("issuer")
        .issue("u-alice", "alice", time::Duration::minutes(5))
        .expect("token");
    for (name, token, user) in [
        ("own HS256", own, "u-alice"),
        (
            "external RS256",
            sign_external(
                Algorithm::RS256,
                "rsa-1",
                "rsa-private.pem",
                &external_claims(),
            ),
            "ext|4711",
        ),
        (
            "external ES256",
            sign_external(
                Algorithm::ES256,
                "ec-1",
                "ec-private.pem",
                &external_claims(),
            ),
            "ext|4711",
        ),
    ] {
        let a = call(&deps, get("/rooms", &token)).await;
        assert_eq!(a.status, 200, "{name}: {a:?}");
        for sample in ["authorizer-query-token", "authorizer-subprotocol"] {
            let resp = authorizer::handle(&verifier, &events::authorizer(sample, Some(&token)))
                .await
                .unwrap_or_else(|e| panic!("{name}/{sample}: {e}"));
            let v = serde_json::to_value(&resp).expect("policy");
            assert_eq!(
                v["policyDocument"]["Statement"][0]["Effect"], "Allow",
                "{name}"
            );
            assert_eq!(v["context"]["userId"], user, "{name}");
        }
    }
    // External users can create and use rooms like anyone.
    let ext = sign_external(
        Algorithm::ES256,
        "ec-1",
        "ec-private.pem",
        &external_claims(),
    );
    let made = call(
        &deps,
        post("/rooms", &ext, json!({"id": "ext-room", "name": "Ext"})),
    )
    .await;
    assert_eq!(made.status, 201, "{made:?}");

    for attack in attacks() {
        let a = call(&deps, get("/rooms", &attack.token)).await;
        a.assert_error(401, "unauthorized");
        assert!(
            !a.message().contains("signature") && !a.message().contains("kid"),
            "{}: the reason stays in the log: {a:?}",
            attack.name
        );
        for sample in ["authorizer-query-token", "authorizer-subprotocol"] {
            let req = events::authorizer(sample, Some(&attack.token));
            match authorizer::handle(&verifier, &req).await {
                Err(e) => {
                    assert!(!attack.deny, "{}/{sample}: expected Deny", attack.name);
                    assert_eq!(e.to_string(), "Unauthorized", "{}", attack.name);
                }
                Ok(resp) => {
                    assert!(attack.deny, "{}/{sample}: allowed!", attack.name);
                    let v = serde_json::to_value(&resp).expect("policy");
                    assert_eq!(
                        v["policyDocument"]["Statement"][0]["Effect"], "Deny",
                        "{}",
                        attack.name
                    );
                }
            }
        }
    }
    // All of that took one key-set fetch: the unknown kid did not refetch within the hour.
    assert_eq!(jwks.fetches(), 1);

    // Refresh-token reuse (the refresh token is an HTTP-only credential).
    let s = register(&deps, "victim").await;
    let first = refresh(&deps, &s.refresh).await;
    assert_eq!(first.status, 200);
    let next = session_of(&first);
    refresh(&deps, &s.refresh)
        .await
        .assert_error(401, "unauthorized");
    refresh(&deps, &next.refresh)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn the_key_set_is_cached_and_refetched_on_an_unknown_kid() {
    let jwks = JwksServer::start().await;
    let claims = external_claims();
    let old_key = sign_external(Algorithm::RS256, "rsa-1", "rsa-private.pem", &claims);
    let new_key = sign_external(
        Algorithm::RS256,
        "rsa-2",
        "rsa-rotated-private.pem",
        &claims,
    );

    // Interval 0: an unknown kid refetches at once, so a rotation is picked up.
    let eager = jwks.verifier(Duration::ZERO);
    assert!(eager.verify(&old_key).await.is_ok());
    assert!(eager.verify(&old_key).await.is_ok());
    assert_eq!(jwks.fetches(), 1, "cached");
    jwks.publish(fixture("jwks-rotated.json"));
    let id = eager.verify(&new_key).await.expect("rotated key");
    assert_eq!(id.user_id, "ext|4711");
    assert_eq!(id.user_name, "Erin");
    assert_eq!(jwks.fetches(), 2, "refetched for the new kid");
    assert!(eager.verify(&old_key).await.is_err(), "the old key is gone");

    // A long interval: made-up kids cannot make us hammer the issuer.
    let fetches = jwks.fetches();
    let patient = jwks.verifier(Duration::from_secs(3600));
    assert!(patient.verify(&new_key).await.is_ok());
    for i in 0..5 {
        let junk = sign_external(
            Algorithm::RS256,
            &format!("junk-{i}"),
            "rsa-rotated-private.pem",
            &claims,
        );
        assert!(patient.verify(&junk).await.is_err());
    }
    assert_eq!(jwks.fetches(), fetches + 1);

    // The issuer is down: its tokens get 503 on HTTP (retry later), Unauthorized at the
    // authorizer; hubbub's own tokens are unaffected.
    jwks.fail_with(500);
    let down = Arc::new(jwks.verifier(Duration::ZERO));
    let mut deps = memory_deps();
    deps.verifier = down.clone();
    call(&deps, get("/rooms", &new_key))
        .await
        .assert_error(503, "unavailable");
    let req = events::authorizer("authorizer-query-token", Some(&new_key));
    assert!(authorizer::handle(&down, &req).await.is_err());
    let own = JwtIssuer::hs256(&jwt_config())
        .expect("issuer")
        .issue("u-alice", "alice", time::Duration::minutes(5))
        .expect("token");
    assert_eq!(call(&deps, get("/rooms", &own)).await.status, 200);
}

// --- the whole journey -----------------------------------------------------------------------

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
    full_flow(&postgres_deps_with(accounts_config()).await).await;
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
    assert_eq!(paths.len(), HttpRoute::ALL.len() - 1, "`/rooms` once");
    assert!(paths.contains(&"/rooms/{room}/messages"));
}
