//! [`ConnectionGateway`] over API Gateway's Management API, spoken directly: each call is a
//! SigV4-signed (aws-sigv4) HTTP request on one pooled hyper client.
//!
//! Why not aws-sdk-apigatewaymanagement: fan-out makes one call per recipient, so the
//! per-call cost is hubbub's cost centre. The SDK's orchestrator (interceptors, endpoint
//! resolution, retry classifiers, identity cache lookups, several copies of the body) spent
//! about 145 µs of CPU per post; a signed request on a pooled connection needs a fraction
//! of that (figures: README, "Delivery"), signed by [`super::sigv4`]. The wire format is the SDK's:
//! `POST|GET|DELETE {endpoint}/@connections/{percent-encoded id}`, signed for the
//! `execute-api` service with the function's credentials.
//!
//! Retries follow the one rule of [`super::retry`]: a call is retried only when it certainly
//! did not take effect (429, 500 and 503 answers, failures to connect), with jittered
//! exponential backoff; a timeout or a connection lost mid-request has an unknown outcome
//! and is never retried (a repeated post could deliver a message twice; catch-up by `seq`
//! covers a lost one). Every attempt first takes a token from the instance's
//! [`super::budget::PostBudget`] when it has one.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Semaphore;

use super::budget::PostBudget;
use super::retry::{self, Attempt, Retrier, RetryPolicy};
use super::sigv4::{self, EMPTY_PAYLOAD_HASH, KeyCache, SigningKey};
use super::{ConnectionGateway, ConnectionInfo, Endpoint};
use crate::error::GatewayError;

/// Upper bound on one attempt. A healthy post takes a few ms; an answer this late means the
/// path is stuck, and the message is in history either way. Short enough that a retried
/// call still ends well inside a route's 29 s integration timeout.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// Upper bound on opening a connection, inside [`ATTEMPT_TIMEOUT`]: a connection that could
/// not be opened certainly carried no request, so the attempt is retried, where running into
/// the attempt's deadline would make its outcome unknown and leave the recipient to
/// catch-up. An in-region connect takes a millisecond or two; after 1 s the first SYN is
/// lost (Linux sends it again only then), and a fresh attempt is as quick as waiting.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub use super::retry::MAX_ATTEMPTS;
/// Requests in flight at once, and idle pooled connections kept per host. Kept idle: more
/// than a fan-out has in flight ([`crate::fanout::FANOUT_CONCURRENCY`]), so a warm Lambda's
/// next fan-out reuses its TLS connections instead of handshaking again. In flight: where
/// several fan-outs share one gateway (in-process workers), the rest wait for a request to
/// end rather than open sockets beyond the pool, which are closed after one request, and
/// every request in flight costs more than the last (buffers, socket state, wake-ups: a
/// 100,000-member room through 8 workers, 256 posts in flight, took 45 µs of CPU per post
/// against 31 µs with this bound, and 3.8 s against 2.5 s; README, "Delivery").
pub const MAX_CONNECTIONS: usize = 64;
/// How long an idle pooled connection is kept. API Gateway closes idle keep-alive
/// connections after about a minute; reusing one it already closed costs a failed write.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// Credentials are refreshed this long before they expire (Lambda's are session
/// credentials that rotate), so a call never signs with credentials about to lapse.
const CREDENTIALS_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The signature's headers besides `authorization` (named once, not parsed per call).
const X_AMZ_DATE: http::HeaderName = http::HeaderName::from_static("x-amz-date");
const X_AMZ_SECURITY_TOKEN: http::HeaderName =
    http::HeaderName::from_static("x-amz-security-token");
/// The SigV4 service name of the Management API.
const SERVICE: &str = "execute-api";
/// The region when the SDK configuration names none (hubbub-local and tests only: on AWS
/// the Lambda environment always sets one).
const DEFAULT_REGION: &str = "us-east-1";

/// Tunables: the timeouts (short in tests), the retry policy and the budget.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub attempt_timeout: Duration,
    /// At most two thirds of `attempt_timeout` is used, so that it always ends first and
    /// leaves time for the TLS handshake and the request ([`CONNECT_TIMEOUT`] says why).
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// The instance's share of the account's quota; `None`: calls are not paced.
    pub budget: Option<Arc<PostBudget>>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            attempt_timeout: ATTEMPT_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
            retry: RetryPolicy::default(),
            budget: None,
        }
    }
}

type HttpClient = Client<crate::https::HttpsConnector, Full<Bytes>>;

struct CachedIdentity {
    credentials: Credentials,
    refresh_at: Option<SystemTime>,
    /// The day's signing key for these credentials.
    keys: KeyCache,
}

/// The Management API adapter.
pub struct ManagementGateway {
    http: HttpClient,
    credentials: Option<SharedCredentialsProvider>,
    region: String,
    identity: RwLock<Option<Arc<CachedIdentity>>>,
    /// The last body posted and its hash: a fan-out posts one body to every recipient, so
    /// it is hashed once. Compared by content, so a different body is never mistaken for it.
    last_body: Mutex<Option<(Bytes, Arc<str>)>>,
    attempt_timeout: Duration,
    retrier: Retrier,
    /// Requests in flight ([`MAX_CONNECTIONS`]).
    in_flight: Semaphore,
}

impl ManagementGateway {
    /// A gateway signing with `sdk`'s credentials and region.
    pub fn new(sdk: &aws_config::SdkConfig) -> Arc<Self> {
        Self::with_options(sdk, GatewayOptions::default())
    }

    /// As [`ManagementGateway::new`], with explicit tunables.
    pub fn with_options(sdk: &aws_config::SdkConfig, options: GatewayOptions) -> Arc<Self> {
        let http = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(MAX_CONNECTIONS)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(crate::https::connector(Some(
                options.connect_timeout.min(options.attempt_timeout * 2 / 3),
            )));
        Arc::new(Self {
            http,
            credentials: sdk.credentials_provider(),
            region: sdk
                .region()
                .map_or_else(|| DEFAULT_REGION.to_owned(), |r| r.as_ref().to_owned()),
            identity: RwLock::new(None),
            last_body: Mutex::new(None),
            attempt_timeout: options.attempt_timeout,
            retrier: Retrier::new(options.retry, options.budget),
            in_flight: Semaphore::new(MAX_CONNECTIONS),
        })
    }

    /// The signing identity, cached until shortly before it expires.
    async fn identity(&self) -> Result<Arc<CachedIdentity>, GatewayError> {
        let now = SystemTime::now();
        if let Some(c) = self
            .identity
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            && c.refresh_at.is_none_or(|t| now < t)
        {
            return Ok(c.clone());
        }
        let provider = self.credentials.as_ref().ok_or(GatewayError::Failed {
            op: "sign",
            source: "no AWS credentials are configured".into(),
        })?;
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| GatewayError::Failed {
                op: "sign",
                source: Box::new(e),
            })?;
        let refresh_at = creds
            .expiry()
            .map(|t| t.checked_sub(CREDENTIALS_REFRESH_MARGIN).unwrap_or(t));
        let cached = Arc::new(CachedIdentity {
            credentials: creds,
            refresh_at,
            keys: KeyCache::default(),
        });
        *self
            .identity
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cached.clone());
        Ok(cached)
    }

    /// The hex SHA-256 of `body`, from the one-entry cache when it is the last body posted.
    fn payload_hash(&self, body: &Bytes) -> Arc<str> {
        if body.is_empty() {
            return Arc::from(EMPTY_PAYLOAD_HASH);
        }
        let lock = || {
            self.last_body
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((last, hash)) = lock().as_ref()
            && last == body
        {
            return hash.clone();
        }
        let hash: Arc<str> = Arc::from(sigv4::payload_hash(body));
        *lock() = Some((body.clone(), hash.clone()));
        hash
    }

    /// A signed request for `op` on the connection.
    async fn request(
        &self,
        method: &Method,
        endpoint: &Endpoint,
        connection_id: &str,
        body: &Bytes,
    ) -> Result<http::Request<Full<Bytes>>, GatewayError> {
        let op = op_name(method);
        let failed =
            |e: Box<dyn std::error::Error + Send + Sync>| GatewayError::Failed { op, source: e };
        let uri: http::Uri = connection_url(endpoint, connection_id)
            .parse()
            .map_err(|e: http::uri::InvalidUri| failed(e.into()))?;
        let host = uri
            .authority()
            .ok_or_else(|| failed("the management endpoint has no host".into()))?
            .as_str();
        let cached = self.identity().await?;
        let creds = &cached.credentials;
        let payload_hash = self.payload_hash(body);
        let signature = sigv4::sign(
            &SigningKey {
                access_key_id: creds.access_key_id(),
                secret_access_key: creds.secret_access_key(),
                session_token: creds.session_token(),
                region: &self.region,
                service: SERVICE,
            },
            &cached.keys,
            method.as_str(),
            host,
            uri.path(),
            &payload_hash,
            SystemTime::now(),
        );
        // The Host header is the authority just signed; sent as is, so the client does not
        // derive (and format) one of its own.
        let host = http::HeaderValue::from_str(host).map_err(|e| failed(e.into()))?;
        let mut req = http::Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(http::header::HOST, host)
            .header(http::header::AUTHORIZATION, signature.authorization)
            .header(X_AMZ_DATE, signature.amz_date);
        if let Some(token) = creds.session_token() {
            req = req.header(X_AMZ_SECURITY_TOKEN, token);
        }
        req.body(Full::new(body.clone()))
            .map_err(|e| failed(e.into()))
    }

    async fn attempt(
        &self,
        method: &Method,
        endpoint: &Endpoint,
        connection_id: &str,
        body: &Bytes,
    ) -> Attempt<http::Response<Bytes>> {
        let op = op_name(method);
        // Waiting for a turn sends nothing, so it is outside the attempt's timeout, and the
        // request is signed after it; the semaphore is never closed.
        let Ok(_turn) = self.in_flight.acquire().await else {
            return Attempt::Fail(GatewayError::Failed {
                op,
                source: "the gateway is shutting down".into(),
            });
        };
        let req = match self.request(method, endpoint, connection_id, body).await {
            Ok(r) => r,
            Err(e) => return Attempt::Fail(e),
        };
        let call = async {
            let resp = self.http.request(req).await?;
            let (parts, body) = resp.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(http::Response::from_parts(
                parts, bytes,
            ))
        };
        match tokio::time::timeout(self.attempt_timeout, call).await {
            Err(_) => Attempt::Fail(GatewayError::Unknown { op }),
            Ok(Err(e)) => {
                let not_sent = e
                    .downcast_ref::<hyper_util::client::legacy::Error>()
                    .is_some_and(hyper_util::client::legacy::Error::is_connect);
                let err = GatewayError::Failed { op, source: e };
                if not_sent {
                    Attempt::Retry(err)
                } else {
                    // The request may have reached API Gateway: outcome unknown.
                    Attempt::Fail(GatewayError::Unknown { op })
                }
            }
            Ok(Ok(resp)) if resp.status().is_success() => Attempt::Done(resp),
            Ok(Ok(resp)) => retry::refused(op, resp.status().as_u16()),
        }
    }

    /// One call with the retry rule of the module docs.
    async fn call(
        &self,
        method: Method,
        endpoint: &Endpoint,
        connection_id: &str,
        body: &Bytes,
    ) -> Result<http::Response<Bytes>, GatewayError> {
        self.retrier
            .run(op_name(&method), || {
                self.attempt(&method, endpoint, connection_id, body)
            })
            .await
    }
}

fn op_name(method: &Method) -> &'static str {
    match *method {
        Method::POST => "post",
        Method::GET => "get",
        Method::DELETE => "delete",
        _ => "call",
    }
}

/// `{endpoint}/@connections/{id}`, the id percent-encoded as a URI path label (API Gateway
/// ids end in `=`).
fn connection_url(endpoint: &Endpoint, connection_id: &str) -> String {
    let ep = endpoint.as_str();
    let mut url = String::with_capacity(ep.len() + 14 + connection_id.len() * 3);
    url.push_str(ep);
    url.push_str("/@connections/");
    sigv4::push_percent_encoded(connection_id, false, &mut url);
    url
}

/// The body of `GET @connections/{id}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetConnectionBody {
    connected_at: Option<String>,
    last_active_at: Option<String>,
    #[serde(default)]
    identity: GetConnectionIdentity,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GetConnectionIdentity {
    source_ip: Option<String>,
    user_agent: Option<String>,
}

fn parse_time(t: Option<&str>) -> Option<OffsetDateTime> {
    t.and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

#[async_trait]
impl ConnectionGateway for ManagementGateway {
    async fn post(
        &self,
        endpoint: &Endpoint,
        connection_id: &str,
        data: &Bytes,
    ) -> Result<(), GatewayError> {
        self.call(Method::POST, endpoint, connection_id, data)
            .await
            .map(|_| ())
    }

    async fn get(
        &self,
        endpoint: &Endpoint,
        connection_id: &str,
    ) -> Result<ConnectionInfo, GatewayError> {
        let resp = self
            .call(Method::GET, endpoint, connection_id, &Bytes::new())
            .await?;
        let body: GetConnectionBody =
            serde_json::from_slice(resp.body()).map_err(|e| GatewayError::Failed {
                op: "get",
                source: Box::new(e),
            })?;
        Ok(ConnectionInfo {
            connected_at: parse_time(body.connected_at.as_deref()),
            last_active_at: parse_time(body.last_active_at.as_deref()),
            source_ip: body.identity.source_ip,
            user_agent: body.identity.user_agent,
        })
    }

    async fn delete(&self, endpoint: &Endpoint, connection_id: &str) -> Result<(), GatewayError> {
        self.call(Method::DELETE, endpoint, connection_id, &Bytes::new())
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_are_encoded_as_path_labels() {
        let ep = Endpoint::for_request("x", "y", Some("https://abc.example/prod"));
        assert_eq!(
            connection_url(&ep, "L0SM9cOFvHcCIhw=/+ a"),
            "https://abc.example/prod/@connections/L0SM9cOFvHcCIhw%3D%2F%2B%20a"
        );
    }
}
