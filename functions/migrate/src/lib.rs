//! The migration custom resource: `template.yaml` declares one `Custom::Migrations` resource
//! backed by this function, so every `sam deploy` applies pending migrations before the
//! functions that use the new schema go live (they depend on the resource).
//!
//! - Create and Update run [`hubbub_core::store::migrate`] (ordered, recorded, and safe to run
//!   concurrently with anything else that migrates);
//! - Delete does nothing: removing the stack must never drop chat history.
//!
//! CloudFormation waits for an answer PUT to the request's pre-signed `ResponseURL`; the
//! function always sends one, success or failure, or the stack would hang for an hour.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hubbub_core::aws_lambda_events::cloudformation::{
    CloudFormationCustomResourceRequest, CloudFormationCustomResourceResponse,
    CloudFormationCustomResourceResponseStatus,
};
use hubbub_core::config::DatabaseConfig;
use hubbub_core::error::chain;
use hubbub_core::store::postgres::Database;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The configuration this function reads at init: the history database.
pub type Config = DatabaseConfig;

/// The physical id of the one migrations resource (stable, so Updates never replace it).
pub const PHYSICAL_ID: &str = "hubbub-migrations";

/// Bound on delivering the answer. The pre-signed URL is S3 and answers in milliseconds; a
/// stuck PUT must still leave time inside the function's timeout to log the failure.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the answer could not be delivered to CloudFormation.
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    #[error("the ResponseURL is not a valid URI")]
    Url(#[from] hyper::http::uri::InvalidUri),
    #[error("could not build the response request")]
    Request(#[from] hyper::http::Error),
    #[error("could not PUT the response")]
    Send(#[from] hyper_util::client::legacy::Error),
    #[error("the PUT timed out")]
    Timeout,
    #[error("unknown custom resource request type")]
    UnknownRequest,
    #[error("the ResponseURL answered HTTP {0}")]
    Status(u16),
}

/// The HTTPS client that delivers answers (HTTP too, for tests against a local server).
pub type HttpClient = Client<hubbub_core::https::HttpsConnector, Full<Bytes>>;

/// Builds the client once at init.
pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(hubbub_core::https::connector(None))
}

/// What the function needs.
pub struct MigrateDeps {
    pub db: Database,
    pub http: HttpClient,
}

/// Handles one custom resource event and answers CloudFormation. Returns the answer sent.
pub async fn handle(
    deps: &MigrateDeps,
    req: &CloudFormationCustomResourceRequest,
) -> Result<CloudFormationCustomResourceResponse, RespondError> {
    let (kind, response_url, stack_id, request_id, logical_id) = match req {
        CloudFormationCustomResourceRequest::Create(r) => (
            "Create",
            &r.response_url,
            &r.stack_id,
            &r.request_id,
            &r.logical_resource_id,
        ),
        CloudFormationCustomResourceRequest::Update(r) => (
            "Update",
            &r.response_url,
            &r.stack_id,
            &r.request_id,
            &r.logical_resource_id,
        ),
        CloudFormationCustomResourceRequest::Delete(r) => (
            "Delete",
            &r.response_url,
            &r.stack_id,
            &r.request_id,
            &r.logical_resource_id,
        ),
        // CloudFormation sends only the three; a new kind has no ResponseURL we can read.
        _ => return Err(RespondError::UnknownRequest),
    };
    let mut data = HashMap::new();
    let outcome = if kind == "Delete" {
        tracing::info!(
            request_id,
            "stack resource deleted; the database is left as it is"
        );
        Ok(())
    } else {
        match deps.db.migrate().await {
            Ok(applied) => {
                tracing::info!(request_id, ?applied, "migrations up to date");
                let list: Vec<String> = applied.iter().map(i64::to_string).collect();
                data.insert("Applied".to_owned(), list.join(","));
                Ok(())
            }
            Err(e) => {
                tracing::error!(request_id, error = %chain(&e), "migration failed");
                // CloudFormation shows the reason in the stack events; the chain names the
                // failing migration or the connection problem, never a credential.
                Err(chain(&e))
            }
        }
    };
    let mut resp = CloudFormationCustomResourceResponse::default();
    resp.status = match outcome {
        Ok(()) => CloudFormationCustomResourceResponseStatus::Success,
        Err(_) => CloudFormationCustomResourceResponseStatus::Failed,
    };
    resp.reason = outcome.err().or_else(|| Some(format!("{kind} done")));
    resp.physical_resource_id = PHYSICAL_ID.to_owned();
    resp.stack_id = stack_id.clone();
    resp.request_id = request_id.clone();
    resp.logical_resource_id = logical_id.clone();
    resp.data = data;
    put_response(&deps.http, response_url, &resp).await?;
    Ok(resp)
}

async fn put_response(
    http: &HttpClient,
    url: &str,
    resp: &CloudFormationCustomResourceResponse,
) -> Result<(), RespondError> {
    // Serialising a struct of strings and a string map cannot fail.
    let body = serde_json::to_vec(resp).unwrap_or_default();
    // The URL is pre-signed for an empty Content-Type: sending another breaks the signature.
    let request = hyper::Request::put(url.parse::<hyper::Uri>()?)
        .header("content-type", "")
        .header("content-length", body.len())
        .body(Full::new(Bytes::from(body)))?;
    let answer = tokio::time::timeout(RESPONSE_TIMEOUT, http.request(request))
        .await
        .map_err(|_| RespondError::Timeout)??;
    let status = answer.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(RespondError::Status(status));
    }
    Ok(())
}

impl From<RespondError> for lambda_runtime::Diagnostic {
    fn from(e: RespondError) -> Self {
        Self {
            error_type: "MigrationResponseError".to_owned(),
            error_message: chain(&e),
        }
    }
}
