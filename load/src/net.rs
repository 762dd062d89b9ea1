//! Opening WebSocket connections to the target: the URL is parsed and its host resolved once,
//! the TLS configuration (for `wss://`) is built once and shared, and each connection binds its
//! socket to one of several loopback source addresses when the target is on loopback, so that a
//! single machine can hold more connections than one source address has ephemeral ports.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::config::AuthMode;

/// An open connection.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connections per loopback source address when their number is picked automatically: below
/// the ~28,000 ephemeral ports of Linux's default `ip_local_port_range`, with room to spare for
/// other programs.
const CONNECTIONS_PER_SOURCE: usize = 20_000;

/// Read buffer of each connection. tungstenite zero-fills its read buffer up to this size before
/// every read, and its default (128 KiB) made that memset the client's largest cost per frame
/// (and 2.5 GiB over 20,000 connections); at 4 KiB it was still 5 % of the client's CPU.
/// Server frames are a few hundred bytes (a coalesced batch of a busy room ~1 KB); larger
/// ones (history pages, big batches) still arrive, over several reads.
const READ_BUFFER: usize = 2 * 1024;

/// Longest TCP connect plus WebSocket handshake. API Gateway answers a handshake in well under
/// a second; 30 s leaves room for a loaded local server during a connect ramp without letting
/// a dead target stall the run.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("`{0}` is not a ws:// or wss:// URL")]
    Url(String),
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error("cannot build the TLS configuration: {0}")]
    Tls(String),
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("handshake timed out after {0:?}")]
    Timeout(Duration),
    #[error("handshake: {0}")]
    Handshake(Box<tokio_tungstenite::tungstenite::Error>),
    #[error("bad request: {0}")]
    Request(String),
}

impl NetError {
    /// A short category for the report's table of connect errors.
    pub fn category(&self) -> String {
        use tokio_tungstenite::tungstenite::Error as E;
        match self {
            Self::Connect(e) => format!("connect: {:?}", e.kind()),
            Self::Timeout(_) => "timeout".into(),
            Self::Handshake(e) => match e.as_ref() {
                E::Http(resp) => format!("http {}", resp.status().as_u16()),
                E::Io(io) => format!("io: {:?}", io.kind()),
                E::Tls(_) => "tls".into(),
                E::Protocol(_) => "protocol".into(),
                other => format!("handshake: {other}"),
            },
            other => other.to_string(),
        }
    }
}

/// The target, resolved once for the whole run.
#[derive(Clone)]
pub struct Target {
    /// The URL as given (no token).
    url: String,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Source addresses to bind to, round-robin; empty lets the OS choose.
    sources: Vec<IpAddr>,
}

impl Target {
    /// Parses `url`, resolves its host, and picks the source addresses: `source_addrs` of them
    /// (0 = one per 20,000 of `connections`) when the target is IPv4 loopback, else none.
    pub async fn resolve(
        url: &str,
        source_addrs: usize,
        connections: usize,
    ) -> Result<Self, NetError> {
        let uri: http::Uri = url.parse().map_err(|_| NetError::Url(url.into()))?;
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => return Err(NetError::Url(url.into())),
        };
        let host = uri
            .host()
            .ok_or_else(|| NetError::Url(url.into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let mut found = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|source| NetError::Resolve {
                host: host.clone(),
                source,
            })?;
        let addr = found
            .next()
            .ok_or_else(|| NetError::NoAddress(host.clone()))?;
        let sources = match addr.ip() {
            IpAddr::V4(ip) if ip.is_loopback() => {
                let n = if source_addrs == 0 {
                    connections.div_ceil(CONNECTIONS_PER_SOURCE)
                } else {
                    source_addrs
                };
                // With one address the OS picks it and can share ports across destinations;
                // binding only pays off with several (all of 127.0.0.0/8 is loopback).
                if n > 1 {
                    (1..=n.min(250) as u8)
                        .map(|k| IpAddr::V4(Ipv4Addr::new(127, 0, 0, k)))
                        .collect()
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        };
        let tls = if tls { Some(tls_config()?) } else { None };
        Ok(Self {
            url: url.into(),
            addr,
            tls,
            sources,
        })
    }

    /// The resolved address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The source addresses connections are spread over (empty: the OS's choice).
    pub fn sources(&self) -> &[IpAddr] {
        &self.sources
    }

    /// The handshake request of a connection presenting `token`.
    pub fn request(&self, token: &str, auth: AuthMode) -> Result<Request, NetError> {
        let url = match auth {
            AuthMode::QueryToken => {
                let sep = if self.url.contains('?') { '&' } else { '?' };
                // JWTs are base64url segments and dots: nothing to percent-encode.
                format!("{}{sep}token={token}", self.url)
            }
            AuthMode::Subprotocol => self.url.clone(),
        };
        let mut req = url
            .into_client_request()
            .map_err(|e| NetError::Request(e.to_string()))?;
        if auth == AuthMode::Subprotocol {
            let offer = format!("hubbub.v1, bearer.{token}");
            let value =
                HeaderValue::from_str(&offer).map_err(|e| NetError::Request(e.to_string()))?;
            req.headers_mut().insert("Sec-WebSocket-Protocol", value);
        }
        req.headers_mut()
            .insert("User-Agent", HeaderValue::from_static("hubbub-load"));
        Ok(req)
    }

    /// Opens connection number `i` with `token`, within [`HANDSHAKE_TIMEOUT`].
    pub async fn connect(&self, i: usize, token: &str, auth: AuthMode) -> Result<Ws, NetError> {
        let req = self.request(token, auth)?;
        tokio::time::timeout(HANDSHAKE_TIMEOUT, self.open(i, req))
            .await
            .map_err(|_| NetError::Timeout(HANDSHAKE_TIMEOUT))?
    }

    async fn open(&self, i: usize, req: Request) -> Result<Ws, NetError> {
        let socket = match self.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(NetError::Connect)?;
        if !self.sources.is_empty() {
            let src = self.sources[i % self.sources.len()];
            bind_address_no_port(&socket);
            socket
                .bind(SocketAddr::new(src, 0))
                .map_err(NetError::Connect)?;
        }
        let stream = socket.connect(self.addr).await.map_err(NetError::Connect)?;
        // Frames are small and latency is what is measured: no Nagle delay.
        stream.set_nodelay(true).map_err(NetError::Connect)?;
        let connector = match &self.tls {
            Some(cfg) => Connector::Rustls(cfg.clone()),
            None => Connector::Plain,
        };
        let (ws, _resp) = tokio_tungstenite::client_async_tls_with_config(
            req,
            stream,
            Some(WebSocketConfig::default().read_buffer_size(READ_BUFFER)),
            Some(connector),
        )
        .await
        .map_err(|e| NetError::Handshake(Box::new(e)))?;
        Ok(ws)
    }
}

/// Lets the kernel choose the source port at `connect` rather than at `bind`, so one source
/// address can reuse a port towards different destinations. Best effort: without it the run
/// still works, with fewer ports per source address.
#[allow(
    unsafe_code,
    reason = "setsockopt has no safe wrapper in tokio or std; the one call is checked below"
)]
fn bind_address_no_port(socket: &TcpSocket) {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads `one` (a c_int of the given size) on a socket this process owns.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "IP_BIND_ADDRESS_NO_PORT not set");
    }
}

/// One rustls configuration for every `wss://` connection: ring and the platform's roots.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, NetError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(NetError::Tls(format!(
            "no usable root certificates on this machine ({} errors)",
            found.errors.len()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_targets_spread_over_source_addresses() {
        let t = Target::resolve("ws://127.0.0.1:9/", 0, 45_000)
            .await
            .unwrap();
        assert_eq!(t.sources().len(), 3);
        let t = Target::resolve("ws://127.0.0.1:9/", 0, 100).await.unwrap();
        assert!(t.sources().is_empty());
        let t = Target::resolve("ws://localhost:9/", 4, 100).await.unwrap();
        assert!(t.addr().ip().is_loopback());
    }

    #[tokio::test]
    async fn tokens_ride_the_query_or_the_subprotocol() {
        let t = Target::resolve("ws://127.0.0.1:9/local", 1, 1)
            .await
            .unwrap();
        let r = t.request("a.b.c", AuthMode::QueryToken).unwrap();
        assert_eq!(r.uri().to_string(), "ws://127.0.0.1:9/local?token=a.b.c");
        let r = t.request("a.b.c", AuthMode::Subprotocol).unwrap();
        assert_eq!(r.uri().path(), "/local");
        assert_eq!(
            r.headers()["Sec-WebSocket-Protocol"],
            "hubbub.v1, bearer.a.b.c"
        );
    }

    #[tokio::test]
    async fn bad_urls_are_refused() {
        for url in ["http://127.0.0.1/", "nonsense", "ws:///x"] {
            assert!(Target::resolve(url, 0, 1).await.is_err(), "{url}");
        }
    }

    #[tokio::test]
    async fn a_refused_connect_is_categorised() {
        // Bind then drop a listener: its port is very likely closed.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let t = Target::resolve(&format!("ws://127.0.0.1:{port}/"), 1, 1)
            .await
            .unwrap();
        let e = t.connect(0, "x", AuthMode::QueryToken).await.unwrap_err();
        assert_eq!(e.category(), "connect: ConnectionRefused");
    }
}
