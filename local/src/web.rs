//! The web client: `GET /` (without an `Upgrade` header; with one it is the WebSocket
//! handshake), `/index.html`, `/app.js` and `/style.css` answer the files of `web/`.
//!
//! By default they are the copies compiled into the binary (`build.rs` embeds whatever of
//! them existed; a missing one answers 404), so `cargo run -p hubbub-local` serves the client
//! from any working directory. With `--web-dir DIR` every request reads the file from `DIR`
//! instead, so the client can be edited without rebuilding. Every answer carries
//! `cache-control: no-cache`: a browser revalidates, and an edited client shows on reload.
//! Only these three names are served: there is no directory listing and no path to escape.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::server::AppState;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The files of the client and their content types.
pub const FILES: [(&str, &str); 3] = [
    ("index.html", "text/html; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"),
];

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

/// The names of the embedded files.
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

/// The bytes of `name` (one of [`FILES`]) from `source`.
pub async fn read(source: &Source, name: &str) -> Result<Vec<u8>, WebError> {
    match source {
        Source::Embedded => embedded(name).map(<[u8]>::to_vec).ok_or(WebError::NotFound),
        Source::Dir(dir) => {
            let path = dir.join(name);
            // std::fs on the blocking pool: the files are small, and tokio's `fs` feature is
            // not worth enabling for three reads.
            let result = tokio::task::spawn_blocking({
                let path = path.clone();
                move || std::fs::read(path)
            })
            .await
            .map_err(WebError::Join)?;
            match result {
                Ok(bytes) => Ok(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(WebError::NotFound),
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

/// Answers `name`, one of [`FILES`]; anything else is 404.
pub(crate) async fn serve(state: &AppState, name: &str) -> Response {
    let started = Instant::now();
    let route = format!("GET /{name}");
    let resp = match FILES.iter().find(|(n, _)| *n == name) {
        None => not_found(),
        Some((name, content_type)) => match read(&state.web, name).await {
            Ok(bytes) => {
                let mut resp = bytes.into_response();
                let h = resp.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                resp
            }
            Err(WebError::NotFound) => not_found(),
            Err(e) => {
                tracing::error!(error = %hubbub_core::error::chain(&e), "web client file");
                (StatusCode::INTERNAL_SERVER_ERROR, "could not read the file").into_response()
            }
        },
    };
    tracing::info!(
        route,
        status = resp.status().as_u16(),
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "web client"
    );
    resp
}

/// `GET /index.html`.
pub(crate) async fn index(State(state): State<Arc<AppState>>) -> Response {
    serve(&state, "index.html").await
}

/// `GET /app.js`.
pub(crate) async fn app_js(State(state): State<Arc<AppState>>) -> Response {
    serve(&state, "app.js").await
}

/// `GET /style.css`.
pub(crate) async fn style_css(State(state): State<Arc<AppState>>) -> Response {
    serve(&state, "style.css").await
}
