//! The moderation hook: an optional function that sees every message (sends and edits)
//! before it is committed and allows it, refuses it (`rejected`) or replaces its body.
//!
//! [`Moderator`] is the port; [`HttpModerator`] its adapter, one JSON exchange over HTTP:
//!
//! - on AWS, a Lambda function invoked synchronously through the Lambda Invoke API
//!   (`POST /2015-03-31/functions/{name}/invocations`), signed with SigV4 by the same
//!   code that signs the Management API calls ([`crate::gateway`]'s `sigv4`): the
//!   aws-sdk-lambda crate would add several hundred KB to a zip that must stay under 3 MB,
//!   for one request shape;
//! - in hubbub-local (and for any HTTP service), a webhook URL, posted the same JSON.
//!
//! The function receives `{"room","sender":{"id","name"},"body","kind":"message"|"edit"}` and
//! answers `{"verdict":"allow"}`, `{"verdict":"reject"}` or
//! `{"verdict":"replace","body":"..."}` (a body within the limits of a sent one).
//!
//! **Fail closed.** No answer within [`MODERATION_TIMEOUT`], an error, or an answer that is
//! not one of the three makes the write fail with `unavailable` and nothing stored: a
//! deployment that configures a hook does so to keep content out, and failing open would let
//! everything through whenever the hook is slow or down (or is made slow on purpose). The
//! client retries with the same `clientMsgId`, as after any `unavailable`.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use serde::{Deserialize, Serialize};

use crate::error::Cause;
use crate::gateway::sigv4::{self, KeyCache, SigningKey};
use crate::protocol::{MessageBody, MessageKind, RoomId, UserRef};

/// How long a write waits for the hook. A message's latency includes it, so it is short; a
/// Lambda that is warm answers in milliseconds, a cold one in well under a second.
pub const MODERATION_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest answer read: a replacement body (4000 characters of up to 4 bytes) and the
/// envelope, with room to spare.
const ANSWER_MAX_BYTES: usize = 64 * 1024;

/// What the hook decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Commit the body as sent.
    Allow,
    /// Refuse the write: the sender gets `rejected`.
    Reject,
    /// Commit this body instead.
    Replace(MessageBody),
}

/// What the hook is shown.
#[derive(Debug, Clone, Serialize)]
pub struct Review<'a> {
    pub room: &'a RoomId,
    pub sender: &'a UserRef,
    pub body: &'a MessageBody,
    /// `message` for a send, `edit` for an edit.
    pub kind: MessageKind,
}

/// Why the hook gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum ModerationError {
    #[error("the moderation hook did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the moderation hook could not be called")]
    Call(#[source] Cause),
    #[error("the moderation hook answered {0}")]
    Status(u16),
    #[error("the moderation function failed: {0}")]
    FunctionError(String),
    #[error("the moderation hook's answer is not a verdict")]
    Answer(#[source] Cause),
}

/// The moderation port.
#[async_trait]
pub trait Moderator: Send + Sync {
    /// The verdict on one message.
    async fn review(&self, review: &Review<'_>) -> Result<Verdict, ModerationError>;
}

/// Where [`HttpModerator`] sends its request.
enum Target {
    /// POST to this URL, unsigned.
    Webhook(http::Uri),
    /// Invoke this Lambda function through `endpoint` (Lambda's regional one, or an
    /// emulator's), signed for `region`.
    Lambda {
        uri: http::Uri,
        region: String,
        credentials: Option<SharedCredentialsProvider>,
    },
}

type HttpClient = hyper_util::client::legacy::Client<crate::https::HttpsConnector, Full<Bytes>>;

/// The HTTP adapter of [`Moderator`]: a webhook or a Lambda function.
pub struct HttpModerator {
    client: HttpClient,
    target: Target,
    timeout: Duration,
}

/// The wire form of an answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    verdict: String,
    #[serde(default)]
    body: Option<String>,
}

impl HttpModerator {
    fn client() -> HttpClient {
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(crate::https::connector(None))
    }

    /// A webhook at `url`.
    pub fn webhook(url: &str) -> Result<Self, ModerationError> {
        let uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| ModerationError::Call(Box::new(e)))?;
        Ok(Self {
            client: Self::client(),
            target: Target::Webhook(uri),
            timeout: MODERATION_TIMEOUT,
        })
    }

    /// The Lambda function `function` (a name or an ARN), invoked with `sdk`'s credentials;
    /// in the ARN's region, else `sdk`'s. `endpoint` overrides Lambda's regional endpoint
    /// (an emulator's; `None` on AWS).
    pub fn lambda(
        sdk: &aws_config::SdkConfig,
        function: &str,
        endpoint: Option<&str>,
    ) -> Result<Self, ModerationError> {
        // arn:aws:lambda:eu-west-1:123456789012:function:name
        let region = match function.split(':').collect::<Vec<_>>().as_slice() {
            ["arn", _, "lambda", region, ..] => (*region).to_owned(),
            _ => sdk
                .region()
                .map_or_else(|| "us-east-1".to_owned(), |r| r.as_ref().to_owned()),
        };
        let base = endpoint.map_or_else(
            || format!("https://lambda.{region}.amazonaws.com"),
            |e| e.trim_end_matches('/').to_owned(),
        );
        let uri = format!(
            "{base}/2015-03-31/functions/{}/invocations",
            percent_encode(function)
        )
        .parse()
        .map_err(|e: http::uri::InvalidUri| ModerationError::Call(Box::new(e)))?;
        Ok(Self {
            client: Self::client(),
            target: Target::Lambda {
                uri,
                region,
                credentials: sdk.credentials_provider(),
            },
            timeout: MODERATION_TIMEOUT,
        })
    }

    /// The same moderator with another timeout (tests).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn request(&self, body: Bytes) -> Result<http::Request<Full<Bytes>>, ModerationError> {
        let call = |e: Cause| ModerationError::Call(e);
        let builder = http::Request::post(match &self.target {
            Target::Webhook(uri) | Target::Lambda { uri, .. } => uri.clone(),
        })
        .header(http::header::CONTENT_TYPE, "application/json");
        let builder = match &self.target {
            Target::Webhook(_) => builder,
            Target::Lambda {
                uri,
                region,
                credentials,
            } => {
                let provider = credentials
                    .as_ref()
                    .ok_or_else(|| call("no AWS credentials are configured".into()))?;
                let creds = provider
                    .provide_credentials()
                    .await
                    .map_err(|e| call(Box::new(e)))?;
                let host = uri
                    .authority()
                    .ok_or_else(|| call("the Lambda endpoint has no host".into()))?
                    .as_str();
                // A key cache per call: credentials rotate, and a network call dwarfs four HMACs.
                let signature = sigv4::sign(
                    &SigningKey {
                        access_key_id: creds.access_key_id(),
                        secret_access_key: creds.secret_access_key(),
                        session_token: creds.session_token(),
                        region,
                        service: "lambda",
                    },
                    &KeyCache::default(),
                    "POST",
                    host,
                    uri.path(),
                    &sigv4::payload_hash(&body),
                    SystemTime::now(),
                );
                let b = builder
                    .header(http::header::AUTHORIZATION, signature.authorization)
                    .header("x-amz-date", signature.amz_date);
                match creds.session_token() {
                    Some(token) => b.header("x-amz-security-token", token),
                    None => b,
                }
            }
        };
        builder.body(Full::new(body)).map_err(|e| call(Box::new(e)))
    }
}

#[async_trait]
impl Moderator for HttpModerator {
    async fn review(&self, review: &Review<'_>) -> Result<Verdict, ModerationError> {
        let body = serde_json::to_vec(review).map_err(|e| ModerationError::Call(Box::new(e)))?;
        let req = self.request(Bytes::from(body)).await?;
        let work = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| ModerationError::Call(Box::new(e)))?;
            if !resp.status().is_success() {
                return Err(ModerationError::Status(resp.status().as_u16()));
            }
            // Lambda answers 200 with this header when the function itself failed.
            if let Some(kind) = resp.headers().get("x-amz-function-error") {
                return Err(ModerationError::FunctionError(
                    kind.to_str().unwrap_or("unknown").to_owned(),
                ));
            }
            Limited::new(resp.into_body(), ANSWER_MAX_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(ModerationError::Call)
        };
        let answer = tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| ModerationError::Timeout(self.timeout))??;
        parse_answer(&answer)
    }
}

/// Reads an answer: one of the three verdicts, a replacement within the body limits.
fn parse_answer(raw: &[u8]) -> Result<Verdict, ModerationError> {
    let bad = |e: Cause| ModerationError::Answer(e);
    let a: Answer = serde_json::from_slice(raw).map_err(|e| bad(Box::new(e)))?;
    match (a.verdict.as_str(), a.body) {
        ("allow", None) => Ok(Verdict::Allow),
        ("reject", None) => Ok(Verdict::Reject),
        ("replace", Some(body)) => MessageBody::parse(body)
            .map(Verdict::Replace)
            .map_err(|e| bad(Box::new(e))),
        _ => Err(bad(
            "`verdict` must be allow, reject or replace (with `body`)".into(),
        )),
    }
}

/// A function name or ARN as a URI path segment (`:` of ARNs encoded).
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len() * 3);
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_one_of_three_verdicts() {
        assert_eq!(
            parse_answer(br#"{"verdict":"allow"}"#).unwrap(),
            Verdict::Allow
        );
        assert_eq!(
            parse_answer(br#"{"verdict":"reject"}"#).unwrap(),
            Verdict::Reject
        );
        assert_eq!(
            parse_answer(br#"{"verdict":"replace","body":"***"}"#).unwrap(),
            Verdict::Replace(MessageBody::parse("***").unwrap())
        );
        for bad in [
            &br#"{"verdict":"maybe"}"#[..],
            br#"{"verdict":"replace"}"#,
            br#"{"verdict":"replace","body":""}"#,
            br#"{"verdict":"allow","body":"x"}"#,
            br#"{"verdict":"allow","extra":1}"#,
            b"null",
        ] {
            assert!(
                parse_answer(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn lambda_invocations_are_addressed_by_arn_and_region() {
        let sdk = aws_config::SdkConfig::builder().build();
        let m = HttpModerator::lambda(
            &sdk,
            "arn:aws:lambda:eu-west-1:123456789012:function:filter",
            None,
        )
        .unwrap();
        let Target::Lambda { uri, region, .. } = &m.target else {
            panic!("a Lambda target")
        };
        assert_eq!(region, "eu-west-1");
        assert_eq!(
            uri.to_string(),
            "https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Afilter/invocations"
        );
    }
}
