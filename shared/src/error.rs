//! Errors, one type per boundary, and the stable codes clients see.
//!
//! - [`StoreError`]: what a store adapter (DynamoDB, PostgreSQL, memory) can report.
//! - [`GatewayError`]: what posting to / reading / closing a connection can report.
//! - [`AccessError`]: why a user may not use a room ([`crate::store::RoomAccess::require`]).
//! - [`RouteError`]: what a WebSocket route handler answers; it maps to an [`ErrorCode`] and a
//!   client-safe message, while the full cause chain goes to the log only.
//!
//! What a client is told about a store failure or a refused room is decided here, once
//! ([`StoreError::code`], [`StoreError::client_message`], [`AccessError`]): the WebSocket
//! routes and the HTTP API delegate to it, so both say the same thing.
//!
//! Config and JWT errors live beside their modules ([`crate::config::ConfigError`],
//! [`crate::auth::AuthError`]).

use std::error::Error as StdError;

use serde::{Deserialize, Serialize};

use crate::protocol::ProtocolError;

/// The stable error codes of docs/protocol.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    RateLimited,
    LimitExceeded,
    /// The message an edit, delete, reply or reaction names was deleted.
    Gone,
    /// The moderation hook refused the message.
    Rejected,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The HTTP status that goes with the code (HTTP API and handshake refusals).
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::RateLimited => 429,
            // A cap (rooms joined, rooms created) is not a matter of waiting: the request is
            // refused as the caller stands, as a permission would be.
            Self::LimitExceeded => 403,
            Self::Gone => 410,
            // The request was well-formed but its content is refused, as a validation would be.
            Self::Rejected => 422,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    /// The wire spelling (`bad_request`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::LimitExceeded => "limit_exceeded",
            Self::Gone => "gone",
            Self::Rejected => "rejected",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

/// A boxed cause, kept for the log.
pub type Cause = Box<dyn StdError + Send + Sync + 'static>;

/// Failures of a store port.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backing service failed or could not be reached; the operation had no effect
    /// (every multi-item write is a transaction) and may be retried.
    #[error("store unavailable during {op}")]
    Unavailable {
        op: &'static str,
        #[source]
        source: Cause,
    },
    /// The operation needs an entity that does not exist (a room, a connection).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The entity already exists (creating a room whose id is taken).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The store holds data this version cannot read.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A cap of [`crate::limits`] would be passed; nothing was changed. The message is for
    /// the client ([`crate::limits::JOINED_TOO_MANY`], [`crate::limits::CREATED_TOO_MANY`]).
    #[error("{0}")]
    LimitExceeded(&'static str),
    /// The caller may not change this entity (someone else's message); nothing was changed.
    /// The message is for the client.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The entity was deleted (a message); nothing was changed. The message is for the client.
    #[error("{0}")]
    Gone(&'static str),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn unavailable(op: &'static str, source: impl Into<Cause>) -> Self {
        Self::Unavailable {
            op,
            source: source.into(),
        }
    }

    /// The stable code the client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Unavailable { .. } => ErrorCode::Unavailable,
            Self::Corrupt(_) => ErrorCode::Internal,
            Self::LimitExceeded(_) => ErrorCode::LimitExceeded,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Gone(_) => ErrorCode::Gone,
        }
    }

    /// A message safe for the client: the kind of entity at most, never a backend detail.
    pub fn client_message(&self) -> String {
        match self {
            Self::NotFound(what) => format!("{what} not found"),
            Self::Conflict(what) => format!("{what} already exists"),
            Self::Unavailable { .. } => {
                "the service is unavailable; nothing was changed, retry later".to_owned()
            }
            Self::Corrupt(_) => "internal error".to_owned(),
            Self::LimitExceeded(message) | Self::Forbidden(message) | Self::Gone(message) => {
                (*message).to_owned()
            }
        }
    }
}

/// Why a user may not use a room; the one wording both the WebSocket routes and the HTTP API
/// show (docs/protocol.md quotes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// No such room.
    #[error("room not found")]
    Missing,
    /// A private room the user is not a member of.
    #[error("you may not use this room")]
    Denied,
}

impl AccessError {
    /// `not_found` for a missing room, `forbidden` for a private one.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Missing => ErrorCode::NotFound,
            Self::Denied => ErrorCode::Forbidden,
        }
    }
}

/// Failures of the connection gateway (the API Gateway Management API).
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The connection no longer exists (HTTP 410 GoneException, whatever the body).
    #[error("connection is gone")]
    Gone,
    /// API Gateway answered with an error status (after the retries that status allows):
    /// the call certainly did not take effect.
    #[error("management API answered {status} to {op}")]
    Rejected { op: &'static str, status: u16 },
    /// No answer in time, or the connection broke mid-request: the call may or may not have
    /// taken effect, so it is not retried.
    #[error("management API {op} timed out or broke off; outcome unknown")]
    Unknown { op: &'static str },
    /// Any other failure: no connection, a bad endpoint, no credentials.
    #[error("management API call failed during {op}")]
    Failed {
        op: &'static str,
        #[source]
        source: Cause,
    },
}

/// What a WebSocket route answers instead of its success frame.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("store failed")]
    Store(#[from] StoreError),
    /// The connection's bucket for this route is empty ([`crate::limits`]): nothing was done;
    /// the client may retry after `retry_after_ms`.
    #[error("too many requests on this connection; retry later")]
    RateLimited { retry_after_ms: u64 },
    /// The moderation hook refused the message: nothing was stored.
    #[error("the message was refused by moderation")]
    Rejected,
    /// The moderation hook gave no verdict (down, slow, a bad answer): nothing was stored
    /// (fail closed, see [`crate::moderation`]).
    #[error("moderation unavailable")]
    Moderation(#[source] crate::moderation::ModerationError),
}

impl RouteError {
    /// The stable code the client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Protocol(p) => p.code,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Access(a) => a.code(),
            Self::Store(s) => s.code(),
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Rejected => ErrorCode::Rejected,
            Self::Moderation(_) => ErrorCode::Unavailable,
        }
    }

    /// A message safe for the client: no backend detail, no input echo.
    pub fn client_message(&self) -> String {
        match self {
            Self::Protocol(p) => p.message.clone(),
            Self::Unauthorized(m) | Self::Forbidden(m) | Self::NotFound(m) => (*m).to_owned(),
            Self::Access(a) => a.to_string(),
            Self::Store(s) => s.client_message(),
            Self::RateLimited { .. } | Self::Rejected => self.to_string(),
            Self::Moderation(_) => {
                "the service is unavailable; nothing was changed, retry later".to_owned()
            }
        }
    }

    /// The retry hint of a `rate_limited` answer, in milliseconds.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_ms } => Some(*retry_after_ms),
            _ => None,
        }
    }
}

/// Renders an error and its whole `source()` chain on one line, for logs.
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_documented() {
        let all = [
            (ErrorCode::BadRequest, "bad_request", 400),
            (ErrorCode::Unauthorized, "unauthorized", 401),
            (ErrorCode::Forbidden, "forbidden", 403),
            (ErrorCode::NotFound, "not_found", 404),
            (ErrorCode::Conflict, "conflict", 409),
            (ErrorCode::PayloadTooLarge, "payload_too_large", 413),
            (ErrorCode::RateLimited, "rate_limited", 429),
            (ErrorCode::LimitExceeded, "limit_exceeded", 403),
            (ErrorCode::Gone, "gone", 410),
            (ErrorCode::Rejected, "rejected", 422),
            (ErrorCode::Unavailable, "unavailable", 503),
            (ErrorCode::Internal, "internal", 500),
        ];
        for (code, text, status) in all {
            assert_eq!(serde_json::to_value(code).unwrap(), text);
            assert_eq!(code.as_str(), text);
            assert_eq!(code.http_status(), status);
        }
    }

    #[test]
    fn store_failures_map_to_codes_without_leaking_causes() {
        let e = RouteError::from(StoreError::unavailable(
            "commit",
            "connection refused to 10.0.0.7:5432",
        ));
        assert_eq!(e.code(), ErrorCode::Unavailable);
        assert!(!e.client_message().contains("10.0.0.7"));
        assert!(chain(&e).contains("10.0.0.7"), "the log keeps the cause");
        assert_eq!(
            RouteError::from(StoreError::NotFound("room")).code(),
            ErrorCode::NotFound
        );
        assert_eq!(
            RouteError::from(StoreError::Conflict("room")).code(),
            ErrorCode::Conflict
        );
        assert_eq!(
            RouteError::from(StoreError::Corrupt("seq".into())).code(),
            ErrorCode::Internal
        );
        assert_eq!(
            RouteError::Forbidden("join the room first").client_message(),
            "join the room first"
        );
    }

    #[test]
    fn refused_rooms_have_one_code_and_wording() {
        let missing = RouteError::from(AccessError::Missing);
        assert_eq!(missing.code(), ErrorCode::NotFound);
        assert_eq!(missing.client_message(), "room not found");
        let denied = RouteError::from(AccessError::Denied);
        assert_eq!(denied.code(), ErrorCode::Forbidden);
        assert_eq!(denied.client_message(), "you may not use this room");
    }
}
