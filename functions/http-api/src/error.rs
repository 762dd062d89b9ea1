//! The HTTP API's error type and how it becomes `{"error":{"code","message","requestId"}}`.
//!
//! Every variant maps to one stable [`ErrorCode`] and its status; the client message never
//! carries a backend detail or echoes input, while the full cause chain goes to the log.
//! Store failures and refused rooms say what hubbub-core's policy says
//! ([`StoreError::client_message`], [`AccessError`]), as the WebSocket routes do.

use hubbub_core::auth::AuthError;
use hubbub_core::error::{AccessError, ErrorCode, StoreError, chain};
use hubbub_core::protocol::ProtocolError;
use lambda_http::{Body, Response};
use serde_json::json;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A malformed body, path or query; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    /// A shape error from the protocol types (room ids, history cursors).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Credentials or a refresh token were refused; the message is the same for every cause.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The bearer token was refused (the reason is logged, never shown).
    #[error("the access token was refused")]
    Token(#[source] AuthError),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// Too many failed logins; retry after this many seconds.
    #[error("too many failed logins; retry later")]
    RateLimited { retry_after_secs: u64 },
    /// Too many registrations from this address; retry after this many seconds.
    #[error("too many accounts registered from this address; retry later")]
    RegistrationLimited { retry_after_secs: u64 },
    /// The room is missing or the caller may not use it (the wording is hubbub-core's).
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("store failed")]
    Store(#[from] StoreError),
    /// Hashing or issuing failed: a bug or a resource problem, never the client's fault.
    #[error("{what} failed")]
    Internal {
        what: &'static str,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl ApiError {
    /// An internal failure with its cause.
    pub fn internal(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Internal {
            what,
            source: Some(source.into()),
        }
    }

    /// The stable code the client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Protocol(p) => p.code,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            // The issuer's key set could not be fetched: the token may be fine, retry later.
            Self::Token(AuthError::KeysUnavailable) => ErrorCode::Unavailable,
            Self::Token(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::RateLimited { .. } | Self::RegistrationLimited { .. } => ErrorCode::RateLimited,
            Self::Access(a) => a.code(),
            Self::Store(s) => s.code(),
            Self::Internal { .. } => ErrorCode::Internal,
        }
    }

    /// A message safe for the client.
    pub fn client_message(&self) -> String {
        match self {
            Self::BadRequest(m) => m.clone(),
            Self::Protocol(p) => p.message.clone(),
            Self::Unauthorized(m) | Self::Forbidden(m) | Self::NotFound(m) | Self::Conflict(m) => {
                (*m).to_owned()
            }
            Self::Token(AuthError::KeysUnavailable) => {
                "the token issuer cannot be reached; retry later".to_owned()
            }
            Self::Token(_) => "the access token is missing, invalid or expired".to_owned(),
            Self::PayloadTooLarge { .. }
            | Self::RateLimited { .. }
            | Self::RegistrationLimited { .. } => self.to_string(),
            Self::Access(a) => a.to_string(),
            Self::Store(s) => s.client_message(),
            Self::Internal { .. } => "internal error".to_owned(),
        }
    }

    /// The error response, logged with its cause chain (5xx at error level).
    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let code = self.code();
        let status = code.http_status();
        if status >= 500 {
            tracing::error!(request_id, code = code.as_str(), error = %chain(&self), "request failed");
        } else {
            tracing::info!(request_id, code = code.as_str(), reason = %chain(&self), "request refused");
        }
        let body = json!({"error": {
            "code": code,
            "message": self.client_message(),
            "requestId": request_id,
        }});
        let mut builder = Response::builder().status(status);
        match &self {
            Self::RateLimited { retry_after_secs }
            | Self::RegistrationLimited { retry_after_secs } => {
                builder = builder.header("retry-after", retry_after_secs.to_string());
            }
            Self::Unauthorized(_) | Self::Token(_) if status == 401 => {
                builder = builder.header("www-authenticate", "Bearer");
            }
            _ => {}
        }
        crate::finish(builder, Some(body))
    }
}
