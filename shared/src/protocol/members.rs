//! The `members` cursor: where a page of a room's connected users starts, opaque to clients.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::ProtocolError;

/// Longest decoded `members` cursor: a connection id (API Gateway's are 16 characters;
/// generous for other stores' ids).
const MEMBERS_CURSOR_MAX: usize = 128;

/// Where a `members` page starts: opaque to clients (base64url of the store's position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersCursor(String);

impl MembersCursor {
    /// The cursor after a store page that ended at `position`.
    pub fn from_position(position: &str) -> Self {
        Self(URL_SAFE_NO_PAD.encode(position))
    }

    /// A cursor a client sent back: it must be one this server gave out (base64url of a
    /// short, printable position).
    pub fn parse(raw: &str) -> Result<Self, ProtocolError> {
        let bad = || ProtocolError::bad_request("`cursor` is not a cursor this server gave out");
        let decoded = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let ok = (1..=MEMBERS_CURSOR_MAX).contains(&decoded.len())
            && decoded.iter().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(bad());
        }
        Ok(Self(raw.to_owned()))
    }

    /// What the client sees.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The store position it stands for.
    pub fn position(&self) -> String {
        URL_SAFE_NO_PAD
            .decode(&self.0)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

impl Serialize for MembersCursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}
