//! The server: one axum router on one port that serves
//!
//! - the WebSocket API (`/` and `/{stage}` with an `Upgrade` header, [`ws`]);
//! - the @connections management API (`/@connections/{id}` and `/{stage}/@connections/{id}`,
//!   [`management`]);
//! - the HTTP API (`/auth/*`, `/rooms`, `/rooms/{room}/members`, `/rooms/{room}/messages`,
//!   `/health`, each also under `/{stage}`, [`http`]);
//! - the web client (`/` without an `Upgrade` header, `/index.html`, `/app.js`,
//!   `/style.css`, [`web`]);
//!
//! over the stores the configuration chooses. The WebSocket routes and the HTTP API share
//! them and the JWT settings: a token from `POST /auth/login` opens a WebSocket.
//!
//! The handlers reach connections in-process ([`RegistryGateway`]) or the way they do on
//! AWS, through the Lambdas' SigV4 client ([`ManagementGateway`]) pointed at this very
//! server (`--management-client`); both retry by one rule and draw from one post budget.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use axum::Router;
use axum::routing::{any, get};
use axum::serve::ListenerExt;
use connect::ConnectDeps;
use http_api::passwords::PasswordError;
use http_api::{HttpDeps, HttpRoute, Passwords};
use hubbub_core::auth::{AuthError, JwtIssuer, JwtVerifier, TokenVerifier};
use hubbub_core::config::PostgresConfig;
use hubbub_core::error::{StoreError, chain};
use hubbub_core::gateway::Endpoint;
use hubbub_core::gateway::budget::PostBudget;
use hubbub_core::gateway::management::{GatewayOptions, ManagementGateway};
use hubbub_core::gateway::retry::{Retrier, RetryPolicy};
use hubbub_core::presence::{LocalPresence, PRESENCE_WINDOW};
use hubbub_core::queue::FanoutQueue;
use hubbub_core::queue::local::LocalFanoutQueue;
use hubbub_core::session::{REVOCATION_CACHE_TTL, RevocationCheck, SessionEnder};
use hubbub_core::store::dynamodb::DynamoConnectionStore;
use hubbub_core::store::memory::{MemoryConnectionStore, MemoryHistoryStore, MemoryUserStore};
use hubbub_core::store::postgres::{Database, MigrateOnPoolError};
use hubbub_core::store::{AttemptStore, ConnectionStore, HistoryStore, UserStore};
use hubbub_core::ws::{Live, RouteDeps};
use maintenance::MaintenanceDeps;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::config::ManagementClient;
use crate::faults::{FaultStats, Faults};
use crate::gateway::RegistryGateway;
use crate::registry::Registry;
use crate::{http, management, web, ws};

/// PostgreSQL connections in the pool, shared by the history and the user stores. A Lambda
/// needs one (one invocation at a time); the emulator runs every connection's routes and
/// every HTTP request concurrently, and 8 lets a handful of chatting clients commit in
/// parallel without holding many of the server's connections.
const PG_POOL_SIZE: usize = 8;
/// Fan-out workers running large rooms' chunks at once: the local stand-in for the
/// `fanout-worker` Lambda's reserved concurrency. Each drives up to 32 posts, so this also
/// bounds the emulator's own @connections sockets; 8 keeps both cores busy on a large room
/// without starving the connections' own routes.
const FANOUT_WORKERS: usize = 8;
/// Invocations of one function running at once, as a Lambda function's concurrency limit
/// bounds them: a burst of frames queues here instead of opening unbounded work. Each
/// invocation can hold a fan-out's 32 posts (sockets to the @connections API), so 32
/// invocations per function bound the emulator's own sockets to about a thousand per
/// function, within the open-file limit raised at start.
const FUNCTION_CONCURRENCY: usize = 32;
/// How long shutdown waits for the connections to close and their `$disconnect` routes to
/// finish: long enough for a disconnect fan-out over real stores (each management call is
/// bounded at 5 s by the gateway adapter), short enough that Ctrl-C still feels immediate.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often the scheduled clean-up runs: the template's hourly schedule of the
/// `maintenance` function.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);
/// How long shutdown waits for in-flight HTTP requests once the connections are gone.
const HTTP_GRACE: Duration = Duration::from_secs(5);

/// hubbub-local could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("could not read the bound address")]
    LocalAddr(#[source] std::io::Error),
    #[error("the JWT configuration is unusable")]
    Jwt(#[source] AuthError),
    #[error("could not set up the PostgreSQL history store")]
    Postgres(#[source] StoreError),
    #[error("the moderation URL is unusable")]
    Moderation(#[source] hubbub_core::moderation::ModerationError),
    #[error("could not migrate the PostgreSQL history database")]
    Migrate(#[source] MigrateOnPoolError),
    #[error("could not set up the DynamoDB connection store")]
    Dynamo(#[source] StoreError),
    #[error("the argon2 settings of the HTTP API are unusable")]
    Passwords(#[source] PasswordError),
}

/// Everything the request handlers share.
pub(crate) struct AppState {
    pub config: Config,
    /// Verifies tokens for the authorizer (and, shared, for the HTTP API); built once, as a
    /// Lambda does at init.
    pub verifier: Arc<TokenVerifier>,
    /// The per-user revocation markers the authorizer checks, cached as a Lambda instance
    /// caches them ([`REVOCATION_CACHE_TTL`]).
    pub revocations: RevocationCheck,
    /// What `$connect` needs.
    pub connect: ConnectDeps,
    /// What the message routes need; `routes.live` is what `$disconnect` needs.
    pub routes: RouteDeps,
    /// Invocations in flight per function, bounded as Lambda bounds a function's
    /// concurrency ([`FUNCTION_CONCURRENCY`]).
    pub invocations: crate::ws::FunctionSlots,
    /// The open WebSocket connections.
    pub registry: Arc<Registry>,
    /// Faults injected into `@connections` posts (`--inject-post-faults`), shared by both
    /// management clients' path ([`crate::delivery::post`]).
    pub faults: Option<Arc<Faults>>,
    /// Set to `true` once shutdown starts: every connection closes with 1001.
    pub shutdown: watch::Sender<bool>,
    /// Each connection task holds a clone until its `$disconnect` is done; shutdown drops
    /// this one and waits for the channel to close. `None` once shutdown started, which
    /// refuses new connections.
    pub drain: Mutex<Option<mpsc::Sender<()>>>,
    /// The URL of this server's management API for the stage.
    pub management_url: String,
    /// The address clients reach this server at (`domainName` when a request has no `Host`).
    pub public_addr: SocketAddr,
    /// What the HTTP API handler needs: the same stores and JWT secret as the WebSocket side.
    pub http: HttpDeps,
    /// Where the web client's files come from.
    pub web: web::Source,
}

impl AppState {
    /// A drain guard for a new connection, or `None` when shutting down.
    pub fn drain_guard(&self) -> Option<mpsc::Sender<()>> {
        self.drain
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The SDK configuration of the in-process handlers: static dummy credentials (the
/// emulator accepts any signature) and the configured region. Nothing reaches AWS.
pub fn sdk_config(region: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .http_client(hubbub_core::runtime::https_client())
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "hubbub-local",
            "hubbub-local",
            None,
            None,
            "hubbub-local",
        )))
        .build()
}

/// Which stores are in use, for the banner and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    pub connections: String,
    pub history: String,
}

/// The stores the handlers run over.
struct Stores {
    connections: Arc<dyn ConnectionStore>,
    history: Arc<dyn HistoryStore>,
    users: Arc<dyn UserStore>,
    attempts: Arc<dyn AttemptStore>,
    info: StoreInfo,
}

async fn stores(config: &Config, sdk: &aws_config::SdkConfig) -> Result<Stores, StartError> {
    type Pg = (
        Arc<dyn HistoryStore>,
        Arc<dyn UserStore>,
        Arc<dyn AttemptStore>,
        String,
    );
    let (history, users, attempts, history_info): Pg = match &config.database_url {
        Some(url) => {
            let db = Database::connect(&PostgresConfig { url: url.clone() }, PG_POOL_SIZE)
                .map_err(StartError::Postgres)?;
            let applied = db.migrate().await.map_err(StartError::Migrate)?;
            tracing::info!(?applied, "PostgreSQL database migrated");
            let users = Arc::new(db.users());
            (
                Arc::new(db.history()),
                users.clone(),
                users,
                "PostgreSQL".to_owned(),
            )
        }
        None => {
            let users = Arc::new(MemoryUserStore::new());
            (
                Arc::new(MemoryHistoryStore::new()),
                users.clone(),
                users,
                "in-memory (lost on exit)".to_owned(),
            )
        }
    };
    let (connections, conn_info): (Arc<dyn ConnectionStore>, String) =
        match &config.dynamodb_endpoint {
            Some(endpoint) => {
                let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
                    .endpoint_url(endpoint)
                    .build();
                let store = DynamoConnectionStore::new(
                    aws_sdk_dynamodb::Client::from_conf(conf),
                    config.dynamodb_table.clone(),
                );
                store.ensure_table().await.map_err(StartError::Dynamo)?;
                (
                    Arc::new(store),
                    format!("DynamoDB at {endpoint}, table {}", config.dynamodb_table),
                )
            }
            None => (
                Arc::new(MemoryConnectionStore::new()),
                "in-memory".to_owned(),
            ),
        };
    Ok(Stores {
        connections,
        history,
        users,
        attempts,
        info: StoreInfo {
            connections: conn_info,
            history: history_info,
        },
    })
}

/// The address clients should use: a wildcard listen address is reached over loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// What API Gateway serves both at `/` and under `/{stage}`: the @connections management API
/// and the HTTP API's paths (any method: [`http::serve`] answers preflights and 404s as API
/// Gateway does).
fn stage_routes() -> Router<Arc<AppState>> {
    HttpRoute::paths()
        .into_iter()
        .fold(management::router(), |r, path| {
            r.route(path, any(http::serve))
        })
}

/// A running hubbub-local.
pub struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    stores: StoreInfo,
    drained: mpsc::Receiver<()>,
    stop_http: oneshot::Sender<()>,
    serve: JoinHandle<std::io::Result<()>>,
    /// The scheduled clean-up's timer ([`start_maintenance`]).
    maintenance: JoinHandle<()>,
}

impl Server {
    /// Sets up the stores, binds the port and starts serving.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        raise_open_file_limit();
        // hubbub's own HS256 tokens; external issuers are an AWS deployment concern for now.
        let verifier = Arc::new(TokenVerifier::new(
            JwtVerifier::hs256(&config.jwt).map_err(StartError::Jwt)?,
            None,
        ));
        let issuer = Arc::new(JwtIssuer::hs256(&config.jwt).map_err(StartError::Jwt)?);
        let passwords = Passwords::new(&config.accounts.argon2).map_err(StartError::Passwords)?;
        let bind = SocketAddr::new(config.host, config.port);
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|source| StartError::Bind { addr: bind, source })?;
        let addr = listener.local_addr().map_err(StartError::LocalAddr)?;
        let management_url = format!("http://{}/{}", reachable(addr), config.stage);

        let sdk = sdk_config(&config.region);
        let Stores {
            connections,
            history,
            users,
            attempts,
            info: stores,
        } = stores(&config, &sdk).await?;
        let maintenance = start_maintenance(MaintenanceDeps {
            users: users.clone(),
            attempts: attempts.clone(),
        });
        let registry = Arc::new(Registry::default());
        let delivery = config.delivery;
        let faults = delivery.faults.map(|f| {
            let faults = Faults::new(f.spec, f.seed);
            tracing::warn!(faults = %faults.spec(), seed = faults.seed(), "injecting faults into @connections posts");
            Arc::new(faults)
        });
        // One budget for the whole server, whichever client posts: the emulator stands for
        // one instance.
        let budget = delivery.budget.map(|b| Arc::new(PostBudget::new(b)));
        let gateway: Arc<dyn hubbub_core::gateway::ConnectionGateway> =
            match config.management_client {
                ManagementClient::InProcess => Arc::new(RegistryGateway::new(
                    registry.clone(),
                    faults.clone(),
                    Retrier::new(RetryPolicy::default(), budget),
                    delivery.post_timeout,
                )),
                ManagementClient::Http => ManagementGateway::with_options(
                    &sdk,
                    GatewayOptions {
                        attempt_timeout: delivery.post_timeout,
                        retry: RetryPolicy::default(),
                        budget,
                        ..GatewayOptions::default()
                    },
                ),
            };
        let sessions = SessionEnder {
            connections: connections.clone(),
            gateway: gateway.clone(),
            endpoint: Endpoint::for_request("", "", Some(management_url.as_str())),
            access_ttl: config.accounts.access_ttl,
        };
        let revocations = RevocationCheck::new(connections.clone(), REVOCATION_CACHE_TTL);
        let http = HttpDeps {
            users,
            attempts,
            history: history.clone(),
            verifier: verifier.clone(),
            issuer,
            passwords,
            config: config.accounts.clone(),
            limits: config.limits,
            sessions: Some(Arc::new(sessions)),
            connections: Some(connections.clone()),
        };
        let queue: Arc<dyn FanoutQueue> = Arc::new(LocalFanoutQueue::new(
            connections.clone(),
            gateway.clone(),
            FANOUT_WORKERS,
        ));
        let presence = LocalPresence::start(
            connections.clone(),
            gateway.clone(),
            Some(queue.clone()),
            PRESENCE_WINDOW,
        );
        let live = Live {
            connections: connections.clone(),
            gateway,
            endpoint_override: Some(management_url.clone()),
            queue: Some(queue),
            presence: Some(Arc::new(presence)),
        };
        let moderation = match &config.moderation_url {
            Some(url) => Some(Arc::new(
                hubbub_core::moderation::HttpModerator::webhook(url)
                    .map_err(StartError::Moderation)?,
            ) as Arc<dyn hubbub_core::moderation::Moderator>),
            None => None,
        };
        let (drain_tx, drained) = mpsc::channel(1);
        let state = Arc::new(AppState {
            verifier,
            revocations,
            connect: ConnectDeps { connections },
            routes: RouteDeps {
                live,
                history,
                limits: config.limits,
                moderation,
            },
            invocations: crate::ws::FunctionSlots::new(FUNCTION_CONCURRENCY),
            registry,
            faults,
            shutdown: watch::Sender::new(false),
            drain: Mutex::new(Some(drain_tx)),
            management_url,
            public_addr: reachable(addr),
            http,
            web: web::Source::from_config(config.web_dir.as_deref()),
            config,
        });

        let app = Router::new()
            .route("/", get(ws::upgrade_root))
            .route("/{stage}", get(ws::upgrade_stage))
            .route("/{stage}/", get(ws::upgrade_stage))
            .merge(stage_routes())
            .nest("/{stage}", stage_routes())
            .fallback(web::fallback)
            .with_state(state.clone());
        let (stop_http, stop_rx) = oneshot::channel::<()>();
        let serve = tokio::spawn(async move {
            // No Nagle delay on accepted sockets: frames are small and each is written when it
            // is due. With it, a frame written while the previous one was not yet acknowledged
            // waited for the client's (possibly delayed, up to 40 ms) ACK.
            let listener = listener.tap_io(|tcp| {
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::warn!(%error, "could not set TCP_NODELAY on an accepted socket");
                }
            });
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
        });
        tracing::info!(%addr, stage = %state.config.stage, connections = %stores.connections, history = %stores.history, "hubbub-local listening");
        Ok(Self {
            addr,
            state,
            stores,
            drained,
            stop_http,
            serve,
            maintenance,
        })
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTP base URL of the HTTP API and the web client (`http://127.0.0.1:3001`).
    pub fn http_url(&self) -> String {
        format!("http://{}", reachable(self.addr))
    }

    /// The WebSocket URL clients connect to (`ws://127.0.0.1:3001`).
    pub fn ws_url(&self) -> String {
        format!("ws://{}", reachable(self.addr))
    }

    /// The management API endpoint of the stage (`http://127.0.0.1:3001/local`): the SDK's
    /// `endpoint_url`, under which `@connections/{id}` lives.
    pub fn management_url(&self) -> &str {
        &self.state.management_url
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// Which stores are in use.
    pub fn stores(&self) -> &StoreInfo {
        &self.stores
    }

    /// How many WebSocket connections are open.
    pub fn open_connections(&self) -> usize {
        self.state.registry.len()
    }

    /// What the injected faults have done so far; `None` when faults are off.
    pub fn fault_stats(&self) -> Option<FaultStats> {
        self.state.faults.as_ref().map(|f| f.stats())
    }

    /// The ids of the open connections (what `@connections/{id}` takes), sorted.
    pub fn connection_ids(&self) -> Vec<String> {
        self.state.registry.ids()
    }

    /// The startup banner: where to connect and how to get a token.
    pub fn banner(&self) -> String {
        let c = &self.state.config;
        let ws = self.ws_url();
        let secret = if c.jwt_secret_is_dev_default {
            "the built-in DEVELOPMENT secret (set HUBBUB_JWT_SECRET or --jwt-secret for your own)"
        } else {
            "from --jwt-secret / HUBBUB_JWT_SECRET"
        };
        let http = self.http_url();
        format!(
            "\
hubbub-local: API Gateway WebSocket + HTTP API emulator, stage `{stage}`

  web client     {http}/  ({web})
  WebSocket      {ws}  (also {ws}/{stage})
  HTTP API       {http}/auth/register, /auth/login, /rooms, ... /health  (also {http}/{stage}/...)
  CORS           origins: {cors}
  @connections   {mgmt}/@connections/{{connectionId}}  (POST, GET, DELETE; any SigV4 signature)
  stores         connections: {conns}; history and users: {hist}
  JWT            HS256, iss `{iss}`, aud `{aud}`, secret: {secret}
  limits         32 KB frames, 128 KB messages (close 1009); idle {idle}s; max {max}s; HTTP bodies {body} bytes
  posts          {posts}

Open {http}/ in a browser, or register, log in and connect from a shell:
  curl -s {http}/auth/register -H 'content-type: application/json' -d '{{\"username\":\"alice\",\"password\":\"correct horse\"}}'
  TOKEN=$(hubbub-local token --user alice{secret_flag})   # or the accessToken of /auth/login
  wscat -c \"{ws}/?token=$TOKEN\"
  > {{\"action\":\"joinRoom\",\"room\":\"general\"}}
(`hubbub-local token` is `cargo run -p hubbub-local -- token` from a checkout.)
",
            web = self.state.web.describe(),
            posts = self.describe_posts(),
            cors = c.cors_origins.join(", "),
            body = c.accounts.max_body_bytes,
            stage = c.stage,
            mgmt = self.state.management_url,
            conns = self.stores.connections,
            hist = self.stores.history,
            iss = c.jwt.issuer,
            aud = c.jwt.audience,
            idle = c.idle_timeout.as_secs(),
            max = c.max_connection.as_secs(),
            secret_flag = if c.jwt_secret_is_dev_default {
                ""
            } else {
                " --jwt-secret ..."
            },
        )
    }

    /// The banner's line on the handlers' posts: client, timeout, budget, faults.
    fn describe_posts(&self) -> String {
        let c = &self.state.config;
        let client = match c.management_client {
            ManagementClient::InProcess => "in-process",
            ManagementClient::Http => "over HTTP",
        };
        let budget = c.delivery.budget.map_or_else(
            || "unpaced".to_owned(),
            |b| format!("{}/s, burst {}", b.rate_per_sec, b.burst),
        );
        let faults = self.state.faults.as_ref().map_or_else(
            || "no injected faults".to_owned(),
            |f| format!("INJECTED FAULTS {} (seed {})", f.spec(), f.seed()),
        );
        format!(
            "{client}; timeout {} ms; {budget}; {faults}",
            c.delivery.post_timeout.as_millis()
        )
    }

    /// Closes every connection with 1001 (each gets its `$disconnect`), then stops serving.
    pub async fn shutdown(mut self) {
        self.maintenance.abort();
        let open = self.state.registry.len();
        tracing::info!(open, "shutting down: closing every connection");
        drop(
            self.state
                .drain
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        self.state.shutdown.send_replace(true);
        match tokio::time::timeout(SHUTDOWN_GRACE, self.drained.recv()).await {
            Ok(_) => tracing::info!("every connection closed and disconnected"),
            Err(_) => tracing::warn!(
                still_open = self.state.registry.len(),
                "gave up waiting for connections to close"
            ),
        }
        let _ = self.stop_http.send(());
        match tokio::time::timeout(HTTP_GRACE, &mut self.serve).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %chain(&e), "server ended with an error"),
            Ok(Err(e)) => tracing::warn!(error = %e, "server task failed"),
            Err(_) => {
                tracing::warn!("HTTP requests still running after the grace period; aborting");
                self.serve.abort();
            }
        }
    }
}

/// Runs the scheduled clean-up now and every [`MAINTENANCE_EVERY`], as the template's
/// schedule runs the `maintenance` function. A failed run is logged and retried at the next.
fn start_maintenance(deps: MaintenanceDeps) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(MAINTENANCE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = maintenance::run(&deps, time::OffsetDateTime::now_utc()).await {
                tracing::warn!(error = %chain(&e), "scheduled clean-up failed");
            }
        }
    })
}

/// Raises the soft open-file limit to the hard limit: every WebSocket and every pooled
/// @connections socket is a file, and the usual soft limit (1,024) is reached by a few
/// hundred chatting clients. Failing to raise it is logged, not fatal: small runs fit.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-file limit raised"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}
