//! The moderation hook: a real HTTP server on port 0 plays the hook (webhook, and the Lambda
//! Invoke API), and sends and edits are allowed, refused, rewritten, or refused as
//! `unavailable` when it does not answer in time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use axum::http::{HeaderMap, Uri};
use hubbub_core::moderation::{HttpModerator, Moderator};

use super::*;

/// What the hook saw: the path, the Authorization header and the body of each request.
type Seen = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

/// A hook on port 0: `spam` is refused, `darn` becomes `d**n`, `slow` is answered after a
/// second, `broken` gets Lambda's function-error header, anything else is allowed.
async fn hook() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
        let log = log.clone();
        async move {
            let v: Value = serde_json::from_str(&body).expect("the hook gets JSON");
            let auth = headers
                .get("authorization")
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned);
            log.lock()
                .expect("log")
                .push((uri.path().to_owned(), auth, v.clone()));
            let text = v["body"].as_str().unwrap_or_default().to_owned();
            let mut resp_headers = HeaderMap::new();
            let verdict = if text.contains("spam") {
                json!({"verdict":"reject"})
            } else if text.contains("darn") {
                json!({"verdict":"replace","body":text.replace("darn", "d**n")})
            } else if text.contains("slow") {
                tokio::time::sleep(Duration::from_secs(1)).await;
                json!({"verdict":"allow"})
            } else if text.contains("broken") {
                resp_headers.insert("x-amz-function-error", "Unhandled".parse().expect("h"));
                json!({"errorMessage":"boom"})
            } else {
                json!({"verdict":"allow"})
            };
            (resp_headers, verdict.to_string())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}"), seen)
}

async fn write(rec: &Recorder, deps: &RouteDeps, conn: &str, frame: Value) -> Value {
    let resp = send_message::handle(deps, &as_user(conn, "alice").frame(frame).build()).await;
    if resp.body.is_some() {
        return body_json(&resp);
    }
    of_type(&rec.frames_to(conn), "ack").pop().expect("ack")
}

/// The room's bodies as history holds them.
async fn bodies(deps: &RouteDeps) -> Vec<String> {
    deps.history
        .history(
            &room("general"),
            &HistoryQuery::new(None, None, None).expect("q"),
            "u-x",
        )
        .await
        .expect("history")
        .messages
        .iter()
        .map(|m| m.body.as_ref().map(|b| b.to_string()).unwrap_or_default())
        .collect()
}

async fn story(moderator: Arc<dyn Moderator>) {
    let (rec, mut deps) = memory_deps().await;
    deps.moderation = Some(moderator);
    let a = "ConnAlice00=";
    connect(&deps, a, "alice").await;
    join(&deps, a, "alice", "general").await;
    let send = |body: &str, id: &str| json!({"action":"sendMessage","room":"general","body":body,"clientMsgId":id});

    let ack = write(&rec, &deps, a, send("hello", "m1")).await;
    assert!(ack["type"] == "ack" && ack.get("body").is_none(), "{ack}");
    assert_error(
        &write(&rec, &deps, a, send("buy spam", "m2")).await,
        "rejected",
    );
    let ack = write(&rec, &deps, a, send("oh darn", "m3")).await;
    assert_eq!(
        (ack["seq"].as_i64(), ack["body"].as_str()),
        (Some(2), Some("oh d**n")),
        "the ack tells the stored body"
    );
    let unavailable = write(&rec, &deps, a, send("slow one", "m4")).await;
    assert_error(&unavailable, "unavailable");
    assert_error(
        &write(&rec, &deps, a, send("broken", "m5")).await,
        "unavailable",
    );
    // Edits are reviewed too; deletes are not.
    assert_error(
        &write(&rec, &deps, a, json!({"action":"editMessage","room":"general","seq":1,"body":"spam now","clientMsgId":"e1"})).await,
        "rejected",
    );
    let ack = write(&rec, &deps, a, json!({"action":"editMessage","room":"general","seq":1,"body":"darn it","clientMsgId":"e2"})).await;
    assert_eq!(
        (ack["kind"].as_str(), ack["body"].as_str()),
        (Some("edit"), Some("d**n it"))
    );
    // Nothing refused was stored, and no seq was spent on it.
    assert_eq!(bodies(&deps).await, ["d**n it", "oh d**n", "d**n it"]);
}

#[tokio::test]
async fn a_webhook_allows_refuses_and_rewrites_and_fails_closed() {
    let (url, seen) = hook().await;
    let m = HttpModerator::webhook(&format!("{url}/review"))
        .expect("webhook")
        .with_timeout(Duration::from_millis(300));
    story(Arc::new(m)).await;
    let seen = seen.lock().expect("seen");
    let (path, auth, first) = &seen[0];
    assert_eq!((path.as_str(), auth.as_deref()), ("/review", None));
    assert_eq!(
        first,
        &json!({"room":"general","sender":{"id":"u-alice","name":"alice"},"body":"hello","kind":"message"})
    );
    assert!(seen.iter().any(|(_, _, v)| v["kind"] == "edit"));
}

#[tokio::test]
async fn a_lambda_hook_is_invoked_signed() {
    let (url, seen) = hook().await;
    let sdk = aws_config::SdkConfig::builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("session".into()),
            None,
            "test",
        )))
        .region(aws_config::Region::new("us-east-1"))
        .build();
    let m = HttpModerator::lambda(
        &sdk,
        "arn:aws:lambda:eu-west-1:123456789012:function:filter",
        Some(&url),
    )
    .expect("lambda")
    .with_timeout(Duration::from_millis(300));
    story(Arc::new(m)).await;
    let seen = seen.lock().expect("seen");
    let (path, auth, _) = &seen[0];
    assert_eq!(
        path,
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Afilter/invocations"
    );
    let auth = auth.as_deref().expect("signed");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            && auth.contains("/eu-west-1/lambda/aws4_request")
            && auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token"),
        "{auth}"
    );
}

/// Reviews the first message of each body and then goes down: every later review fails.
#[derive(Default)]
struct ReviewsOnce {
    reviews: Mutex<usize>,
}

#[async_trait::async_trait]
impl Moderator for ReviewsOnce {
    async fn review(
        &self,
        review: &hubbub_core::moderation::Review<'_>,
    ) -> Result<hubbub_core::moderation::Verdict, hubbub_core::moderation::ModerationError> {
        let mut n = self.reviews.lock().expect("reviews");
        *n += 1;
        if *n > 2 {
            return Err(hubbub_core::moderation::ModerationError::Status(503));
        }
        let text = review.body.as_str();
        Ok(if text.contains("darn") {
            hubbub_core::moderation::Verdict::Replace(
                hubbub_core::protocol::MessageBody::parse(text.replace("darn", "d**n"))
                    .expect("body"),
            )
        } else {
            hubbub_core::moderation::Verdict::Allow
        })
    }
}

/// A retried `clientMsgId` (its first ack was lost) is answered with the first commit's ack
/// without a second review: the message is stored and delivered, so a verdict that changed
/// since, or a hook that is down now, must not tell the sender otherwise.
#[tokio::test]
async fn a_retried_client_msg_id_is_acked_without_a_second_review() {
    let (rec, mut deps) = memory_deps().await;
    let hook = Arc::new(ReviewsOnce::default());
    deps.moderation = Some(hook.clone());
    let a = "ConnAlice00=";
    connect(&deps, a, "alice").await;
    join(&deps, a, "alice", "general").await;
    let send = |body: &str, id: &str| json!({"action":"sendMessage","room":"general","body":body,"clientMsgId":id});

    let first = write(&rec, &deps, a, send("hello", "m1")).await;
    let replaced = write(&rec, &deps, a, send("oh darn", "m2")).await;
    assert_eq!(*hook.reviews.lock().expect("reviews"), 2);
    // The hook is down from here on.
    let again = write(&rec, &deps, a, send("hello", "m1")).await;
    assert_eq!(
        (again["type"].as_str(), again["seq"].as_i64()),
        (Some("ack"), first["seq"].as_i64()),
        "{again}"
    );
    assert!(again.get("body").is_none(), "not replaced: {again}");
    let again = write(&rec, &deps, a, send("oh darn", "m2")).await;
    assert_eq!(
        (again["seq"].as_i64(), again["body"].as_str()),
        (replaced["seq"].as_i64(), Some("oh d**n")),
        "the ack tells the stored body again: {again}"
    );
    assert_eq!(
        *hook.reviews.lock().expect("reviews"),
        2,
        "no second review"
    );
    // A new message is still reviewed, and the hook being down refuses it.
    assert_error(
        &write(&rec, &deps, a, send("new", "m3")).await,
        "unavailable",
    );
}
