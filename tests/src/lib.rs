//! The test harness of hubbub: real services, fixtures and the port contract suites.
//!
//! - PostgreSQL: `HUBBUB_TEST_DATABASE_URL` points at a throwaway cluster's admin database;
//!   [`migrated_database`] creates a new database per test and migrates it.
//! - DynamoDB: `HUBBUB_TEST_DYNAMODB_ENDPOINT` points at a DynamoDB-compatible server on
//!   loopback; [`fresh_connections`] creates a new table per test through the real SDK.
//! - Secrets Manager: `HUBBUB_TEST_SECRETSMANAGER_ENDPOINT` points at a Secrets
//!   Manager-compatible server (the same moto); [`fresh_secret`] creates one per test.
//! - TLS PostgreSQL: [`tls_postgres::TlsPostgres`] starts a cluster of its own that refuses
//!   plaintext, with a throwaway CA.
//! - Outages: [`outage::PgCluster`] and [`outage::Moto`] are a PostgreSQL cluster and a
//!   DynamoDB-compatible server of a test's own, which it can stop, pause and bring back.
//! - @connections: [`Recorder`] is a real HTTP server on 127.0.0.1 speaking the management
//!   API's wire format; hubbub's real management client posts to it (SigV4-signed), and it can
//!   inject faults (status answers, slow answers) per connection; [`route_deps`] builds the
//!   WebSocket routes' dependencies over it.
//! - hubbub-local: [`local::TestLocal`] starts it on port 0 over memory or real stores, with
//!   HTTP and WebSocket clients; [`settings`] holds the JWT and password-hashing settings
//!   every test shares.
//!
//! `scripts/test` starts both services and sets the variables; running `cargo test` without
//! them fails with a message saying so, rather than skipping.

pub mod contract;
pub mod events;
pub mod local;
pub mod outage;
pub mod route_deps;
pub mod settings;
pub mod tls_postgres;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_credential_types::Credentials;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use hubbub_core::config::PostgresConfig;
use hubbub_core::gateway::management::ManagementGateway;
use hubbub_core::store::dynamodb::DynamoConnectionStore;
use hubbub_core::store::postgres::Database;

/// The fixed test region (nothing reaches AWS).
pub const REGION: &str = "eu-west-1";

pub(crate) fn service_var(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the test suite with scripts/test, which starts PostgreSQL and the DynamoDB-compatible server")
    })
}

/// SDK config with static credentials and a fixed region, for loopback services.
pub fn sdk_config() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .http_client(hubbub_core::runtime::https_client())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                "AKIDTEST",
                "test-secret",
                None,
                None,
                "hubbub-tests",
            )),
        )
        .build()
}

/// A DynamoDB client for the test server.
pub fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(&sdk_config())
        .endpoint_url(service_var("HUBBUB_TEST_DYNAMODB_ENDPOINT"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// An SQS client for the test server (the same moto server: it speaks both APIs).
pub fn sqs_client() -> hubbub_core::aws_sdk_sqs::Client {
    let conf = hubbub_core::aws_sdk_sqs::config::Builder::from(&sdk_config())
        .endpoint_url(service_var("HUBBUB_TEST_SQS_ENDPOINT"))
        .build();
    hubbub_core::aws_sdk_sqs::Client::from_conf(conf)
}

/// SDK config whose endpoint is the test Secrets Manager (moto), for code that builds its own
/// client from an `SdkConfig` as the functions do.
pub fn secrets_sdk_config() -> aws_config::SdkConfig {
    sdk_config()
        .to_builder()
        .endpoint_url(service_var("HUBBUB_TEST_SECRETSMANAGER_ENDPOINT"))
        .build()
}

/// A brand-new secret holding `value` (JSON); returns its ARN.
pub async fn fresh_secret(value: &serde_json::Value) -> String {
    aws_sdk_secretsmanager::Client::new(&secrets_sdk_config())
        .create_secret()
        .name(format!("hubbub-test/{}", uuid::Uuid::new_v4().simple()))
        .secret_string(value.to_string())
        .send()
        .await
        .expect("create test secret")
        .arn()
        .expect("secret ARN")
        .to_owned()
}

/// Puts a new current version of a secret (the old one becomes `AWSPREVIOUS`), as the last
/// step of a rotation does.
pub async fn rotate_secret(arn: &str, value: &serde_json::Value) {
    aws_sdk_secretsmanager::Client::new(&secrets_sdk_config())
        .put_secret_value()
        .secret_id(arn)
        .secret_string(value.to_string())
        .send()
        .await
        .expect("put a new secret version");
}

/// A brand-new SQS queue; returns its URL.
pub async fn fresh_queue() -> String {
    let name = format!("hubbub-test-{}", uuid::Uuid::new_v4().simple());
    sqs_client()
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create test queue")
        .queue_url()
        .expect("queue url")
        .to_owned()
}

/// A connection store over a brand-new table.
pub async fn fresh_connections() -> DynamoConnectionStore {
    let table = format!("hubbub-test-{}", uuid::Uuid::new_v4().simple());
    let store = DynamoConnectionStore::new(dynamodb_client(), table);
    store.ensure_table().await.expect("create test table");
    store
}

/// A brand-new, empty database (not migrated); returns its URL.
pub async fn fresh_database() -> String {
    let admin_url = service_var("HUBBUB_TEST_DATABASE_URL");
    let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test cluster");
    tokio::spawn(conn);
    let db = format!("t_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .expect("create test database");
    let mut cfg: tokio_postgres::Config = admin_url.parse().expect("admin url");
    cfg.dbname(&db);
    pg_url(&cfg)
}

/// A brand-new, migrated database (its stores share one pool); also returns its URL.
pub async fn migrated_database() -> (Database, String) {
    let url = fresh_database().await;
    // Four connections: the concurrency tests commit from several tasks at once.
    let db = Database::connect(&PostgresConfig { url: url.clone() }, 4).expect("pool");
    db.migrate().await.expect("migrate");
    (db, url)
}

fn pg_url(cfg: &tokio_postgres::Config) -> String {
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        cfg.get_user().unwrap_or("postgres"),
        cfg.get_dbname().unwrap_or("postgres")
    )
}

/// Serves `app` on an ephemeral loopback port for the rest of the test; returns its address.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// What the recorder saw and how it should answer.
#[derive(Default)]
pub struct RecorderState {
    /// (connection id, body) of every accepted POST, in arrival order.
    pub posts: Vec<(String, String)>,
    /// Connection ids that answer 410.
    pub gone: HashSet<String>,
    /// Answer 410 with an empty body (as some emulators do) instead of AWS's GoneException.
    pub gone_empty_body: bool,
    /// DELETEd connection ids.
    pub deleted: Vec<String>,
    /// How long each POST takes to answer (to observe concurrency).
    pub post_delay: std::time::Duration,
    /// POSTs being answered right now, and the most seen at once.
    pub in_flight: usize,
    pub max_in_flight: usize,
    /// Faults: the next answers to a connection's POSTs, one status per POST, before it
    /// answers normally again (e.g. `[429, 500]` then 200). Refused POSTs are not recorded.
    pub faults: std::collections::HashMap<String, std::collections::VecDeque<u16>>,
    /// Every POST that reached the server, accepted or not: (connection id, Authorization
    /// header).
    pub attempts: Vec<(String, String)>,
}

/// A real HTTP server speaking the @connections wire format, recording posts.
#[derive(Clone)]
pub struct Recorder {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<RecorderState>>,
}

type Shared = Arc<Mutex<RecorderState>>;

fn gone_response(state: &RecorderState) -> axum::response::Response {
    use axum::response::IntoResponse;
    if state.gone_empty_body {
        StatusCode::GONE.into_response()
    } else {
        (
            StatusCode::GONE,
            [
                ("content-type", "application/json"),
                ("x-amzn-errortype", "GoneException"),
            ],
            r#"{"message":null}"#,
        )
            .into_response()
    }
}

async fn on_post(
    State(s): State<Shared>,
    Path((_stage, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let delay = {
        let mut st = s.lock().expect("recorder lock");
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        st.attempts.push((id.clone(), auth));
        if st.gone.contains(&id) {
            return gone_response(&st);
        }
        if let Some(status) = st.faults.get_mut(&id).and_then(|q| q.pop_front()) {
            return StatusCode::from_u16(status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response();
        }
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
        st.post_delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut st = s.lock().expect("recorder lock");
    st.in_flight -= 1;
    st.posts.push((id, body));
    StatusCode::OK.into_response()
}

async fn on_get(
    State(s): State<Shared>,
    Path((_stage, id)): Path<(String, String)>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let st = s.lock().expect("recorder lock");
    if st.gone.contains(&id) {
        return gone_response(&st);
    }
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        r#"{"connectedAt":"2026-01-15T09:30:00.412Z","identity":{"sourceIp":"203.0.113.7","userAgent":"wscat"},"lastActiveAt":"2026-01-15T09:31:00.000Z"}"#,
    )
        .into_response()
}

async fn on_delete(
    State(s): State<Shared>,
    Path((_stage, id)): Path<(String, String)>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut st = s.lock().expect("recorder lock");
    if st.gone.contains(&id) {
        return gone_response(&st);
    }
    st.deleted.push(id);
    StatusCode::NO_CONTENT.into_response()
}

impl Recorder {
    /// Starts the server on an ephemeral port.
    pub async fn start() -> Self {
        let state: Shared = Arc::default();
        let app = Router::new()
            .route(
                "/{stage}/@connections/{id}",
                post(on_post).get(on_get).delete(on_delete),
            )
            .with_state(state.clone());
        let addr = serve(app).await;
        Self { addr, state }
    }

    /// The management endpoint for stage `prod`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/prod", self.addr)
    }

    /// The real gateway adapter (any endpoint: calls name theirs).
    pub fn gateway(&self) -> Arc<ManagementGateway> {
        ManagementGateway::new(&sdk_config())
    }

    /// Makes the next POSTs to `id` answer these statuses, one each.
    pub fn fail_next(&self, id: &str, statuses: &[u16]) {
        self.lock()
            .faults
            .entry(id.to_owned())
            .or_default()
            .extend(statuses.iter().copied());
    }

    /// How many POSTs to `id` reached the server, accepted or not.
    pub fn attempts_to(&self, id: &str) -> usize {
        self.lock()
            .attempts
            .iter()
            .filter(|(to, _)| to == id)
            .count()
    }

    /// Makes `id` answer 410 from now on.
    pub fn make_gone(&self, id: &str) {
        self.lock().gone.insert(id.to_owned());
    }

    /// Bodies posted to `id`, parsed as JSON.
    pub fn frames_to(&self, id: &str) -> Vec<serde_json::Value> {
        self.lock()
            .posts
            .iter()
            .filter(|(to, _)| to == id)
            .map(|(_, b)| serde_json::from_str(b).expect("posted body is JSON"))
            .collect()
    }

    /// Every recorded post.
    pub fn posts(&self) -> Vec<(String, String)> {
        self.lock().posts.clone()
    }

    /// Locks the state.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, RecorderState> {
        self.state.lock().expect("recorder lock")
    }
}
