//! `POST /auth/register`, `/auth/login`, `/auth/refresh` and `/auth/logout`.
//!
//! A session is an access token (HS256 JWT, short-lived, not revocable) plus a refresh token:
//! 32 random bytes, base64url, stored only as its SHA-256. Every refresh spends the presented
//! token and hands out its successor in the same family; presenting a spent token means it
//! was stolen or replayed, so the whole family is revoked and the caller must sign in again.

use base64::Engine;
use hubbub_core::store::{NewRefreshToken, Rotation, UserRecord};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::body;
use crate::{ApiError, HttpDeps, RequestInfo, json, no_content};

/// Usernames: 3..=32 chars from `[A-Za-z0-9_.-]` (docs/protocol.md).
const USERNAME_LEN: std::ops::RangeInclusive<usize> = 3..=32;
/// Passwords: 8..=128 chars (docs/protocol.md). The upper bound keeps argon2's input bounded.
const PASSWORD_LEN: std::ops::RangeInclusive<usize> = 8..=128;
/// Random bytes in a refresh token: 256 bits, beyond guessing.
const REFRESH_TOKEN_BYTES: usize = 32;
/// Longest refresh token accepted for hashing (ours are 43 chars); longer input is junk.
const REFRESH_TOKEN_MAX_CHARS: usize = 128;

/// The one answer to every failed login, so it does not tell which part was wrong.
const BAD_CREDENTIALS: &str = "the username or password is wrong";

/// What `POST /auth/register` and `/auth/login` read from the body: the two strings, before
/// any rule on their content (register checks them with [`check_registration`], login lets a
/// malformed name simply fail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Reads the `{"username","password"}` body of register and login.
pub fn credentials(req: &Request) -> Result<Credentials, ApiError> {
    let fields = body::fields(req, &["username", "password"])?;
    Ok(Credentials {
        username: fields.string("username")?,
        password: fields.string("password")?,
    })
}

/// The register rules of docs/protocol.md ("Field rules"): the username first, then the
/// password.
pub fn check_registration(c: &Credentials) -> Result<(), ApiError> {
    check_username(&c.username)?;
    check_password(&c.password)
}

fn check_username(name: &str) -> Result<(), ApiError> {
    let ok = USERNAME_LEN.contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "`username` must be 3..=32 chars from [A-Za-z0-9_.-]".into(),
        ))
    }
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if PASSWORD_LEN.contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "`password` must be 8..=128 characters".into(),
        ))
    }
}

/// The stored form of a refresh token: hex SHA-256.
pub fn refresh_token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_refresh_token() -> String {
    let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
    rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The `{"refreshToken"}` body of refresh and logout; an empty or over-long token is
/// `Unauthorized` (it cannot be one of ours).
pub fn presented_refresh_token(req: &Request) -> Result<String, ApiError> {
    let fields = body::fields(req, &["refreshToken"])?;
    let token = fields.string("refreshToken")?;
    if token.is_empty() || token.chars().count() > REFRESH_TOKEN_MAX_CHARS {
        return Err(ApiError::Unauthorized(
            "the refresh token is invalid or expired",
        ));
    }
    Ok(token)
}

/// Issues the access token and answers with the session body.
fn session_response(
    deps: &HttpDeps,
    status: u16,
    user_id: &str,
    name: &str,
    refresh_token: &str,
) -> Result<Response<Body>, ApiError> {
    let access = deps
        .issuer
        .issue(user_id, name, deps.config.access_ttl)
        .map_err(|e| ApiError::internal("issuing the access token", e))?;
    Ok(json(
        status,
        json!({
            "user": {"id": user_id, "name": name},
            "accessToken": access,
            "refreshToken": refresh_token,
            "expiresIn": deps.config.access_ttl.whole_seconds(),
        }),
    ))
}

/// Starts a new refresh-token family for `user` and answers with the session.
async fn new_session(
    deps: &HttpDeps,
    status: u16,
    user: &UserRecord,
) -> Result<Response<Body>, ApiError> {
    let refresh = new_refresh_token();
    deps.users
        .put_refresh_token(&NewRefreshToken {
            hash: refresh_token_hash(&refresh),
            user_id: user.id.clone(),
            family: uuid::Uuid::new_v4(),
            expires_at: OffsetDateTime::now_utc() + deps.config.refresh_ttl,
        })
        .await?;
    session_response(deps, status, &user.id, &user.username, &refresh)
}

/// `POST /auth/register`: 201 with a session; 409 when the username is taken; 429 once the
/// source IP has registered its allowance for the window.
pub async fn register(
    deps: &HttpDeps,
    info: &RequestInfo,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let creds = credentials(req)?;
    check_registration(&creds)?;
    let Credentials { username, password } = creds;
    // Counted per source IP before the (deliberately slow) hash, increment first and then
    // compared, so concurrent registrations in parallel Lambdas get no more than the limit.
    // Every well-formed attempt counts, taken names included: the limit is on farming.
    if let Some(ip) = &info.source_ip {
        let now = OffsetDateTime::now_utc();
        let limit = deps.limits.registrations;
        let a = deps
            .attempts
            .record_failure(&format!("register:{ip}"), limit.window, now)
            .await?;
        if a.count > limit.max {
            tracing::warn!(source_ip = %ip, registrations = a.count, "registration rate-limited");
            return Err(ApiError::RegistrationLimited {
                retry_after_secs: retry_after(a.window_ends, now),
            });
        }
    }
    let password_hash = deps.passwords.hash(password).await?;
    let user = UserRecord {
        id: uuid::Uuid::now_v7().to_string(),
        username,
        password_hash,
        created_at: OffsetDateTime::now_utc(),
    };
    match deps.users.create_user(&user).await {
        Ok(()) => {}
        Err(hubbub_core::error::StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict("the username is taken"));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(user_id = %user.id, "registered");
    new_session(deps, 201, &user).await
}

/// Seconds until `until`, at least 1 (a `Retry-After` of 0 invites a busy loop).
fn retry_after(until: OffsetDateTime, now: OffsetDateTime) -> u64 {
    let secs = (until - now).as_seconds_f64().ceil();
    if secs.is_finite() && secs >= 1.0 {
        secs as u64
    } else {
        1
    }
}

/// `POST /auth/login`: 200 with a session; 401 for any wrong credential; 429 once the
/// username or the source IP has too many recent failures.
pub async fn login(
    deps: &HttpDeps,
    info: &RequestInfo,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let Credentials { username, password } = credentials(req)?;
    let now = OffsetDateTime::now_utc();
    let ip = info.source_ip.as_deref().unwrap_or("unknown");
    // A name that cannot be a username never becomes a limiter key (it could be any size and
    // anything): such an attempt is counted against the address alone.
    let valid = check_username(&username).is_ok();
    // Counted per address (one address trying many accounts) and per account and address
    // together (guessing one account): a lockout earned from an attacker's address does not
    // lock the owner out from theirs. The account key is taken even for names that do not
    // exist, so the limit does not reveal which accounts exist, and in lower case, as
    // usernames are one account whatever their case.
    let mut keys = vec![format!("ip:{ip}")];
    if valid {
        keys.push(format!("user:{}|ip:{ip}", username.to_ascii_lowercase()));
    }
    // Increment first, then compare: every attempt is counted before its password is
    // checked, so of concurrent guesses (in parallel invocations) no more than the limit are
    // ever checked.
    let max = deps.config.login_max_failures;
    let mut limited_until: Option<OffsetDateTime> = None;
    for key in &keys {
        let a = deps
            .attempts
            .record_failure(key, deps.config.login_window, now)
            .await?;
        if a.count > max {
            tracing::warn!(key = %key, attempts = a.count, "login rate-limited");
            limited_until = Some(limited_until.map_or(a.window_ends, |t| t.max(a.window_ends)));
        }
    }
    if let Some(until) = limited_until {
        return Err(ApiError::RateLimited {
            retry_after_secs: retry_after(until, now),
        });
    }
    // Unusable names cannot exist: look nothing up, but still pay for a verification.
    let user = if valid {
        deps.users.user_by_name(&username).await?
    } else {
        None
    };
    let ok = deps
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await;
    let Some(user) = user.filter(|_| ok) else {
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
    };
    // A success was no failure: the account's count from this address is cleared, and the
    // address gets back the attempt it was charged (or logging in to one's own account
    // between guesses would reset an attacker's budget, had it been cleared instead).
    if let Some(account_key) = keys.get(1) {
        deps.attempts.clear(account_key).await?;
    }
    deps.attempts.forgive(&keys[0]).await?;
    tracing::info!(user_id = %user.id, "logged in");
    new_session(deps, 200, &user).await
}

/// `POST /auth/refresh`: 200 with a new session (the presented token is spent); 401 for an
/// unknown, expired or revoked token, and for a spent one (whose family is then revoked).
pub async fn refresh(deps: &HttpDeps, req: &Request) -> Result<Response<Body>, ApiError> {
    let presented = presented_refresh_token(req)?;
    let successor = new_refresh_token();
    let now = OffsetDateTime::now_utc();
    let rotation = deps
        .users
        .rotate_refresh_token(
            &refresh_token_hash(&presented),
            &refresh_token_hash(&successor),
            now + deps.config.refresh_ttl,
            now,
        )
        .await?;
    match rotation {
        Rotation::Rotated { user_id, .. } => {
            let user = deps
                .users
                .user_by_id(&user_id)
                .await?
                .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
            tracing::info!(user_id = %user.id, "refreshed");
            session_response(deps, 200, &user.id, &user.username, &successor)
        }
        Rotation::Reused { user_id, family } => {
            tracing::warn!(
                user_id = %user_id,
                family = %family,
                "a spent refresh token was presented again; revoked its family"
            );
            // The token was stolen or replayed: whoever holds its access tokens is cut off too.
            end_sessions(deps, &user_id).await?;
            Err(ApiError::Unauthorized(
                "the refresh token was already used; sign in again",
            ))
        }
        Rotation::Invalid => Err(ApiError::Unauthorized(
            "the refresh token is invalid or expired",
        )),
    }
}

/// `POST /auth/logout`: revokes the token's family and ends the user's live sessions (their
/// access tokens stop opening connections; their open connections are closed); 204 whether or
/// not it was live (logging out twice is not an error, and the answer tells nothing about the
/// token).
pub async fn logout(deps: &HttpDeps, req: &Request) -> Result<Response<Body>, ApiError> {
    let fields = body::fields(req, &["refreshToken"])?;
    let token = fields.string("refreshToken")?;
    if !token.is_empty() && token.chars().count() <= REFRESH_TOKEN_MAX_CHARS {
        let revoked = deps
            .users
            .revoke_refresh_family(&refresh_token_hash(&token))
            .await?;
        tracing::info!(revoked = revoked.is_some(), "logged out");
        if let Some(user_id) = revoked {
            end_sessions(deps, &user_id).await?;
        }
    }
    Ok(no_content())
}

/// Ends the user's live sessions (see [`hubbub_core::session::SessionEnder`]): their access
/// tokens issued so far stop opening connections, and their open connections are closed.
async fn end_sessions(deps: &HttpDeps, user_id: &str) -> Result<(), ApiError> {
    if let Some(sessions) = &deps.sessions {
        sessions
            .end_sessions(user_id, OffsetDateTime::now_utc())
            .await?;
    }
    Ok(())
}
