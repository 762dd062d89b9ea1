//! Outbound HTTP(S) connections, made one way for every client hubbub has: the AWS SDK
//! clients' transport ([`crate::sdk_http`]), the Management API client, the JWKS fetch, the
//! moderation webhook and the answers to CloudFormation. HTTP/1.1 over hyper and rustls on
//! ring; `http://` URLs too (hubbub-local, tests, issuers on loopback).

use std::sync::OnceLock;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;

/// The connector every outbound client is built on.
pub type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A connector for `https://` and `http://` URLs. `connect_timeout` bounds opening the TCP
/// connection (not the TLS handshake): a client that must tell "never sent" from "sent but
/// not answered" sets one shorter than its request timeout, so that a connection that could
/// not be opened fails as such instead of running into the request's deadline.
pub fn connector(connect_timeout: Option<Duration>) -> HttpsConnector {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_connect_timeout(connect_timeout);
    // A request is written whole and then waited on: Nagle's algorithm could only hold back
    // the tail of one written in two pieces (two TLS records) until the peer's delayed ACK.
    tcp.set_nodelay(true);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config().clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp)
}

/// rustls on ring with the platform's root certificates (`SSL_CERT_FILE` and `SSL_CERT_DIR`
/// are honoured), read once per process: every client shares them, and reading the system's
/// certificate store is a cold start's cost. With none to be found every HTTPS call fails with
/// a certificate error, which names the cause where it happens, rather than at start-up.
pub fn tls_config() -> &'static rustls::ClientConfig {
    static CONFIG: OnceLock<rustls::ClientConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        use hyper_rustls::ConfigBuilderExt;
        rustls::ClientConfig::builder()
            .with_native_roots()
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "no root certificates found: HTTPS calls will fail");
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
            })
            .with_no_client_auth()
    })
}
