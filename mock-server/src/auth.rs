//! Connector tokens, `X-Host` matching and access-token JWTs (spec §1.3, §2, §12 A3–A8).
//!
//! Pure: no clock, no environment. The current time is an argument and keys live in the
//! [`TokenIssuer`] value, so tests mint expired or foreign tokens at will.

use std::collections::HashMap;
use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::protocol::catalog;

/// One configured integration (spec §1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connector {
    /// Becomes the JWT `sub`; names the connector in logs.
    pub id: String,
    /// What clients send as `X-Token`.
    pub token: String,
    /// The registered host identifier (web domain or app namespace). `None` reproduces
    /// `Connector missing host domain`.
    pub host: Option<String>,
    /// The scenario this connector's sessions run (name or path); the server default if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
}

impl Connector {
    /// The zero-configuration connector: token `mock-connector-token`, host `localhost`.
    pub fn default_connector() -> Self {
        Self {
            id: "default".into(),
            token: "mock-connector-token".into(),
            host: Some("localhost".into()),
            scenario: None,
        }
    }
}

/// The configured connectors, by token.
#[derive(Debug, Clone)]
pub struct ConnectorRegistry {
    order: Vec<Connector>,
    by_token: HashMap<String, usize>,
}

/// A configuration of connectors or keys that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("two connectors share the token `{0}`")]
    DuplicateToken(String),
    #[error("connector `{0}` has an empty token")]
    EmptyToken(String),
    #[error("no randomness for the signing key: {0}")]
    Random(String),
}

impl ConnectorRegistry {
    pub fn new(connectors: Vec<Connector>) -> Result<Self, AuthConfigError> {
        let mut by_token = HashMap::with_capacity(connectors.len());
        for (i, connector) in connectors.iter().enumerate() {
            if connector.token.is_empty() {
                return Err(AuthConfigError::EmptyToken(connector.id.clone()));
            }
            if by_token.insert(connector.token.clone(), i).is_some() {
                return Err(AuthConfigError::DuplicateToken(connector.token.clone()));
            }
        }
        Ok(Self {
            order: connectors,
            by_token,
        })
    }

    pub fn by_token(&self, token: &str) -> Option<&Connector> {
        self.by_token.get(token).map(|&i| &self.order[i])
    }

    /// In configuration order.
    pub fn connectors(&self) -> impl Iterator<Item = &Connector> {
        self.order.iter()
    }
}

/// Why a request was not authorized. [`AuthError::status`] and [`AuthError::catalog_message`]
/// are the one mapping to the wire (spec §10.2, §10.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("X-Token or X-Host is missing")]
    MissingHeaders,
    #[error("unknown connector token")]
    UnknownConnector,
    #[error("the connector has no registered host")]
    MissingHostDomain,
    #[error("X-Host does not match the registered host")]
    HostMismatch,
    #[error("could not sign the access token: {0}")]
    MintFailed(String),
    #[error("no Authorization header")]
    MissingAccessToken,
    #[error("Authorization is not `Bearer <token>`")]
    MalformedAuthorization,
    #[error("invalid access token: {0}")]
    InvalidToken(String),
}

impl AuthError {
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingAccessToken => 400,
            Self::MintFailed(_) => 500,
            _ => 401,
        }
    }

    pub fn catalog_message(&self) -> &'static str {
        match self {
            Self::MissingHeaders | Self::MalformedAuthorization => {
                catalog::MISSING_AUTHENTICATION_HEADERS
            }
            Self::UnknownConnector => catalog::CONNECTOR_TOKEN_DOES_NOT_EXIST,
            Self::MissingHostDomain => catalog::CONNECTOR_MISSING_HOST_DOMAIN,
            Self::HostMismatch => catalog::FAILED_TO_VALIDATE_CONNECTOR,
            Self::MintFailed(_) => catalog::FAILED_TO_CREATE_ACCESS_TOKEN,
            Self::MissingAccessToken => catalog::MISSING_ACCESS_TOKEN,
            Self::InvalidToken(_) => catalog::INVALID_ACCESS_TOKEN,
        }
    }
}

/// Strips scheme, userinfo, port, path, query and a trailing dot; lowercases (spec §12 A3).
pub fn normalize_host(raw: &str) -> String {
    let raw = raw.trim();
    let without_scheme = raw.split_once("://").map_or(raw, |(_, rest)| rest);
    let authority = without_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = host.strip_prefix('[') {
        // IPv6 literal: keep what is inside the brackets.
        bracketed.split(']').next().unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// First labels that mark a reverse-DNS app namespace (`com.yourcompany.app`).
const NAMESPACE_ROOTS: &[&str] = &[
    "com", "org", "net", "io", "app", "dev", "co", "uk", "de", "fr", "ai", "edu", "gov", "me",
];

fn is_app_namespace(registered: &str) -> bool {
    !registered.contains("://")
        && registered.matches('.').count() >= 2
        && NAMESPACE_ROOTS.contains(
            &registered
                .split('.')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
                .as_str(),
        )
}

/// Whether `presented` (the `X-Host`) matches `registered` (spec §12 A3): web domains match
/// exactly or as a subdomain; app namespaces match exactly (case-insensitive) only.
pub fn host_matches(registered: &str, presented: &str) -> bool {
    let wanted = normalize_host(registered);
    let got = normalize_host(presented);
    if wanted.is_empty() || got.is_empty() {
        return false;
    }
    if is_app_namespace(registered.trim()) {
        return got == wanted;
    }
    got == wanted
        || got
            .strip_suffix(wanted.as_str())
            .is_some_and(|prefix| prefix.ends_with('.'))
}

fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Checks the headers of `POST /api/v1/access-token` in the documented order.
pub fn authorize_connector<'a>(
    registry: &'a ConnectorRegistry,
    x_token: Option<&str>,
    x_host: Option<&str>,
) -> Result<&'a Connector, AuthError> {
    let (Some(token), Some(host)) = (present(x_token), present(x_host)) else {
        return Err(AuthError::MissingHeaders);
    };
    let connector = registry
        .by_token(token)
        .ok_or(AuthError::UnknownConnector)?;
    let registered = connector
        .host
        .as_deref()
        .filter(|h| !h.trim().is_empty())
        .ok_or(AuthError::MissingHostDomain)?;
    if !host_matches(registered, host) {
        return Err(AuthError::HostMismatch);
    }
    Ok(connector)
}

/// The token of an `Authorization: Bearer <token>` header (spec §10.3).
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, AuthError> {
    let header = authorization.ok_or(AuthError::MissingAccessToken)?;
    let mut parts = header.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(scheme), Some(token), None) if scheme.eq_ignore_ascii_case("bearer") => Ok(token),
        _ => Err(AuthError::MalformedAuthorization),
    }
}

/// Claims of the access token (spec §12 A7). Clients must treat the token as opaque.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The connector id.
    pub sub: String,
    /// The normalised `X-Host` the token was minted for.
    pub host: String,
    pub iat: u64,
    pub exp: u64,
    /// Unique per token; sessions are bound to it (spec §12 A8).
    pub jti: String,
    /// The scenario the token's sessions run, when chosen at the token (connector mapping or a
    /// `scenario:<name>` connector token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
}

/// Mints and verifies HS256 access tokens with one key.
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_seconds: u64,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("key", &"[redacted]")
            .field("ttl_seconds", &self.ttl_seconds)
            .finish()
    }
}

impl TokenIssuer {
    pub fn new(secret: &[u8], ttl_seconds: u64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl_seconds,
        }
    }

    /// A per-process key: tokens from another run are invalid, as after a real key rotation.
    pub fn with_random_key(ttl_seconds: u64) -> Result<Self, AuthConfigError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| AuthConfigError::Random(e.to_string()))?;
        Ok(Self::new(&key, ttl_seconds))
    }

    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }

    pub fn issue(
        &self,
        connector: &Connector,
        host: &str,
        scenario: Option<&str>,
        now_unix: u64,
    ) -> Result<(String, AccessClaims), AuthError> {
        let claims = AccessClaims {
            sub: connector.id.clone(),
            host: host.to_owned(),
            iat: now_unix,
            exp: now_unix.saturating_add(self.ttl_seconds),
            jti: uuid::Uuid::new_v4().to_string(),
            scenario: scenario.map(str::to_owned),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::MintFailed(e.to_string()))?;
        Ok((token, claims))
    }

    /// Signature (HS256 only) and expiry against `now_unix`; a token is dead at `exp`.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<AccessClaims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked below against the caller's clock, so tests can fake time.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        if data.claims.exp <= now_unix {
            return Err(AuthError::InvalidToken("expired".into()));
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> ConnectorRegistry {
        ConnectorRegistry::new(vec![
            Connector {
                id: "acme".into(),
                token: "t-acme".into(),
                host: Some("https://www.yourcompany.com".into()),
                scenario: None,
            },
            Connector {
                id: "app".into(),
                token: "t-app".into(),
                host: Some("com.yourcompany.app".into()),
                scenario: None,
            },
            Connector {
                id: "nohost".into(),
                token: "t-none".into(),
                host: None,
                scenario: None,
            },
        ])
        .expect("valid registry")
    }

    #[test]
    fn each_connector_failure_has_its_status_and_string() {
        let r = registry();
        let cases = [
            (None, Some("x"), 401, "Missing authentication headers"),
            (Some("t-acme"), None, 401, "Missing authentication headers"),
            (Some(" "), Some("x"), 401, "Missing authentication headers"),
            (
                Some("nope"),
                Some("www.yourcompany.com"),
                401,
                "Connector token does not exist",
            ),
            (
                Some("t-none"),
                Some("x.com"),
                401,
                "Connector missing host domain",
            ),
            (
                Some("t-acme"),
                Some("evil.com"),
                401,
                "Failed to validate connector",
            ),
        ];
        for (token, host, status, message) in cases {
            let error = authorize_connector(&r, token, host).expect_err("rejected");
            assert_eq!(
                (error.status(), error.catalog_message()),
                (status, message),
                "{token:?} {host:?}"
            );
        }
        assert_eq!(
            authorize_connector(&r, Some("t-acme"), Some("app.www.yourcompany.com"))
                .map(|c| c.id.as_str()),
            Ok("acme")
        );
        let mint = AuthError::MintFailed("x".into());
        assert_eq!(
            (mint.status(), mint.catalog_message()),
            (500, "Failed to create access token")
        );
    }

    #[test]
    fn hosts_match_per_spec_12_a3() {
        let web = "https://www.yourcompany.com";
        for ok in [
            "www.yourcompany.com",
            "https://www.yourcompany.com/",
            "http://WWW.YourCompany.com:8080/x?y",
            "www.yourcompany.com.",
            "app.www.yourcompany.com",
        ] {
            assert!(host_matches(web, ok), "{ok}");
        }
        for bad in [
            "yourcompany.com",
            "evilwww.yourcompany.com",
            "www.yourcompany.com.evil.com",
            "",
            "https://",
        ] {
            assert!(!host_matches(web, bad), "{bad}");
        }
        assert!(host_matches("localhost", "http://localhost:3000"));
        assert!(host_matches("localhost", "app.localhost"));
        assert!(host_matches("com.yourcompany.app", "COM.YourCompany.App"));
        assert!(
            !host_matches("com.yourcompany.app", "x.com.yourcompany.app"),
            "no subdomain rule for namespaces"
        );
        assert_eq!(
            normalize_host(" https://user@Example.COM.:443/path "),
            "example.com"
        );
        assert_eq!(normalize_host("[::1]:8080"), "::1");
    }

    #[test]
    fn minted_tokens_verify_until_they_expire() {
        let issuer = TokenIssuer::new(b"k", 100);
        let connector = Connector::default_connector();
        let (token, claims) = issuer
            .issue(&connector, "localhost", None, 1_000)
            .expect("mint");
        assert_eq!(issuer.verify(&token, 1_099), Ok(claims.clone()));
        assert_eq!(claims.sub, "default");
        assert_eq!(claims.exp, 1_100);
        assert!(issuer.verify(&token, 1_100).is_err(), "dead at exp");
        let (other, other_claims) = issuer
            .issue(&connector, "localhost", None, 1_000)
            .expect("mint");
        assert_ne!(
            (token.as_str(), claims.jti),
            (other.as_str(), other_claims.jti),
            "jti differs"
        );
    }

    #[test]
    fn foreign_tampered_unsigned_and_garbage_tokens_are_rejected() {
        let issuer = TokenIssuer::new(b"k", 100);
        let connector = Connector::default_connector();
        let (foreign, _) = TokenIssuer::new(b"other", 100)
            .issue(&connector, "h", None, 0)
            .expect("mint");
        let (token, _) = issuer.issue(&connector, "h", None, 0).expect("mint");
        let parts: Vec<&str> = token.split('.').collect();
        let forged_payload = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &AccessClaims {
                sub: "admin".into(),
                host: "h".into(),
                iat: 0,
                exp: u64::MAX,
                jti: "j".into(),
                scenario: None,
            },
            &EncodingKey::from_secret(b"k2"),
        )
        .expect("mint");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            forged_payload.split('.').nth(1).expect("payload"),
            parts[2]
        );
        // {"alg":"none","typ":"JWT"}
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
        for bad in [
            foreign.as_str(),
            tampered.as_str(),
            unsigned.as_str(),
            "garbage",
            "",
        ] {
            let error = issuer.verify(bad, 1).expect_err("rejected");
            assert_eq!(
                (error.status(), error.catalog_message()),
                (401, "Invalid access token"),
                "{bad}"
            );
        }
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(bearer_token(None), Err(AuthError::MissingAccessToken));
        for bad in ["Basic abc", "Bearer", "Bearer a b", "", "abc"] {
            assert_eq!(
                bearer_token(Some(bad)),
                Err(AuthError::MalformedAuthorization),
                "{bad}"
            );
        }
    }

    #[test]
    fn registry_rejects_duplicate_and_empty_tokens() {
        let c = Connector::default_connector();
        assert!(ConnectorRegistry::new(vec![c.clone(), c.clone()]).is_err());
        let empty = Connector {
            token: String::new(),
            ..c
        };
        assert!(ConnectorRegistry::new(vec![empty]).is_err());
    }

    #[test]
    fn debug_output_hides_the_key() {
        let issuer = TokenIssuer::new(b"supersecret", 1);
        assert!(!format!("{issuer:?}").contains("supersecret"));
    }
}
