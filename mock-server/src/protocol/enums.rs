//! The protocol's string enums (spec §6.6 "Enum values used in payloads", §2.2 `platform`).
//!
//! Each is *open*: a value the docs do not list decodes to `Other(String)` instead of failing,
//! because clients must tolerate values added later (spec §11 ERR-2), and the mock must be able
//! to emit an unknown value on purpose (e.g. an unknown `SESSION_END` reason, spec §12 D5).
//! The JSON Schemas list only the documented values.

use std::borrow::Cow;

use schemars::{JsonSchema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* #[doc = concat!("`", $wire, "`")] $variant, )*
            /// A value the documentation does not list, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The documented wire values, in the docs' order.
            pub const KNOWN: &'static [&'static str] = &[$($wire),*];

            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Other(value) => value,
                }
            }

            pub fn from_wire(value: &str) -> Self {
                match value {
                    $($wire => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }

            /// Whether the value is one the documentation lists.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = Cow::<'de, str>::deserialize(deserializer)?;
                Ok(Self::from_wire(&value))
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> schemars::Schema {
                json_schema!({ "type": "string", "enum": Self::KNOWN })
            }
        }
    };
}

open_enum! {
    /// `USER_TYPING.state` and `LIVE_AGENT_TYPING.state`.
    pub enum TypingState {
        Started = "TYPING_STATE_STARTED",
        Stopped = "TYPING_STATE_STOPPED",
    }
}

open_enum! {
    /// `SESSION_END.reason` (spec §6.4.2).
    pub enum SessionEndReason {
        UserEnd = "REASON_USER_END",
        UserAbandoned = "REASON_USER_ABANDONED",
        NaturalEnd = "REASON_NATURAL_END",
    }
}

open_enum! {
    /// `SYSTEM_MESSAGE.level` (spec §6.4.3).
    pub enum SystemMessageLevel {
        Info = "SYSTEM_MESSAGE_LEVEL_INFO",
        Warning = "SYSTEM_MESSAGE_LEVEL_WARNING",
        Error = "SYSTEM_MESSAGE_LEVEL_ERROR",
    }
}

open_enum! {
    /// `Attachment.content_type` (spec §6.5).
    pub enum AttachmentContentType {
        Url = "ATTACHMENT_CONTENT_TYPE_URL",
        Image = "ATTACHMENT_CONTENT_TYPE_IMAGE",
    }
}

open_enum! {
    /// `CLIENT_HANDOFF_REQUIRED.reason` (spec §6.3.3).
    pub enum ClientHandoffReason {
        ComplexQuery = "COMPLEX_QUERY",
        AgentDecision = "AGENT_DECISION",
        Policy = "POLICY",
    }
}

open_enum! {
    /// `platform` of the create-session request (spec §2.2).
    pub enum Platform {
        Web = "web",
        Ios = "ios",
        Android = "android",
        IosWeb = "ios-web",
        AndroidWeb = "android-web",
        Custom = "custom",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_round_trip_and_unknown_values_are_kept() {
        for wire in SessionEndReason::KNOWN {
            let reason = SessionEndReason::from_wire(wire);
            assert!(reason.is_known());
            assert_eq!(reason.as_str(), *wire);
        }
        let unknown: SessionEndReason =
            serde_json::from_str("\"REASON_SOMETHING_NEW\"").expect("decodes");
        assert_eq!(
            unknown,
            SessionEndReason::Other("REASON_SOMETHING_NEW".into())
        );
        assert_eq!(
            serde_json::to_string(&unknown).expect("encodes"),
            "\"REASON_SOMETHING_NEW\""
        );
    }
}
