//! The `$connect` authorizer's input (functions/authorizer): the token taken from
//! `?token=` or a `bearer.` entry of `Sec-WebSocket-Protocol`, verified as an HS256 JWT with
//! a fixed secret.
//!
//! Two kinds of input. Bytes starting with `{` are a JWT payload that the target signs with
//! the secret, so the fuzzer explores the claims behind a valid signature. Anything else is
//! `token query value \n header value \n header value ...`: arbitrary query and
//! `Sec-WebSocket-Protocol` strings carrying arbitrary tokens.
//!
//! Properties: no panic; a connection is allowed only with a token that carries the
//! secret's signature, for the user its `sub` names.

use std::collections::HashMap;
use std::sync::LazyLock;

use authorizer::{Decision, decide, token_of};
use base64::Engine as _;
use hubbub_core::auth::{JwtVerifier, TokenVerifier};
use hubbub_core::aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use hubbub_core::aws_lambda_events::query_map::QueryMap;
use hubbub_core::config::JwtConfig;
use jsonwebtoken::{Algorithm, EncodingKey};
use lambda_http::http::HeaderValue;

/// hubbub-local's announced development secret, so the sample events' tokens (the seeds)
/// verify.
const SECRET: &[u8] = b"hubbub-local-development-secret-not-for-production";
/// The issuer and audience of the sample events' tokens.
const ISSUER: &str = "hubbub";

static VERIFIER: LazyLock<TokenVerifier> = LazyLock::new(verifier);
/// The secret as jsonwebtoken's key, to sign payloads and check signatures directly (on
/// hubbub's ring backend, installed first as for any key of one's own).
static KEY: LazyLock<EncodingKey> = LazyLock::new(|| {
    hubbub_core::auth::crypto::install();
    EncodingKey::from_secret(SECRET).expect("a non-empty secret is an HS256 key")
});

/// A verifier of hubbub's own tokens under the fixed secret (no external issuer).
pub fn verifier() -> TokenVerifier {
    let cfg = JwtConfig {
        secret: SECRET.to_vec(),
        issuer: ISSUER.to_owned(),
        audience: ISSUER.to_owned(),
        leeway: std::time::Duration::from_secs(30),
    };
    JwtVerifier::hs256(&cfg)
        .expect("the fixed secret is a usable key")
        .into()
}

/// `header.payload.signature` for `payload`, signed with the secret.
fn signed(payload: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let message = format!(
        "{}.{}",
        b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64.encode(payload)
    );
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &KEY, Algorithm::HS256)
        .expect("HS256 signs any message");
    format!("{message}.{sig}")
}

/// Whether `token`'s signature is the secret's over its header and payload.
fn carries_signature(token: &str) -> bool {
    let Some((message, sig)) = token.rsplit_once('.') else {
        return false;
    };
    jsonwebtoken::crypto::sign(message.as_bytes(), &KEY, Algorithm::HS256)
        .is_ok_and(|expected| expected == sig)
}

/// The `$connect` authorizer request for a query token and `Sec-WebSocket-Protocol` values.
pub fn request(
    query_token: Option<&str>,
    protocols: &[&[u8]],
) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    let mut req = ApiGatewayCustomAuthorizerRequestTypeRequest::default();
    req.method_arn = Some("arn:aws:execute-api:eu-west-1:123456789012:abc/prod/$connect".into());
    if let Some(t) = query_token {
        let map: HashMap<String, String> = HashMap::from([("token".to_owned(), t.to_owned())]);
        req.query_string_parameters = QueryMap::from(map);
    }
    for p in protocols {
        if let Ok(v) = HeaderValue::from_bytes(p) {
            req.headers.append("sec-websocket-protocol", v);
        }
    }
    req
}

/// The fuzz body.
pub fn run(data: &[u8]) {
    if data.first() == Some(&b'{') {
        let token = signed(data);
        let proto = format!("hubbub.v1, bearer.{token}");
        check(&request(None, &[proto.as_bytes()]), Some(data));
        check(&request(Some(&token), &[]), Some(data));
        return;
    }
    let mut parts = data.split(|b| *b == b'\n');
    let query = parts.next().map(String::from_utf8_lossy);
    let protocols: Vec<&[u8]> = parts.collect();
    check(&request(query.as_deref(), &protocols), None);
}

/// A payload's `sub`, every other claim skipped as the verifier skips the claims it does not
/// read.
#[derive(serde::Deserialize)]
struct SubOnly {
    sub: Option<String>,
}

/// The properties for one request; `payload` is the payload the target signed, if any.
pub fn check(req: &ApiGatewayCustomAuthorizerRequestTypeRequest, payload: Option<&[u8]>) {
    let token = token_of(req);
    let decision = futures::executor::block_on(decide(&VERIFIER, None, req));
    if let Decision::Allow(resp) = decision {
        let token = token.expect("an allowed connection presented a token");
        assert!(
            carries_signature(&token),
            "allowed a token without the secret's signature: {token:?}"
        );
        // The claim as a reader of `sub` alone sees it. A signed payload may hold, in claims
        // hubbub does not read, what a full JSON parse refuses (bytes that are not UTF-8, a
        // number beyond f64): serde skips an unknown field without decoding it, so the token
        // is allowed all the same. Only the secret's holder can sign one, and no claim hubbub
        // reads is affected.
        let Some(payload) = payload else {
            return;
        };
        let claims: SubOnly =
            serde_json::from_slice(payload).expect("an allowed payload has a readable sub");
        assert_eq!(
            resp.principal_id.as_deref(),
            claims.sub.as_deref(),
            "the allowed principal is the token's `sub`"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds reach the Allow branch, so the signature property is exercised.
    #[test]
    fn signed_payloads_and_sample_tokens_are_allowed() {
        let payload =
            br#"{"sub":"u-fuzz","iat":1,"nbf":1,"exp":4102444800,"iss":"hubbub","aud":"hubbub"}"#;
        let token = signed(payload);
        assert!(carries_signature(&token));
        let decision =
            futures::executor::block_on(decide(&VERIFIER, None, &request(Some(&token), &[])));
        assert!(matches!(decision, Decision::Allow(_)), "{decision:?}");
        let forged = format!("{}x", &token[..token.len() - 1]);
        let decision =
            futures::executor::block_on(decide(&VERIFIER, None, &request(Some(&forged), &[])));
        assert!(!matches!(decision, Decision::Allow(_)));
        assert!(!carries_signature(&forged));
    }
}
