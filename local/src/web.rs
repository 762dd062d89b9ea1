//! The web client: a `GET` of `/` (without an `Upgrade` header; with one it is the WebSocket
//! handshake) answers `web/index.html`, and a `GET` of `/{path}` answers the client file `path`
//! (`/app.js`, `/room-state.js`, `/style.css`, `/img/logo.svg`, ...), with the content type of
//! its extension.
//!
//! Which files are the client is decided by [`web_files`](crate::web_files) (every file under
//! `web/` but the tests), the same for both sources: by default the copies `build.rs` compiled
//! into the binary, so `cargo run -p hubbub-local` serves the client from any working
//! directory; with `--web-dir DIR` every request reads the file from `DIR` instead, so the
//! client can be edited without rebuilding. Every answer carries `cache-control: no-cache`: a
//! browser revalidates, and an edited client shows on reload. Anything else is 404: there is no
//! directory listing and no path to escape (a client path has no `..` and no hidden names).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::server::AppState;
pub use crate::web_files::{content_type, is_client_file};

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Where the client's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The copies compiled into the binary.
    Embedded,
    /// Read from this directory on every request.
    Dir(PathBuf),
}

impl Source {
    /// `--web-dir` when given, else the embedded copies.
    pub fn from_config(dir: Option<&Path>) -> Self {
        dir.map_or(Self::Embedded, |d| Self::Dir(d.to_path_buf()))
    }

    /// For the banner: where the client comes from, and whether it has an `index.html`.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded if embedded("index.html").is_some() => "built in".to_owned(),
            Self::Embedded => {
                "NOT built in (web/index.html was missing at compile time; use --web-dir)"
                    .to_owned()
            }
            Self::Dir(d) => format!("from {}", d.display()),
        }
    }
}

/// The paths (relative to `web/`) of the embedded files.
pub fn embedded_files() -> Vec<&'static str> {
    EMBEDDED.iter().map(|(name, _)| *name).collect()
}

fn embedded(name: &str) -> Option<&'static [u8]> {
    EMBEDDED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// Why a file could not be served.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("no such file")]
    NotFound,
    #[error("could not read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the file read was cancelled")]
    Join(#[source] tokio::task::JoinError),
}

/// The bytes of the client file `name` (a path relative to `web/`) from `source`; a name that
/// is not a client file is [`WebError::NotFound`] whether or not it exists.
pub async fn read(source: &Source, name: &str) -> Result<Vec<u8>, WebError> {
    if !is_client_file(name) {
        return Err(WebError::NotFound);
    }
    match source {
        Source::Embedded => embedded(name).map(<[u8]>::to_vec).ok_or(WebError::NotFound),
        Source::Dir(dir) => {
            // `name` is relative, without `..` or hidden names: it stays inside `dir`.
            let path = dir.join(name);
            // std::fs on the blocking pool: the files are small, and tokio's `fs` feature is
            // not worth enabling for a handful of reads.
            let result = tokio::task::spawn_blocking({
                let path = path.clone();
                move || std::fs::read(path)
            })
            .await
            .map_err(WebError::Join)?;
            match result {
                Ok(bytes) => Ok(bytes),
                // A folder where a file was asked for is as absent as a missing file.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
                    ) =>
                {
                    Err(WebError::NotFound)
                }
                Err(source) => Err(WebError::Read { path, source }),
            }
        }
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        r#"{"message":"Not Found"}"#,
    )
        .into_response()
}

/// Answers the client file `name` (a path relative to `web/`); anything else is 404.
pub(crate) async fn serve(state: &AppState, name: &str) -> Response {
    let started = Instant::now();
    let route = format!("GET /{name}");
    let resp = match read(&state.web, name).await {
        Ok(bytes) => {
            let mut resp = bytes.into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(name)),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
        Err(WebError::NotFound) => not_found(),
        Err(e) => {
            tracing::error!(error = %hubbub_core::error::chain(&e), route, "web client file");
            (StatusCode::INTERNAL_SERVER_ERROR, "could not read the file").into_response()
        }
    };
    tracing::info!(
        route,
        status = resp.status().as_u16(),
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "web client"
    );
    resp
}

/// Answers `GET /{path}` with the client file at `path` (the request's path as sent, without
/// the leading `/`). Client paths consist of characters that are never percent-encoded, so the
/// raw path is the file's path; one with `%` in it is no client file.
pub(crate) async fn serve_path(state: &AppState, uri: &Uri) -> Response {
    serve(state, uri.path().trim_start_matches('/')).await
}

/// The router's fallback, for paths no route matches (files in folders, like
/// `/img/logo.svg`): a `GET` or `HEAD` of a client file answers it, anything else is API
/// Gateway's 404.
pub(crate) async fn fallback(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
) -> Response {
    if method == Method::GET || method == Method::HEAD {
        return serve_path(&state, &uri).await;
    }
    crate::ws::not_found().await
}
