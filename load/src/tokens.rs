//! Where the connections' access tokens come from: a file of JWTs, a command that prints them
//! (`hubbub-local token --user load-{i}`), or accounts registered (or logged into) over the
//! HTTP API. Tokens are reused round-robin when there are fewer than connections.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};

/// Token-minting commands run at once. Each is a process start (and, for hubbub-local, a
/// binary load); four keep a small machine responsive while minting hundreds.
const COMMAND_CONCURRENCY: usize = 4;
/// Registrations or logins in flight. Each costs the server an argon2id hash (tens of ms of CPU
/// and ~19 MiB); more in flight gains nothing on a small server and risks `unavailable`.
const REGISTER_CONCURRENCY: usize = 4;
/// Longest HTTP exchange with the API: a cold Lambda plus an argon2id hash stays well inside.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A source of tokens.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// One JWT per line; blank lines and `#` comments are skipped.
    File(PathBuf),
    /// A shell command. With `{i}` in it, it runs once per user (`users` times, `{i}` replaced
    /// by 0, 1, ...) and prints one token; without, it runs once and prints one token a line.
    Command { command: String, users: usize },
    /// Accounts `{prefix}{i}` on the HTTP API at `base` (`POST /auth/register`, or
    /// `/auth/login` when the name is taken).
    Register {
        base: String,
        users: usize,
        prefix: String,
        password: String,
    },
}

/// Why tokens could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {why}")]
    Command { command: String, why: String },
    #[error("{url}: {why}")]
    Http { url: String, why: String },
    #[error("no tokens were produced")]
    Empty,
}

/// Obtains the tokens of `source`.
pub async fn obtain(source: &TokenSource) -> Result<Vec<String>, TokenError> {
    let tokens = match source {
        TokenSource::File(path) => {
            // Read once at start, before any connection: blocking here stalls nothing.
            let text = std::fs::read_to_string(path).map_err(|source| TokenError::File {
                path: path.clone(),
                source,
            })?;
            lines(&text)
        }
        TokenSource::Command { command, users } => from_command(command, *users).await?,
        TokenSource::Register {
            base,
            users,
            prefix,
            password,
        } => register_all(base, *users, prefix, password).await?,
    };
    if tokens.is_empty() {
        return Err(TokenError::Empty);
    }
    Ok(tokens)
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

async fn run_command(command: &str) -> Result<String, TokenError> {
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| TokenError::Command {
            command: command.into(),
            why: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(TokenError::Command {
            command: command.into(),
            why: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    String::from_utf8(out.stdout).map_err(|_| TokenError::Command {
        command: command.into(),
        why: "output is not UTF-8".into(),
    })
}

async fn from_command(command: &str, users: usize) -> Result<Vec<String>, TokenError> {
    if !command.contains("{i}") {
        return Ok(lines(&run_command(command).await?));
    }
    let runs = (0..users).map(|i| {
        let cmd = command.replace("{i}", &i.to_string());
        async move { run_command(&cmd).await.map(|out| lines(&out)) }
    });
    let mut results: Vec<Vec<String>> = futures::stream::iter(runs)
        .buffered(COMMAND_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(results.iter_mut().flat_map(std::mem::take).collect())
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

#[derive(Serialize)]
struct Credentials<'a> {
    username: &'a str,
    password: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenAnswer {
    access_token: String,
}

async fn register_all(
    base: &str,
    users: usize,
    prefix: &str,
    password: &str,
) -> Result<Vec<String>, TokenError> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| TokenError::Http {
            url: base.into(),
            why: format!("TLS roots: {e}"),
        })?
        .https_or_http()
        .enable_http1()
        .build();
    let client: HttpClient =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https);
    let base = base.trim_end_matches('/');
    let jobs = (0..users).map(|i| {
        let client = client.clone();
        let username = format!("{prefix}{i}");
        async move { register_one(&client, base, &username, password).await }
    });
    futures::stream::iter(jobs)
        .buffered(REGISTER_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Registers `username`; a 409 (taken, e.g. by an earlier run) logs in instead.
async fn register_one(
    client: &HttpClient,
    base: &str,
    username: &str,
    password: &str,
) -> Result<String, TokenError> {
    let register = format!("{base}/auth/register");
    let (status, body) = post(client, &register, username, password).await?;
    let (url, status, body) = if status == 409 {
        let login = format!("{base}/auth/login");
        let (status, body) = post(client, &login, username, password).await?;
        (login, status, body)
    } else {
        (register, status, body)
    };
    if !(200..300).contains(&status) {
        return Err(TokenError::Http {
            url,
            why: format!(
                "status {status} for {username}: {}",
                String::from_utf8_lossy(&body)
            ),
        });
    }
    serde_json::from_slice::<TokenAnswer>(&body)
        .map(|a| a.access_token)
        .map_err(|e| TokenError::Http {
            url,
            why: format!("no accessToken in the answer: {e}"),
        })
}

async fn post(
    client: &HttpClient,
    url: &str,
    username: &str,
    password: &str,
) -> Result<(u16, Bytes), TokenError> {
    let err = |why: String| TokenError::Http {
        url: url.into(),
        why,
    };
    let body =
        serde_json::to_vec(&Credentials { username, password }).map_err(|e| err(e.to_string()))?;
    let req = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| err(e.to_string()))?;
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| err(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| err(e.to_string()))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .map_err(|_| err(format!("no answer within {HTTP_TIMEOUT:?}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_gives_one_token_a_line() {
        let dir = std::env::temp_dir().join(format!("hubbub-load-tokens-{}", std::process::id()));
        std::fs::write(&dir, "# tokens\n a.b.c \n\nd.e.f\n").unwrap();
        let t = obtain(&TokenSource::File(dir.clone())).await.unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(t, vec!["a.b.c", "d.e.f"]);
    }

    #[tokio::test]
    async fn a_command_runs_per_user_or_once() {
        let t = obtain(&TokenSource::Command {
            command: "echo tok-{i}".into(),
            users: 3,
        })
        .await
        .unwrap();
        assert_eq!(t, vec!["tok-0", "tok-1", "tok-2"]);
        let t = obtain(&TokenSource::Command {
            command: "printf 'x\\ny\\n'".into(),
            users: 3,
        })
        .await
        .unwrap();
        assert_eq!(t, vec!["x", "y"]);
        let e = obtain(&TokenSource::Command {
            command: "echo nope >&2; exit 3".into(),
            users: 1,
        })
        .await
        .unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        assert!(matches!(
            obtain(&TokenSource::Command {
                command: "true".into(),
                users: 1
            })
            .await,
            Err(TokenError::Empty)
        ));
    }
}
