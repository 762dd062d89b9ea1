//! Request bodies: the size limit, and JSON objects read field by field with messages that
//! name the field and never echo its value (a password must not come back in an error).

use lambda_http::{Body, Request};
use serde_json::{Map, Value};

use crate::ApiError;

/// Refuses a body over `limit` bytes with 413, before anything parses it.
pub fn check_size(req: &Request, limit: usize) -> Result<(), ApiError> {
    if req.body().len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(())
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

/// Longest field name echoed in an "unknown field" message.
const FIELD_NAME_ECHO_MAX: usize = 40;

/// A JSON object body whose fields are read one by one.
pub struct Fields(Map<String, Value>);

impl Fields {
    /// Parses the body as a JSON object allowing only `allowed` fields.
    pub fn parse(req: &Request, allowed: &[&str]) -> Result<Self, ApiError> {
        let bytes: &[u8] = match req.body() {
            Body::Empty => b"",
            Body::Text(t) => t.as_bytes(),
            Body::Binary(b) => b,
            _ => b"",
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(bad("the body must be a JSON object"));
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|_| bad("the body is not valid JSON"))?;
        let Value::Object(map) = value else {
            return Err(bad("the body must be a JSON object"));
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            let name: String = unknown.chars().take(FIELD_NAME_ECHO_MAX).collect();
            return Err(bad(format!("unknown field `{name}`")));
        }
        Ok(Self(map))
    }

    /// A required string field.
    pub fn string(&self, name: &str) -> Result<String, ApiError> {
        match self.0.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(bad(format!("`{name}` must be a string"))),
            None => Err(bad(format!("missing field `{name}`"))),
        }
    }

    /// An optional boolean field.
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(name) {
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Null) | None => Ok(None),
            Some(_) => Err(bad(format!("`{name}` must be true or false"))),
        }
    }
}
