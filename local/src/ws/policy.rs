//! IAM evaluation of the REQUEST authorizer's policy, as API Gateway applies it to the
//! `$connect` method ARN: statements for `execute-api:Invoke` (action names are
//! case-insensitive, resources are case-sensitive, both with the wildcards `*` and `?`); an
//! explicit Deny wins, and without an Allow the handshake is refused.

use hubbub_core::aws_lambda_events::apigw::ApiGatewayCustomAuthorizerResponse;
use hubbub_core::aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};

/// Whether a statement applies to `execute-api:Invoke` on `arn` (IAM wildcards `*`, `?`).
fn statement_matches(s: &IamPolicyStatement, arn: &str) -> bool {
    s.action
        .iter()
        .any(|a| wildcard(&a.to_ascii_lowercase(), "execute-api:invoke"))
        && s.resource.iter().any(|r| wildcard(r, arn))
}

/// IAM evaluation of the authorizer's policy: an explicit Deny wins, then an Allow is needed.
pub(super) fn allows(resp: &ApiGatewayCustomAuthorizerResponse, arn: &str) -> bool {
    let statements = &resp.policy_document.statement;
    let denied = statements
        .iter()
        .any(|s| s.effect == IamPolicyEffect::Deny && statement_matches(s, arn));
    let allowed = statements
        .iter()
        .any(|s| s.effect == IamPolicyEffect::Allow && statement_matches(s, arn));
    allowed && !denied
}

/// Glob match with `*` (any run) and `?` (any one character).
fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:hubbublcl1/local/$connect";

    /// An authorizer answer with these `(effect, action, resource)` statements, as JSON the
    /// way a Lambda authorizer returns it.
    fn policy(statements: &[(&str, Value, Value)]) -> ApiGatewayCustomAuthorizerResponse {
        let statement: Vec<Value> = statements
            .iter()
            .map(|(effect, action, resource)| {
                json!({"Effect": effect, "Action": action, "Resource": resource})
            })
            .collect();
        serde_json::from_value(json!({
            "principalId": "u-alice",
            "policyDocument": {"Version": "2012-10-17", "Statement": statement},
        }))
        .expect("authorizer answer")
    }

    fn allow(resource: &str) -> (&'static str, Value, Value) {
        ("Allow", json!("execute-api:Invoke"), json!(resource))
    }

    fn deny(resource: &str) -> (&'static str, Value, Value) {
        ("Deny", json!("execute-api:Invoke"), json!(resource))
    }

    #[test]
    fn an_allow_for_the_arn_is_needed() {
        assert!(allows(&policy(&[allow(ARN)]), ARN));
        assert!(!allows(&policy(&[]), ARN), "no statement");
        assert!(!allows(&policy(&[deny(ARN)]), ARN), "only a Deny");
    }

    #[test]
    fn an_explicit_deny_wins() {
        assert!(!allows(&policy(&[allow("*"), deny(ARN)]), ARN));
        assert!(!allows(&policy(&[deny("arn:aws:*"), allow(ARN)]), ARN));
        // A Deny of another resource leaves the Allow standing.
        let other = "arn:aws:execute-api:us-east-1:000000000000:hubbublcl1/prod/$connect";
        assert!(allows(&policy(&[allow(ARN), deny(other)]), ARN));
    }

    #[test]
    fn resources_must_match() {
        for resource in [
            "arn:aws:execute-api:us-east-1:000000000000:hubbublcl1/prod/$connect",
            "arn:aws:execute-api:us-east-1:000000000000:otherapi01/local/$connect",
            "arn:aws:execute-api:us-east-1:000000000000:hubbublcl1/local/$connec",
            "arn:aws:execute-api:us-east-1:000000000000:hubbublcl1/local/$connect/extra",
            // Resources, unlike actions, are case-sensitive.
            "ARN:AWS:execute-api:us-east-1:000000000000:hubbublcl1/local/$connect",
        ] {
            assert!(!allows(&policy(&[allow(resource)]), ARN), "{resource}");
        }
        // Any resource of the list will do.
        let listed = ("Allow", json!(["execute-api:Invoke"]), json!(["x", ARN]));
        assert!(allows(&policy(&[listed]), ARN));
    }

    #[test]
    fn resource_wildcards() {
        for resource in [
            "*",
            "arn:aws:execute-api:us-east-1:000000000000:hubbublcl1/*",
            "arn:aws:execute-api:us-east-1:000000000000:hubbublcl1/*/$connect",
            "arn:aws:execute-api:*:*:*/local/*",
            "arn:aws:execute-api:us-east-1:000000000000:hubbublcl1/?????/$connect",
            "arn:aws:execute-api:us-east-1:000000000000:hubbublcl1/local/$connec?",
        ] {
            assert!(allows(&policy(&[allow(resource)]), ARN), "{resource}");
        }
        for resource in [
            // `?` is exactly one character.
            "arn:aws:execute-api:us-east-1:000000000000:hubbublcl1/????/$connect",
            "arn:aws:execute-api:us-east-1:000000000000:hubbublcl1/local/$connect?",
            "arn:aws:execute-api:us-east-1:000000000000:hubbublcl1/*/$disconnect",
        ] {
            assert!(!allows(&policy(&[allow(resource)]), ARN), "{resource}");
        }
    }

    #[test]
    fn actions_are_case_insensitive_and_take_wildcards() {
        for action in [
            json!("execute-api:Invoke"),
            json!("EXECUTE-API:INVOKE"),
            json!("execute-api:invoke"),
            json!("execute-api:*"),
            json!("*"),
            json!("execute-api:Inv?ke"),
            json!(["execute-api:ManageConnections", "execute-api:Invoke"]),
        ] {
            let statement = ("Allow", action.clone(), json!(ARN));
            assert!(allows(&policy(&[statement]), ARN), "{action}");
        }
        for action in [
            json!("execute-api:ManageConnections"),
            json!("lambda:InvokeFunction"),
            json!("execute-api:Invoke*x"),
        ] {
            let statement = ("Allow", action.clone(), json!(ARN));
            assert!(!allows(&policy(&[statement]), ARN), "{action}");
        }
        // A Deny of every action still wins over the Allow.
        let deny_all = ("Deny", json!("EXECUTE-API:*"), json!(ARN));
        assert!(!allows(&policy(&[allow(ARN), deny_all]), ARN));
    }

    #[test]
    fn wildcard_matching() {
        for (pattern, text) in [
            ("", ""),
            ("*", ""),
            ("*", "anything"),
            ("a*b", "ab"),
            ("a*b", "axxb"),
            ("*a*b", "xaybzb"),
            ("a?c", "abc"),
            ("a**", "a"),
        ] {
            assert!(wildcard(pattern, text), "{pattern} ~ {text}");
        }
        for (pattern, text) in [
            ("", "a"),
            ("?", ""),
            ("a*b", "axxbc"),
            ("a?c", "ac"),
            ("abc", "abd"),
            ("a*", "ba"),
        ] {
            assert!(!wildcard(pattern, text), "{pattern} !~ {text}");
        }
    }
}
