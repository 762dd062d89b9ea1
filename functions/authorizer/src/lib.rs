//! The WebSocket REQUEST authorizer for `$connect`.
//!
//! The access token comes from `?token=` or, for browsers (which cannot set headers on a
//! WebSocket), from the `bearer.<jwt>` entry of `Sec-WebSocket-Protocol`. A valid token gets an
//! Allow policy for the method ARN with the context `userId`, `userName` and `tokenExp`, which
//! API Gateway passes to every later route. A token that is missing, malformed, expired or
//! badly signed is `Unauthorized` (HTTP 401); a correctly signed token meant for another issuer
//! or audience gets a Deny policy (HTTP 403).
//!
//! Tokens are hubbub's own HS256 tokens or, when an external issuer is configured, its
//! RS256/ES256 tokens checked against its JWKS ([`TokenVerifier`]). A token issued before its
//! user's revocation marker (a logout, a replayed refresh token) is `Unauthorized` too
//! ([`RevocationCheck`], read from the connections table and cached briefly).

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use hubbub_core::auth::{AuthError, Identity, TokenVerifier};
use hubbub_core::aws_lambda_events;
use hubbub_core::config::{AuthConfig, ConfigError, DynamoConfig, FromLookup, Lookup};
use hubbub_core::error::{StoreError, chain};
use hubbub_core::session::RevocationCheck;
use hubbub_core::ws::context_keys;
use serde_json::json;

/// The configuration this function reads at init: the JWT secret, issuer and audience, the
/// optional external issuer (`HUBBUB_EXTERNAL_*`), and the connections table (`HUBBUB_TABLE`),
/// which holds the per-user revocation markers.
#[derive(Debug, Clone)]
pub struct Config {
    pub auth: AuthConfig,
    pub dynamo: DynamoConfig,
}

impl FromLookup for Config {
    fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            auth: AuthConfig::from_lookup(get)?,
            dynamo: DynamoConfig::from_lookup(get)?,
        })
    }
}

/// The subprotocol prefix that carries a token.
pub const BEARER_PREFIX: &str = "bearer.";
/// The subprotocol hubbub speaks; `$connect` echoes it.
pub const SUBPROTOCOL: &str = "hubbub.v1";

/// The authorizer's failure. Its text must be exactly `Unauthorized`: that error message is
/// what makes API Gateway answer the handshake with 401.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    #[error("Unauthorized")]
    Unauthorized,
    /// The user's revocation marker could not be read: any other error message makes API
    /// Gateway answer the handshake with 500, and a token that may be revoked is not let in.
    #[error("the revocation marker could not be read")]
    Unavailable,
}

/// What the authorizer decided.
#[derive(Debug)]
pub enum Decision {
    /// Allow policy with the identity context.
    Allow(ApiGatewayCustomAuthorizerResponse),
    /// Deny policy (403).
    Deny(ApiGatewayCustomAuthorizerResponse),
    /// No usable token (401).
    Unauthorized(AuthError),
    /// The revocation marker could not be read (500).
    Failed(StoreError),
}

/// The token of a `$connect` request, from the query string or the subprotocol header.
pub fn token_of(req: &ApiGatewayCustomAuthorizerRequestTypeRequest) -> Option<String> {
    if let Some(t) = req
        .query_string_parameters
        .first("token")
        .filter(|t| !t.is_empty())
    {
        return Some(t.to_owned());
    }
    req.headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| p.strip_prefix(BEARER_PREFIX))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn policy(
    principal: &str,
    effect: IamPolicyEffect,
    method_arn: &str,
) -> ApiGatewayCustomAuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = effect;
    statement.resource = vec![method_arn.to_owned()];
    let mut doc = ApiGatewayCustomAuthorizerPolicy::default();
    doc.version = Some("2012-10-17".to_owned());
    doc.statement = vec![statement];
    let mut resp = ApiGatewayCustomAuthorizerResponse::default();
    resp.principal_id = Some(principal.to_owned());
    resp.policy_document = doc;
    resp
}

fn allow(id: &Identity, method_arn: &str) -> ApiGatewayCustomAuthorizerResponse {
    let mut resp = policy(&id.user_id, IamPolicyEffect::Allow, method_arn);
    resp.context = json!({
        context_keys::USER_ID: id.user_id,
        context_keys::USER_NAME: id.user_name,
        context_keys::TOKEN_EXP: id.expires_at,
    });
    resp
}

/// The decision for a verification result.
fn decision_for(
    verified: Result<Identity, AuthError>,
    req: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Decision {
    let method_arn = req.method_arn.as_deref().unwrap_or_default();
    match verified {
        Ok(id) => Decision::Allow(allow(&id, method_arn)),
        Err(e) if e.is_policy_denial() => {
            Decision::Deny(policy("anonymous", IamPolicyEffect::Deny, method_arn))
        }
        Err(e) => Decision::Unauthorized(e),
    }
}

/// Decides on a request, accepting hubbub's tokens and the external issuer's, and, with
/// `revocations`, refusing a token its user's revocation marker revokes.
pub async fn decide(
    verifier: &TokenVerifier,
    revocations: Option<&RevocationCheck>,
    req: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Decision {
    let verified = match token_of(req) {
        Some(t) => verifier.verify(&t).await,
        None => Err(AuthError::Missing),
    };
    let verified = match (verified, revocations) {
        (Ok(id), Some(check)) => match check.is_revoked(&id.user_id, id.issued_at).await {
            Ok(false) => Ok(id),
            Ok(true) => Err(AuthError::Revoked),
            Err(e) => return Decision::Failed(e),
        },
        (verified, _) => verified,
    };
    decision_for(verified, req)
}

/// The token checks alone, without revocation markers: the policy, or `Unauthorized`.
pub async fn handle(
    verifier: &TokenVerifier,
    req: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<ApiGatewayCustomAuthorizerResponse, AuthorizerError> {
    answer(decide(verifier, None, req).await, req)
}

/// The Lambda handler (what `main.rs` and hubbub-local run): the token checks, then the
/// user's revocation marker. The policy, `Unauthorized`, or `Unavailable` when the marker
/// cannot be read.
pub async fn handle_checked(
    verifier: &TokenVerifier,
    revocations: &RevocationCheck,
    req: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<ApiGatewayCustomAuthorizerResponse, AuthorizerError> {
    answer(decide(verifier, Some(revocations), req).await, req)
}

fn answer(
    decision: Decision,
    req: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<ApiGatewayCustomAuthorizerResponse, AuthorizerError> {
    let request_id = req
        .request_context
        .request_id
        .as_deref()
        .unwrap_or_default();
    let source_ip = req
        .request_context
        .identity
        .as_ref()
        .and_then(|i| i.source_ip.as_deref())
        .unwrap_or_default();
    match decision {
        Decision::Allow(resp) => {
            tracing::info!(
                request_id,
                user_id = resp.principal_id.as_deref().unwrap_or_default(),
                "connection allowed"
            );
            Ok(resp)
        }
        Decision::Deny(resp) => {
            tracing::info!(
                request_id,
                source_ip,
                "connection denied: token for another issuer or audience"
            );
            Ok(resp)
        }
        Decision::Unauthorized(reason) => {
            tracing::info!(request_id, source_ip, %reason, "connection unauthorized");
            Err(AuthorizerError::Unauthorized)
        }
        Decision::Failed(e) => {
            tracing::error!(request_id, error = %chain(&e), "connection refused: the revocation marker could not be read");
            Err(AuthorizerError::Unavailable)
        }
    }
}

impl From<AuthorizerError> for lambda_runtime::Diagnostic {
    fn from(e: AuthorizerError) -> Self {
        let error_type = match e {
            AuthorizerError::Unauthorized => "Unauthorized",
            AuthorizerError::Unavailable => "Unavailable",
        };
        Self {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}
