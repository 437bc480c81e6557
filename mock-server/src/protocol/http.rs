//! HTTP bodies of the handshake (spec §2) and the REST error body (spec §12 A1).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::enums::Platform;
use super::ids::SessionId;

/// `200 OK` of `POST /api/v1/access-token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccessTokenResponse {
    /// A JWT; opaque to clients.
    pub access_token: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// Always `"Bearer"`.
    pub token_type: String,
}

/// Body of `POST /api/v1/sessions`. The whole body is optional; so is each field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreateSessionRequest {
    /// Stream agent replies as chunks. Default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming_enabled: Option<bool>,
    /// Default `web`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// `200 OK` of `POST /api/v1/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreateSessionResponse {
    pub session_id: SessionId,
}

/// Every REST error (spec §12 A1): the exact catalog string under both keys, so SDKs reading
/// either `message` or `error` find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(catalog_string: &str) -> Self {
        Self {
            error: catalog_string.to_owned(),
            message: catalog_string.to_owned(),
        }
    }
}
