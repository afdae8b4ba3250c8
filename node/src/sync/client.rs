//! The HTTP side of a round: one `POST /sync/v1/upload` to the hub over mutual TLS, and what a
//! refusal means for the loop (`sync/PROTOCOL.md`, "Errors").

use std::time::Duration;

// reqwest's errors with their causes: "error sending request" alone says nothing.
use busloket_sync::error_chain;
use busloket_sync::protocol::{MAX_BODY_BYTES, MEDIA_TYPE};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use thiserror::Error;

use super::enrolment::{Enrolment, EnrolmentError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole round trip: a 1 MiB batch over a slow LTE uplink fits comfortably.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Why an upload got no answer to apply.
#[derive(Debug, Error)]
pub enum HubError {
    /// No connection, a timeout, a dropped link: the bus is offline as far as sync goes.
    #[error("the hub cannot be reached: {0}")]
    Unreachable(String),
    /// The hub answered with an error (`code` from its JSON body, see PROTOCOL.md).
    #[error("the hub refused the upload ({status}, {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

impl HubError {
    /// The stable code shown to staff: the hub's, or `unreachable`.
    pub fn code(&self) -> &str {
        match self {
            HubError::Unreachable(_) => "unreachable",
            HubError::Refused { code, .. } => code,
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

/// The client towards the hub; keeps its connection alive between rounds.
#[derive(Debug, Clone)]
pub struct HubClient {
    http: reqwest::Client,
    upload_url: String,
}

impl HubClient {
    pub fn new(enrolment: &Enrolment) -> Result<HubClient, EnrolmentError> {
        let tls = enrolment.hub_client_tls()?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(|error| EnrolmentError::Tls {
                what: "the HTTP client",
                source: rustls::Error::General(error.to_string()),
            })?;
        Ok(HubClient {
            http,
            upload_url: format!(
                "{}/sync/v1/upload",
                enrolment.bundle.hub_url().trim_end_matches('/')
            ),
        })
    }

    /// Posts one upload and returns the answer's body (still to decode and check).
    pub async fn upload(&self, body: Vec<u8>) -> Result<Vec<u8>, HubError> {
        let unreachable = |error: reqwest::Error| HubError::Unreachable(error_chain(&error));
        let response = self
            .http
            .post(&self.upload_url)
            .header(CONTENT_TYPE, MEDIA_TYPE)
            .header(ACCEPT, MEDIA_TYPE)
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY_BYTES as u64)
        {
            return Err(HubError::Refused {
                status: status.as_u16(),
                code: "too-large".into(),
                message: "the hub's answer is larger than the protocol allows".into(),
            });
        }
        let bytes = read_limited(response, MAX_BODY_BYTES).await?;
        if status.is_success() {
            return Ok(bytes);
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => (body.code, body.message),
            Err(_) => (
                format!("http-{}", status.as_u16()),
                String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            ),
        };
        Err(HubError::Refused {
            status: status.as_u16(),
            code,
            message,
        })
    }
}

/// Reads a response's body, refusing it (`too-large`) once it goes over `limit` bytes, whatever
/// its Content-Length said (a chunked answer has none).
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, HubError> {
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| HubError::Unreachable(error_chain(&error)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(HubError::Refused {
                status,
                code: "too-large".into(),
                message: "the hub's answer is larger than the protocol allows".into(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
