//! The AWS SDK clients' HTTP transport: HTTP/1.1 over hyper and rustls on ring, the same stack
//! the management API client, the JWKS fetch and the moderation hook use.
//!
//! The SDK's own default transport (aws-smithy-http-client) always builds in HTTP/2 (the `h2`
//! crate and hyper's HTTP/2 client), which DynamoDB, SQS and Secrets Manager do not need: they
//! answer HTTP/1.1, and a Lambda sends one request at a time per connection anyway. That stack
//! was about a tenth of every function's code. This is the SDK's `HttpClient` port
//! (aws-smithy-runtime-api) over one pooled hyper client per timeout setting; requests and
//! responses pass through unchanged (`http` 1.x types both sides), and failures are classed
//! as the SDK's retry rules expect: a connection that could not be made or broke is an I/O
//! error (retried), a missed deadline a timeout (retried), anything else "other".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_util::client::legacy::Client;

use crate::https::HttpsConnector as Https;

/// Idle connections kept per host: a Lambda calls each service from one request at a time,
/// hubbub-local and the tests from a few dozen tasks at most.
const POOL_IDLE_PER_HOST: usize = 64;

/// How long an idle pooled connection is kept: below the services' own keep-alive (60 s and
/// more), so a request never goes out on a connection the other end is closing.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// The SDK's HTTP client; see the module docs.
pub fn client() -> SharedHttpClient {
    SharedHttpClient::new(Http1Client::default())
}

/// The SDK's connector settings that shape a connector: connect and read timeouts.
type Timeouts = (Option<Duration>, Option<Duration>);

/// One connector per [`Timeouts`] the SDK asks for, kept: each holds a connection pool, and the
/// SDK asks again for every operation.
#[derive(Debug, Default)]
struct Http1Client {
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

impl HttpClient for Http1Client {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self
            .connectors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        connectors
            .entry(key)
            .or_insert_with(|| SharedHttpConnector::new(Http1Connector::new(key.0, key.1)))
            .clone()
    }
}

/// A pooled hyper client with the SDK's timeouts.
#[derive(Clone)]
struct Http1Connector {
    client: Arc<Client<Https, SdkBody>>,
    read_timeout: Option<Duration>,
}

impl std::fmt::Debug for Http1Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http1Connector")
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

impl Http1Connector {
    fn new(connect_timeout: Option<Duration>, read_timeout: Option<Duration>) -> Self {
        let https = crate::https::connector(connect_timeout);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(https);
        Self {
            client: Arc::new(client),
            read_timeout,
        }
    }
}

impl HttpConnector for Http1Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(r) => r,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let this = self.clone();
        HttpConnectorFuture::new(async move {
            let sent = this.client.request(request);
            let response = match this.read_timeout {
                Some(limit) => tokio::time::timeout(limit, sent)
                    .await
                    .map_err(|e| ConnectorError::timeout(e.into()))?,
                None => sent.await,
            }
            .map_err(classify)?;
            let response = response.map(SdkBody::from_body_1_x);
            HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// The SDK's class for a hyper client failure.
fn classify(e: hyper_util::client::legacy::Error) -> ConnectorError {
    let io = e.is_connect() || std::error::Error::source(&e).is_some_and(has_io_error);
    if io {
        ConnectorError::io(e.into())
    } else {
        ConnectorError::other(e.into(), None)
    }
}

/// Whether an I/O error (a broken or refused connection) is in the chain.
fn has_io_error(mut e: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if e.is::<std::io::Error>() {
            return true;
        }
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_incomplete_message() || h.is_closed() || h.is_canceled())
        {
            return true;
        }
        match e.source() {
            Some(next) => e = next,
            None => return false,
        }
    }
}
