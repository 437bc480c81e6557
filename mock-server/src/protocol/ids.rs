//! Identifier and time newtypes of the envelope (spec §4.2, §12 B2, B3, B5).
//!
//! Ids are opaque strings on the wire; the newtypes keep a session id from being passed where
//! an event id is expected. The mock mints them in a fixed shape (`EventId::new_v7`,
//! `MessageId::new_random`, `SessionId::new_random`), but decoding accepts any string, because
//! clients must treat them as opaque.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }
    };
}

string_id!(
    /// `session_id`: a lowercase UUIDv4 when minted by the mock (spec §12 A9).
    SessionId
);
string_id!(
    /// Envelope `id`: the deduplication key; a lowercase hyphenated UUIDv7 when minted by the
    /// mock (spec §12 B3).
    EventId
);
string_id!(
    /// `message_id` of agent, live-agent and echoed user messages: `msg_<uuid-v4-hex>` when
    /// minted by the mock (spec §12 B5).
    MessageId
);

impl SessionId {
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }
}

impl EventId {
    /// A UUIDv7 for the given Unix time, so ids sort like the events they name.
    pub fn new_v7(unix_millis: u64) -> Self {
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            unix_millis / 1000,
            ((unix_millis % 1000) * 1_000_000) as u32,
        );
        Self(uuid::Uuid::new_v7(ts).hyphenated().to_string())
    }
}

impl MessageId {
    pub fn new_random() -> Self {
        Self(format!("msg_{}", uuid::Uuid::new_v4().simple()))
    }
}

/// Envelope `sequence`: per-session, starting at 1, +1 per journaled event (spec §12 B2).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct Sequence(pub u64);

impl fmt::Display for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Envelope `timestamp`: RFC 3339 in UTC with millisecond precision and a `Z` suffix when
/// minted by the mock (spec §12 B3). Decoding keeps whatever string arrived.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Timestamp(pub String);

impl Timestamp {
    /// Formats a Unix time in milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn from_unix_millis(unix_millis: u64) -> Self {
        let secs = unix_millis / 1000;
        let millis = unix_millis % 1000;
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let rem = secs % 86_400;
        Self(format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        assert_eq!(Timestamp::from_unix_millis(0).0, "1970-01-01T00:00:00.000Z");
        // 2024-02-12T12:00:00Z, the docs' example instant, plus 7 ms.
        assert_eq!(
            Timestamp::from_unix_millis(1_707_739_200_007).0,
            "2024-02-12T12:00:00.007Z"
        );
        // A leap day and the last millisecond of a year.
        assert_eq!(
            Timestamp::from_unix_millis(951_782_400_000).0,
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_millis(1_798_761_599_999).0,
            "2026-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn minted_ids_have_the_documented_shapes() {
        let event = EventId::new_v7(1_707_739_200_007);
        let parsed = uuid::Uuid::parse_str(event.as_str()).expect("uuid");
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(event.as_str(), event.as_str().to_lowercase());

        let session = SessionId::new_random();
        assert_eq!(
            uuid::Uuid::parse_str(session.as_str())
                .expect("uuid")
                .get_version_num(),
            4
        );

        let message = MessageId::new_random();
        let hex = message.as_str().strip_prefix("msg_").expect("msg_ prefix");
        assert_eq!(hex.len(), 32);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
