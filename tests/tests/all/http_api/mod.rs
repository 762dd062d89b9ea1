//! The HTTP API (functions/http-api) fed API Gateway HTTP API events built from the samples in
//! `events/http-*.json`, on the in-memory stores and on PostgreSQL; external-issuer tokens are
//! checked against a JWKS served by a real local HTTP server.
//!
//! This module is the harness (stores, a JWKS server, event builders); the tests are in its
//! submodules, one per topic.

mod accounts;
mod errors;
mod journey;
mod login_limit;
mod names;
mod people;
mod rooms;
mod samples;
mod tokens;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get as get_route;
use http_api::{AccountsConfig, Argon2Config};
use http_api::{HttpDeps, Passwords};
use hubbub_core::auth::{
    Claims, ExternalVerifier, HttpJwksSource, JwtIssuer, JwtVerifier, TokenVerifier,
};
use hubbub_core::config::{ExternalIssuerConfig, JwtConfig};
use hubbub_core::protocol::{ClientMsgId, MessageBody};
use hubbub_core::store::memory::{MemoryHistoryStore, MemoryUserStore};
use hubbub_core::store::postgres::{Database, PostgresUserStore};
use hubbub_core::store::{HistoryStore, NewMessage};
use hubbub_tests::contract::{room, user};
use hubbub_tests::events::{self, Http};
use hubbub_tests::migrated_database;
use hubbub_tests::settings::{self, PASSWORD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lambda_http::Body;
use serde_json::{Value, json};

const EXTERNAL_ISSUER: &str = "https://idp.example.test/";
const EXTERNAL_AUDIENCE: &str = "hubbub-web";

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn jwt_config() -> JwtConfig {
    settings::jwt_config("hubbub")
}

/// Cheap argon2 costs and three failures before the login limit.
fn accounts_config() -> AccountsConfig {
    AccountsConfig {
        argon2: settings::cheap_argon2(),
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
        let addr = hubbub_tests::serve(app).await;
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
    hubbub_core::auth::crypto::install();
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

/// The HTTP API's dependencies, and the whole history store behind them: the API only reads
/// rooms and history ([`hubbub_core::store::RoomStore`]), the suites also commit messages to
/// read back. Derefs to [`HttpDeps`], so every helper takes it as the API's deps.
struct TestApi {
    deps: HttpDeps,
    messages: Arc<dyn HistoryStore>,
}

impl std::ops::Deref for TestApi {
    type Target = HttpDeps;
    fn deref(&self) -> &HttpDeps {
        &self.deps
    }
}

impl std::ops::DerefMut for TestApi {
    fn deref_mut(&mut self) -> &mut HttpDeps {
        &mut self.deps
    }
}

fn deps_over(
    users: Arc<dyn UsersAndAttempts>,
    history: Arc<dyn HistoryStore>,
    verifier: TokenVerifier,
    config: AccountsConfig,
) -> TestApi {
    let deps = HttpDeps {
        users: users.clone().as_users(),
        attempts: users.as_attempts(),
        history: history.clone(),
        verifier: Arc::new(verifier),
        issuer: Arc::new(JwtIssuer::hs256(&jwt_config()).expect("issuer")),
        passwords: Passwords::new(&config.argon2).expect("passwords"),
        config,
        limits: hubbub_core::limits::Limits::default(),
        // The WebSocket side of a logout is tested over hubbub-local (local/sessions.rs).
        sessions: None,
        connections: None,
    };
    TestApi {
        deps,
        messages: history,
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

fn memory_deps_with(config: AccountsConfig) -> TestApi {
    deps_over(
        Arc::new(MemoryUserStore::new()),
        Arc::new(MemoryHistoryStore::new()),
        own_verifier(),
        config,
    )
}

fn memory_deps() -> TestApi {
    memory_deps_with(accounts_config())
}

async fn postgres_deps_with(config: AccountsConfig) -> TestApi {
    let (db, _) = migrated_database().await;
    deps_over(
        Arc::new(db.users()),
        Arc::new(db.history()),
        own_verifier(),
        config,
    )
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
