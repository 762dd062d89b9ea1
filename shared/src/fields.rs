//! JSON objects read field by field: the one reader behind client frames
//! ([`crate::protocol::ClientFrame::parse`]) and the HTTP API's request bodies.
//!
//! Every refusal names the field and the kind of problem (missing, wrong type, unknown) and
//! never quotes input: not a value (a password, a 10 KB string) and not the name of a field
//! the client made up. serde's own messages do quote both (`invalid type: string "..."`,
//! ``unknown field `...` ``), which is why frames and bodies are not read with derived
//! `Deserialize` impls.

use serde_json::{Map, Value};

use crate::protocol::ProtocolError;

/// A JSON object whose fields are read one by one.
#[derive(Debug, Clone)]
pub struct Fields(Map<String, Value>);

impl Fields {
    /// Accepts `value` when it is a JSON object holding only `allowed` fields; `what` names
    /// the document in messages ("the frame", "the body").
    pub fn from_value(value: Value, what: &str, allowed: &[&str]) -> Result<Self, ProtocolError> {
        let Value::Object(map) = value else {
            return Err(ProtocolError::bad_request(format!(
                "{what} must be a JSON object"
            )));
        };
        if map.keys().any(|k| !allowed.contains(&k.as_str())) {
            let names: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
            return Err(ProtocolError::bad_request(format!(
                "unknown field in {what}; allowed: {}",
                names.join(", ")
            )));
        }
        Ok(Self(map))
    }

    /// A required string field.
    pub fn string(&self, name: &str) -> Result<String, ProtocolError> {
        match self.0.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(wrong_type(name, "a string")),
            None => Err(missing(name)),
        }
    }

    /// An optional string field (`null` counts as absent).
    pub fn opt_string(&self, name: &str) -> Result<Option<String>, ProtocolError> {
        match self.0.get(name) {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Null) | None => Ok(None),
            Some(_) => Err(wrong_type(name, "a string")),
        }
    }

    /// An optional integer field (`null` counts as absent).
    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, ProtocolError> {
        match self.0.get(name) {
            Some(Value::Null) | None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| wrong_type(name, "an integer")),
            Some(_) => Err(wrong_type(name, "an integer")),
        }
    }

    /// An optional boolean field (`null` counts as absent).
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ProtocolError> {
        match self.0.get(name) {
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Null) | None => Ok(None),
            Some(_) => Err(wrong_type(name, "true or false")),
        }
    }
}

fn missing(name: &str) -> ProtocolError {
    ProtocolError::bad_request(format!("missing field `{name}`"))
}

fn wrong_type(name: &str, expected: &str) -> ProtocolError {
    ProtocolError::bad_request(format!("`{name}` must be {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Result<Fields, ProtocolError> {
        Fields::from_value(v, "the body", &["name", "n", "flag"])
    }

    #[test]
    fn reads_typed_fields() {
        let f = fields(json!({"name": "x", "n": 3, "flag": true})).unwrap();
        assert_eq!(f.string("name").unwrap(), "x");
        assert_eq!(f.opt_i64("n").unwrap(), Some(3));
        assert_eq!(f.opt_bool("flag").unwrap(), Some(true));
        let f = fields(json!({"n": null})).unwrap();
        assert_eq!(f.opt_i64("n").unwrap(), None);
        assert_eq!(f.opt_bool("flag").unwrap(), None);
        assert_eq!(
            f.string("name").unwrap_err().message,
            "missing field `name`"
        );
    }

    #[test]
    fn refusals_never_quote_input() {
        let long = "v".repeat(10_000);
        let f = fields(json!({"name": 7, "n": long.clone(), "flag": long.clone()})).unwrap();
        for e in [
            f.string("name").unwrap_err(),
            f.opt_i64("n").unwrap_err(),
            f.opt_bool("flag").unwrap_err(),
        ] {
            assert!(!e.message.contains("vvv"), "{}", e.message);
            assert!(!e.message.contains('7'), "{}", e.message);
            assert!(e.message.len() < 100, "{}", e.message);
        }
        let name = "k".repeat(10_000);
        let e = fields(json!({ name: 1 })).unwrap_err();
        assert!(e.message.starts_with("unknown field"), "{}", e.message);
        assert!(!e.message.contains("kkk"), "{}", e.message);
        assert!(e.message.len() < 100, "{}", e.message);
        assert!(
            fields(json!([1]))
                .unwrap_err()
                .message
                .contains("JSON object")
        );
    }
}
