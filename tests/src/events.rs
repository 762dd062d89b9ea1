//! The sample events of `events/`, loaded and varied for handler tests: the handlers are fed
//! exactly the shapes API Gateway sends.

use hubbub_core::aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest,
};
use serde_json::{Value, json};

/// The raw JSON of `events/{name}.json`.
pub fn raw(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The variations every sample event takes, whatever its kind: the request id, and any
/// change to the raw JSON.
macro_rules! sample_variations {
    ($builder:ty) => {
        impl $builder {
            /// Sets the request id.
            pub fn request_id(mut self, id: &str) -> Self {
                self.0["requestContext"]["requestId"] = json!(id);
                self
            }

            /// Mutates the raw JSON.
            pub fn with(mut self, f: impl FnOnce(&mut Value)) -> Self {
                f(&mut self.0);
                self
            }
        }
    };
}

sample_variations!(Ws);
sample_variations!(Http);

/// A WebSocket event built from a sample, varied field by field.
#[derive(Clone)]
pub struct Ws(pub Value);

impl Ws {
    /// Starts from `events/{name}.json`.
    pub fn sample(name: &str) -> Self {
        Self(raw(name))
    }

    /// Sets the connection id.
    pub fn connection(mut self, id: &str) -> Self {
        self.0["requestContext"]["connectionId"] = json!(id);
        self
    }

    /// Sets the authorizer context's user.
    pub fn user(mut self, id: &str, name: &str) -> Self {
        let a = &mut self.0["requestContext"]["authorizer"];
        a["principalId"] = json!(id);
        a["userId"] = json!(id);
        a["userName"] = json!(name);
        self
    }

    /// Sets the frame text (and the route key API Gateway would pick from its `action`).
    pub fn body(mut self, body: &str) -> Self {
        let route = hubbub_core::routes::RouteKey::for_body(body);
        self.0["requestContext"]["routeKey"] = json!(route.as_str());
        self.0["body"] = json!(body);
        self
    }

    /// Sets the frame from a JSON value.
    pub fn frame(self, frame: Value) -> Self {
        self.body(&frame.to_string())
    }

    /// The typed event, as the Lambda runtime would deserialise it.
    pub fn build(&self) -> ApiGatewayWebsocketProxyRequest {
        serde_json::from_value(self.0.clone()).expect("event deserialises")
    }
}

/// An authorizer request from `events/{name}.json`, with its token replaced (or removed).
pub fn authorizer(name: &str, token: Option<&str>) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    let mut v = raw(name);
    if v["queryStringParameters"].get("token").is_some() {
        match token {
            Some(t) => {
                v["queryStringParameters"]["token"] = json!(t);
                v["multiValueQueryStringParameters"]["token"] = json!([t]);
            }
            None => {
                v["queryStringParameters"] = json!({});
                v["multiValueQueryStringParameters"] = json!({});
            }
        }
    } else {
        let header = match token {
            Some(t) => format!("hubbub.v1, bearer.{t}"),
            None => "hubbub.v1".to_owned(),
        };
        v["headers"]["Sec-WebSocket-Protocol"] = json!(header);
        v["multiValueHeaders"]["Sec-WebSocket-Protocol"] = json!([header]);
    }
    serde_json::from_value(v).expect("authorizer event deserialises")
}

/// An HTTP API (payload v2) event built from an `events/http-*.json` sample, varied field by
/// field, then turned into the `lambda_http::Request` the runtime would hand the handler.
#[derive(Clone)]
pub struct Http(pub Value);

impl Http {
    /// Starts from `events/{name}.json`.
    pub fn sample(name: &str) -> Self {
        Self(raw(name))
    }

    /// Sets the JSON body (and its content-length).
    pub fn json(self, body: Value) -> Self {
        self.body(&body.to_string())
    }

    /// Sets the raw body text.
    pub fn body(mut self, body: &str) -> Self {
        self.0["body"] = json!(body);
        self.0["isBase64Encoded"] = json!(false);
        self.0["headers"]["content-length"] = json!(body.len().to_string());
        self
    }

    /// Removes the body.
    pub fn no_body(mut self) -> Self {
        if let Some(o) = self.0.as_object_mut() {
            o.remove("body");
        }
        self
    }

    /// Sets `Authorization: Bearer <token>`.
    pub fn bearer(mut self, token: &str) -> Self {
        self.0["headers"]["authorization"] = json!(format!("Bearer {token}"));
        self
    }

    /// Sets or removes a header (names are lower-case in v2 events).
    pub fn header(mut self, name: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.0["headers"][name] = json!(v),
            None => {
                if let Some(h) = self.0["headers"].as_object_mut() {
                    h.remove(name);
                }
            }
        }
        self
    }

    /// Sets the method and path (and the raw path and route key to match).
    pub fn route(mut self, method: &str, path: &str) -> Self {
        self.0["rawPath"] = json!(path);
        self.0["requestContext"]["http"]["method"] = json!(method);
        self.0["requestContext"]["http"]["path"] = json!(path);
        self
    }

    /// Sets the query string (`a=1&b=2`).
    pub fn query(mut self, raw: &str) -> Self {
        self.0["rawQueryString"] = json!(raw);
        let map: serde_json::Map<String, Value> = raw
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_owned(), json!(v))
            })
            .collect();
        self.0["queryStringParameters"] = Value::Object(map);
        self
    }

    /// Sets the client address API Gateway saw.
    pub fn source_ip(mut self, ip: &str) -> Self {
        self.0["requestContext"]["http"]["sourceIp"] = json!(ip);
        self
    }

    /// The request, as lambda_http builds it from the event.
    pub fn build(&self) -> lambda_http::Request {
        lambda_http::request::from_str(&self.0.to_string()).expect("HTTP API event deserialises")
    }
}
