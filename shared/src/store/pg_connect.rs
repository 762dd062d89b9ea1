//! How hubbub reaches PostgreSQL, in one place for every PostgreSQL store: the URL's `sslmode`
//! and `sslrootcert`, TLS over rustls with certificate verification, credentials that may
//! rotate, and the connection pool.
//!
//! `sslmode` keeps libpq's meanings (docs/security.md, "The database connection"):
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` | when the server offers it, else plaintext | not checked |
//! | `require` | always | not checked; with `sslrootcert`, as `verify-ca` (as libpq) |
//! | `verify-ca` | always | signed by a trusted CA |
//! | `verify-full` | always | signed by a trusted CA and naming the host of the URL |
//!
//! Trusted CAs are `sslrootcert` (a PEM file) when given, else the Amazon RDS and RDS Proxy
//! roots compiled in from `infra/certs/rds-ca-bundle.pem`. A URL without `sslmode` means
//! `verify-full`, except when every host is loopback or a Unix socket (a database on the same
//! machine: hubbub-local, tests), where it means libpq's default, `prefer`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::future::BoxFuture;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::StoreError;

/// The Amazon RDS roots (every commercial region) and the RDS Proxy roots.
const RDS_CA_BUNDLE: &[u8] = include_bytes!("../../../infra/certs/rds-ca-bundle.pem");

/// How long to wait for a pooled connection or a new one. API Gateway gives an integration
/// 29 s; a database that cannot hand out a connection in 5 s should turn into a quick
/// `unavailable` the client can retry, not a timeout.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// libpq's `sslmode`, as hubbub honours it (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(raw: &str) -> Result<Self, DbUrlError> {
        Ok(match raw {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            // libpq's `allow` tries plaintext first: a downgrade hubbub does not offer.
            other => return Err(DbUrlError::SslMode(other.to_owned())),
        })
    }
}

/// A database URL hubbub cannot use.
#[derive(Debug, thiserror::Error)]
pub enum DbUrlError {
    #[error("{0}")]
    Parse(#[source] tokio_postgres::Error),
    #[error("sslmode `{0}` is not one of disable, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    #[error("sslrootcert {path}: {reason}")]
    RootCert { path: PathBuf, reason: String },
    #[error("TLS setup: {0}")]
    Tls(String),
}

/// Where a database URL points and how to secure the connection: everything a new connection
/// needs, parsed and built once per URL.
#[derive(Clone)]
pub struct DbTarget {
    pg: tokio_postgres::Config,
    mode: SslMode,
    tls: Option<MakeRustlsConnect>,
}

impl std::fmt::Debug for DbTarget {
    // Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbTarget")
            .field("hosts", &self.pg.get_hosts())
            .field("user", &self.pg.get_user())
            .field("dbname", &self.pg.get_dbname())
            .field("sslmode", &self.mode)
            .finish()
    }
}

/// Splits `sslmode` and `sslrootcert` (which tokio-postgres does not know, or knows only in
/// part) off a URL or key=value string.
fn split_tls_params(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root) = (None, None);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_owned(), None, None);
        };
        let mut rest = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "sslmode" => mode = Some(v.into_owned()),
                "sslrootcert" => root = Some(v.into_owned()),
                _ => {
                    rest.append_pair(&k, &v);
                }
            }
        }
        let rest = rest.finish();
        let url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{rest}")
        };
        return (url, mode, root);
    }
    // key=value form: unquoted `sslmode=...` and `sslrootcert=...` words.
    let mut kept = Vec::new();
    for word in url.split_whitespace() {
        if let Some(v) = word.strip_prefix("sslmode=") {
            mode = Some(v.to_owned());
        } else if let Some(v) = word.strip_prefix("sslrootcert=") {
            root = Some(v.to_owned());
        } else {
            kept.push(word);
        }
    }
    (kept.join(" "), mode, root)
}

/// `url` with its host replaced by `host` (RDS Proxy's endpoint in front of the database the
/// secret names); the port, credentials and parameters are kept.
pub fn with_host(url: &str, host: &str) -> Result<String, DbUrlError> {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (&authority[..=at], &authority[at + 1..]),
            None => ("", authority),
        };
        // The port follows the last ':' unless that ':' is inside an IPv6 literal.
        let port = match hostport.rfind(':') {
            Some(i) if !hostport[i..].contains(']') => &hostport[i..],
            _ => "",
        };
        return Ok(format!(
            "{}{userinfo}{host}{port}{}",
            &url[..scheme_end + 3],
            &rest[authority_end..]
        ));
    }
    let mut words: Vec<String> = url
        .split_whitespace()
        .filter(|w| !w.starts_with("host=") && !w.starts_with("hostaddr="))
        .map(str::to_owned)
        .collect();
    words.push(format!("host={host}"));
    Ok(words.join(" "))
}

fn is_local(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

impl DbTarget {
    /// Parses a `postgres://` URL or key=value string and builds its TLS setup.
    pub fn parse(url: &str) -> Result<Self, DbUrlError> {
        let (rest, mode, root) = split_tls_params(url);
        let mut pg: tokio_postgres::Config = rest.parse().map_err(DbUrlError::Parse)?;
        let mode = match mode {
            Some(m) => SslMode::parse(&m)?,
            None if !pg.get_hosts().is_empty() && pg.get_hosts().iter().all(is_local) => {
                SslMode::Prefer
            }
            None => SslMode::VerifyFull,
        };
        pg.ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let tls = match mode {
            SslMode::Disable => None,
            _ => Some(MakeRustlsConnect::new(client_config(mode, root)?)),
        };
        Ok(Self { pg, mode, tls })
    }

    /// The `sslmode` in force.
    pub fn ssl_mode(&self) -> SslMode {
        self.mode
    }

    /// Opens one connection; its driver runs on a task of its own.
    async fn connect(
        &self,
    ) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
        let on_error = |e: tokio_postgres::Error| {
            tracing::warn!(error = %e, "PostgreSQL connection ended with an error");
        };
        match &self.tls {
            None => {
                let (client, conn) = self.pg.connect(tokio_postgres::NoTls).await?;
                Ok((
                    client,
                    tokio::spawn(async move { conn.await.unwrap_or_else(on_error) }),
                ))
            }
            Some(tls) => {
                let (client, conn) = self.pg.connect(tls.clone()).await?;
                Ok((
                    client,
                    tokio::spawn(async move { conn.await.unwrap_or_else(on_error) }),
                ))
            }
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(root: Option<&str>) -> Result<RootCertStore, DbUrlError> {
    let (pem, path) = match root {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| DbUrlError::RootCert {
                path: path.into(),
                reason: e.to_string(),
            })?;
            (bytes, Some(path))
        }
        None => (RDS_CA_BUNDLE.to_vec(), None),
    };
    let bad = |reason: String| DbUrlError::RootCert {
        path: path.map_or_else(|| "infra/certs/rds-ca-bundle.pem".into(), Into::into),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(bad("no usable CA certificate".into()));
    }
    Ok(store)
}

fn client_config(mode: SslMode, root: Option<String>) -> Result<rustls::ClientConfig, DbUrlError> {
    let tls_err = |e: rustls::Error| DbUrlError::Tls(e.to_string());
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?;
    // libpq: `require` with a root certificate file behaves as `verify-ca`.
    let mode = match (mode, &root) {
        (SslMode::Require, Some(_)) => SslMode::VerifyCa,
        (m, _) => m,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(EncryptOnly { provider }),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let webpki = WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(root.as_deref())?),
                provider,
            )
            .build()
            .map_err(|e| DbUrlError::Tls(e.to_string()))?;
            if mode == SslMode::VerifyCa {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// `verify-ca`: the chain must lead to a trusted CA; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require`: encrypted, but whoever answers is believed (libpq's meaning).
/// The handshake's own signatures are still checked.
#[derive(Debug)]
struct EncryptOnly {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Where the pool finds the database for each new connection when the URL may change
/// (a rotated password): implemented over Secrets Manager by [`crate::secrets`].
#[async_trait]
pub trait TargetSource: Send + Sync {
    /// The latest known target (refreshed when stale; never fails once loaded).
    async fn current(&self) -> Arc<DbTarget>;
    /// Called after the server refused the credentials: the target read anew, if it changed.
    async fn refreshed(&self) -> Option<Arc<DbTarget>>;
}

/// Where a pool's connections go.
#[derive(Clone)]
pub enum DbCredentials {
    /// One URL for the life of the process (hubbub-local, tests, `DATABASE_URL`).
    Fixed(Arc<DbTarget>),
    /// A URL that can change under us (Secrets Manager rotation).
    Rotating(Arc<dyn TargetSource>),
}

impl DbCredentials {
    /// Credentials from a URL that does not change.
    pub fn fixed(url: &str) -> Result<Self, DbUrlError> {
        Ok(Self::Fixed(Arc::new(DbTarget::parse(url)?)))
    }
}

/// A refused login: the password (or user) is not what the server expects, as after a
/// rotation this process has not seen yet.
fn is_auth_failure(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    })
}

struct Connector(DbCredentials);

impl deadpool_postgres::Connect for Connector {
    fn connect(
        &self,
        _pg_config: &tokio_postgres::Config,
    ) -> BoxFuture<
        '_,
        Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        Box::pin(async move {
            match &self.0 {
                DbCredentials::Fixed(target) => target.connect().await,
                DbCredentials::Rotating(source) => {
                    let target = source.current().await;
                    match target.connect().await {
                        // One retry, with the secret read anew: a rotated password is
                        // picked up by the first connection that needs it.
                        Err(e) if is_auth_failure(&e) => match source.refreshed().await {
                            Some(newer) => {
                                tracing::info!(
                                    "PostgreSQL refused the credentials; retrying with the rotated secret"
                                );
                                newer.connect().await
                            }
                            None => Err(e),
                        },
                        other => other,
                    }
                }
            }
        })
    }
}

/// A pool of at most `max_connections` over `credentials`. Connects lazily.
pub fn pool(credentials: DbCredentials, max_connections: usize) -> Result<Pool, StoreError> {
    let pg = match &credentials {
        DbCredentials::Fixed(t) => t.pg.clone(),
        // Only the connector reads the configuration; deadpool keeps this one for show.
        DbCredentials::Rotating(_) => tokio_postgres::Config::new(),
    };
    let mgr = Manager::from_connect(
        pg,
        Connector(credentials),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(max_connections.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_TIMEOUT))
        .create_timeout(Some(POOL_TIMEOUT))
        .build()
        .map_err(|e| StoreError::unavailable("build pool", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_defaults_to_verify_full_away_from_this_machine() {
        let mode = |url: &str| DbTarget::parse(url).map(|t| t.ssl_mode()).unwrap();
        assert_eq!(
            mode("postgres://u:p@db.abc.eu-west-1.rds.amazonaws.com:5432/hubbub"),
            SslMode::VerifyFull
        );
        assert_eq!(mode("postgres://u@127.0.0.1:5432/db"), SslMode::Prefer);
        assert_eq!(mode("postgres://u@localhost/db"), SslMode::Prefer);
        assert_eq!(mode("host=/var/run/postgresql user=u"), SslMode::Prefer);
        assert_eq!(
            mode("postgres://u@db.example.com/db?sslmode=disable&application_name=x"),
            SslMode::Disable
        );
        assert_eq!(
            mode("host=db.example.com user=u sslmode=require"),
            SslMode::Require
        );
        assert!(matches!(
            DbTarget::parse("postgres://u@h/db?sslmode=allow"),
            Err(DbUrlError::SslMode(_))
        ));
        assert!(matches!(
            DbTarget::parse("postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent.pem"),
            Err(DbUrlError::RootCert { .. })
        ));
    }

    #[test]
    fn other_parameters_survive_and_the_password_is_never_printed() {
        let t = DbTarget::parse(
            "postgres://u:hunter2-secret@db.example.com/db?application_name=hubbub&sslmode=verify-full",
        )
        .unwrap();
        assert_eq!(t.pg.get_application_name(), Some("hubbub"));
        assert!(!format!("{t:?}").contains("hunter2"), "{t:?}");
    }

    #[test]
    fn a_proxy_endpoint_replaces_only_the_host() {
        assert_eq!(
            with_host(
                "postgres://u:p%40ss@db.abc.rds.amazonaws.com:5432/hubbub?sslmode=verify-full",
                "hubbub-db.proxy-xyz.eu-west-1.rds.amazonaws.com"
            )
            .unwrap(),
            "postgres://u:p%40ss@hubbub-db.proxy-xyz.eu-west-1.rds.amazonaws.com:5432/hubbub?sslmode=verify-full"
        );
        assert_eq!(
            with_host("postgres://u@db/x", "proxy").unwrap(),
            "postgres://u@proxy/x"
        );
        assert_eq!(
            with_host("host=db user=u", "proxy").unwrap(),
            "user=u host=proxy"
        );
    }

    #[test]
    fn the_bundled_rds_roots_parse() {
        let store = roots(None).unwrap();
        // Every region's RSA2048, RSA4096 and ECC384 roots, and the RDS Proxy roots.
        assert!(store.len() >= 80, "{}", store.len());
    }
}
