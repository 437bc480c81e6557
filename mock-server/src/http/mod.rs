//! The two REST endpoints of the handshake (spec §2): extract, call auth/state, map to a
//! response. Every failure is an [`ApiError`] with the exact catalog string (spec §10.2–10.3).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::{self, AuthError};
use crate::config::Profile;
use crate::http_log::{ArmedFailure, AuthorizationForm, Endpoint, HttpCall, RequestFacts};
use crate::journal::RequestNote;
use crate::protocol::{
    AccessTokenResponse, CreateSessionRequest, CreateSessionResponse, ErrorBody, Platform, catalog,
};
use crate::state::AppState;

/// A REST failure: status, catalog string, and for 429 the `Retry-After` seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: &'static str,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: &'static str) -> Self {
        Self {
            status,
            message,
            retry_after: None,
        }
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: catalog::TOO_MANY_REQUESTS,
            retry_after: Some(retry_after),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, error.catalog_message())
    }
}

/// JSON `{"error": s, "message": s}` (spec §12 A1).
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody::new(self.message))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `POST /api/v1/access-token` (spec §2.1). The body is ignored (spec §12 A5).
pub async fn create_access_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<AccessTokenResponse>, ApiError> {
    let mut minted = None;
    let answer = access_token(&state, &headers, &body, &mut minted);
    state.note_http_call(call_of(
        Endpoint::AccessToken,
        &headers,
        &body,
        &answer,
        minted,
        None,
    ));
    answer
}

/// What the HTTP log keeps of a REST call and its answer.
fn call_of<T>(
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &Bytes,
    answer: &Result<T, ApiError>,
    token: Option<String>,
    session_id: Option<String>,
) -> HttpCall {
    let authorization = header_str(headers, "authorization").map(|value| {
        if auth::bearer_token(Some(value)).is_ok() {
            AuthorizationForm::Bearer
        } else {
            AuthorizationForm::Malformed
        }
    });
    let note = RequestNote::new(header_str(headers, "content-type"), body);
    HttpCall {
        at_ms: 0,
        endpoint,
        status: answer.as_ref().map_or_else(|e| e.status.as_u16(), |_| 200),
        error: answer.as_ref().err().map(|e| e.message.to_owned()),
        retry_after: answer.as_ref().err().and_then(|e| e.retry_after),
        request: RequestFacts {
            x_token: headers.contains_key("x-token"),
            x_host: header_str(headers, "x-host").map(str::to_owned),
            content_type: note.content_type,
            authorization,
            body: note.body,
            query: Default::default(),
            upgrade: false,
            plaintext: false,
        },
        token,
        session_id,
    }
}

/// The armed failure of this call, as the error it answers with.
fn armed_failure(
    state: &AppState,
    endpoint: Endpoint,
    server_error: ApiError,
) -> Result<(), ApiError> {
    match state.take_http_failure(endpoint) {
        None => Ok(()),
        Some(ArmedFailure::ServerError) => Err(server_error),
        Some(ArmedFailure::RateLimited {
            retry_after_seconds,
        }) => Err(ApiError::rate_limited(u64::from(retry_after_seconds))),
    }
}

fn access_token(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    minted: &mut Option<String>,
) -> Result<Json<AccessTokenResponse>, ApiError> {
    let x_token = header_str(headers, "x-token");
    let x_host = header_str(headers, "x-host");
    if let Some(token) = x_token {
        state
            .check_http_rate(&format!("connector:{token}"))
            .map_err(ApiError::rate_limited)?;
    }
    // `scenario:<name>` selects a catalogued scenario through the ordinary connector-token
    // setting; it authenticates as the first configured connector.
    let (connector, scenario) = match x_token.and_then(|t| t.trim().strip_prefix("scenario:")) {
        Some(name) => {
            if state.scenario(name).is_none() {
                return Err(AuthError::UnknownConnector.into());
            }
            let first = state
                .connectors()
                .connectors()
                .next()
                .ok_or(AuthError::UnknownConnector)?;
            let connector =
                auth::authorize_connector(state.connectors(), Some(&first.token), x_host)?;
            (connector, Some(name.to_owned()))
        }
        None => {
            let connector = auth::authorize_connector(state.connectors(), x_token, x_host)?;
            let chosen = state.connector_scenario(&connector.token);
            (connector, chosen.or_else(|| connector.scenario.clone()))
        }
    };
    armed_failure(
        state,
        Endpoint::AccessToken,
        AuthError::MintFailed("failure armed through the control API".into()).into(),
    )?;
    let host = auth::normalize_host(x_host.unwrap_or_default());
    let (access_token, claims) = state.issuer().issue(
        connector,
        &host,
        scenario.as_deref(),
        state.clock().unix_seconds(),
    )?;
    let request = RequestNote::new(header_str(headers, "content-type"), body);
    state.note_token_call(&claims.jti, Endpoint::AccessToken, 200, request);
    *minted = Some(claims.jti.clone());
    Ok(Json(AccessTokenResponse {
        access_token,
        expires_in: state.issuer().ttl_seconds(),
        token_type: "Bearer".into(),
    }))
}

/// `POST /api/v1/sessions` (spec §2.2).
pub async fn create_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<CreateSessionResponse>, ApiError> {
    let mut presented = None;
    let answer = session(&state, &headers, &body, &mut presented);
    let created = answer.as_ref().ok().map(|j| j.session_id.to_string());
    state.note_http_call(call_of(
        Endpoint::Sessions,
        &headers,
        &body,
        &answer,
        presented,
        created,
    ));
    answer
}

fn session(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    presented: &mut Option<String>,
) -> Result<Json<CreateSessionResponse>, ApiError> {
    let token = auth::bearer_token(header_str(headers, "authorization"))?;
    state
        .check_http_rate(&format!("token:{token}"))
        .map_err(ApiError::rate_limited)?;
    let claims = state.issuer().verify(token, state.clock().unix_seconds())?;
    *presented = Some(claims.jti.clone());
    let config = state.config();
    let strict = config.strict_platform.then_some(config.profile);
    let request = parse_session_request(body, strict)?;
    armed_failure(
        state,
        Endpoint::Sessions,
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            catalog::FAILED_TO_CREATE_SESSION,
        ),
    )?;
    let streaming = request.streaming_enabled.unwrap_or(false);
    let request = RequestNote::new(header_str(headers, "content-type"), body);
    // At the session cap: the documented rate-limit answer, so clients back off (docs/mock.md, Limits).
    let session_id = state
        .create_session(&claims, streaming, request)
        .map_err(|_| ApiError::rate_limited(1))?;
    Ok(Json(CreateSessionResponse { session_id }))
}

/// An absent or blank body means defaults; anything else must be a JSON object with fields of
/// the documented types (spec §12 A6).
/// `strict_platform`: `Some(profile)` refuses a `platform` that revision does not list.
fn parse_session_request(
    body: &[u8],
    strict_platform: Option<Profile>,
) -> Result<CreateSessionRequest, ApiError> {
    let parse_error = || ApiError::new(StatusCode::BAD_REQUEST, catalog::ERROR_PARSING_REQUEST);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(CreateSessionRequest::default());
    }
    // serde would also accept a JSON array for a struct; the body must be an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(parse_error());
    }
    let request: CreateSessionRequest = serde_json::from_slice(body).map_err(|_| parse_error())?;
    let unlisted = |p: &Platform| strict_platform.is_some_and(|profile| !profile.knows_platform(p));
    if request.platform.as_ref().is_some_and(unlisted) {
        return Err(parse_error());
    }
    Ok(request)
}

/// 404 for everything else, in the same JSON shape.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_bodies_of_spec_12_a6() {
        for ok in [
            "",
            "  ",
            "{}",
            r#"{"streaming_enabled":true}"#,
            r#"{"platform":"ios-web","x":1}"#,
            r#"{"platform":"toaster"}"#,
        ] {
            assert!(parse_session_request(ok.as_bytes(), None).is_ok(), "{ok:?}");
        }
        for bad in [
            "{",
            "[]",
            "null",
            r#"{"streaming_enabled":"yes"}"#,
            r#"{"platform":7}"#,
        ] {
            assert_eq!(
                parse_session_request(bad.as_bytes(), None)
                    .expect_err(bad)
                    .message,
                "Error parsing request"
            );
        }
        let strict = Some(Profile::Current);
        assert!(parse_session_request(br#"{"platform":"toaster"}"#, strict).is_err());
        assert!(parse_session_request(br#"{"platform":"android-web"}"#, strict).is_ok());
        // Before 2026-06-01 the list had no `-web` values.
        let may = Some(Profile::May2026);
        assert!(parse_session_request(br#"{"platform":"android-web"}"#, may).is_err());
        assert!(parse_session_request(br#"{"platform":"ios-web"}"#, may).is_err());
        assert!(parse_session_request(br#"{"platform":"ios"}"#, may).is_ok());
        assert!(parse_session_request(br#"{"platform":"android-web"}"#, None).is_ok());
    }
}
