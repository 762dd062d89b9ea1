//! Request bodies: the size limit, and JSON objects read field by field with
//! [`hubbub_core::fields`], whose messages name the field and never echo a value or an
//! unknown field's name (a password must not come back in an error).

use hubbub_core::fields::Fields;
use lambda_http::{Body, Request};
use serde_json::Value;

use crate::ApiError;

/// Refuses a body over `limit` bytes with 413, before anything parses it.
pub fn check_size(req: &Request, limit: usize) -> Result<(), ApiError> {
    if req.body().len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(())
}

/// Parses the body as a JSON object allowing only `allowed` fields, read with
/// [`Fields`]' typed getters (their errors become 400 `bad_request` through `?`).
pub fn fields(req: &Request, allowed: &[&str]) -> Result<Fields, ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|_| ApiError::BadRequest("the body is not valid JSON".into()))?;
    Ok(Fields::from_value(value, "the body", allowed)?)
}
