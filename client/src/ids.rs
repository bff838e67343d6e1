//! The two identifiers every record carries: a message's id and a case's reference. Each is
//! 16 bytes; each is parsed once, where it enters (a command-line argument, a stored record, a
//! signed payload), and carried typed from there.
//!
//! - [`MessageId`]: shown as a UUID (`0190c1d2-...`), serialised as that string.
//! - [`CaseRef`]: shown as 32 hex digits, serialised as that string; all zeros means "no case
//!   yet" ([`CaseRef::NONE`]), which records write as an empty string ([`case_or_empty`]).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An identifier that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {input:?}: {problem}")]
pub struct IdError {
    what: &'static str,
    input: String,
    problem: String,
}

/// A message's id (16 bytes; a UUIDv7 for messages this program writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// From the bytes of an envelope or signed payload (exactly 16).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
        <[u8; 16]>::try_from(bytes)
            .map(MessageId)
            .map_err(|_| IdError {
                what: "message id",
                input: hex::encode(bytes),
                problem: format!("{} bytes, not 16", bytes.len()),
            })
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        uuid::Uuid::from_bytes(self.0).hyphenated().fmt(f)
    }
}

impl FromStr for MessageId {
    type Err = IdError;
    /// A UUID, with or without hyphens.
    fn from_str(s: &str) -> Result<Self, IdError> {
        uuid::Uuid::parse_str(s.trim())
            .map(|u| MessageId(u.into_bytes()))
            .map_err(|e| IdError {
                what: "message id",
                input: s.to_owned(),
                problem: e.to_string(),
            })
    }
}

/// A case's reference (16 random bytes, issued by the Assistance System; zeros: no case yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CaseRef(pub [u8; 16]);

impl CaseRef {
    /// No case yet (a referral or consultation made before the case was opened).
    pub const NONE: CaseRef = CaseRef([0; 16]);

    /// From the bytes of a signed payload: 16 bytes, or empty for none.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
        if bytes.is_empty() {
            return Ok(Self::NONE);
        }
        <[u8; 16]>::try_from(bytes)
            .map(CaseRef)
            .map_err(|_| IdError {
                what: "case reference",
                input: hex::encode(bytes),
                problem: format!("{} bytes, not 16", bytes.len()),
            })
    }

    /// Whether this is [`CaseRef::NONE`].
    pub fn is_none(&self) -> bool {
        self.0 == [0; 16]
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for CaseRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for CaseRef {
    type Err = IdError;
    /// 32 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, IdError> {
        let err = |problem: String| IdError {
            what: "case reference",
            input: s.to_owned(),
            problem,
        };
        let bytes = hex::decode(s.trim()).map_err(|e| err(e.to_string()))?;
        <[u8; 16]>::try_from(bytes.as_slice())
            .map(CaseRef)
            .map_err(|_| err("give 32 hex digits".into()))
    }
}

macro_rules! serde_as_string {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_as_string!(MessageId);
serde_as_string!(CaseRef);

/// Serde for a case field written as an empty string when there is no case (stored records,
/// `silta receive` output, status files): `#[serde(with = "case_or_empty")]` on a [`CaseRef`].
pub mod case_or_empty {
    use super::*;

    /// [`CaseRef::NONE`] as `""`, any other as 32 hex digits.
    pub fn serialize<S: Serializer>(case: &CaseRef, s: S) -> Result<S::Ok, S::Error> {
        if case.is_none() {
            s.serialize_str("")
        } else {
            s.collect_str(case)
        }
    }

    /// `""` as [`CaseRef::NONE`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CaseRef, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if s.is_empty() {
            Ok(CaseRef::NONE)
        } else {
            s.parse().map_err(serde::de::Error::custom)
        }
    }
}

/// Serde for an optional message id written as an empty string when absent (`in_reply_to`).
pub mod id_or_empty {
    use super::*;

    /// `None` as `""`.
    pub fn serialize<S: Serializer>(id: &Option<MessageId>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.collect_str(id),
            None => s.serialize_str(""),
        }
    }

    /// `""` as `None`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MessageId>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(serde::de::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_show_as_uuids_and_parse_back() {
        let id = MessageId([
            0x01, 0x90, 0xc1, 0xd2, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 0x2a,
        ]);
        let s = id.to_string();
        assert_eq!(s, "0190c1d2-0000-7000-8000-00000000002a");
        assert_eq!(s.parse::<MessageId>().unwrap(), id);
        assert_eq!(
            "0190C1D200007000800000000000002A"
                .parse::<MessageId>()
                .unwrap(),
            id
        );
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{s}\""));
        assert_eq!(
            serde_json::from_str::<MessageId>(&format!("\"{s}\"")).unwrap(),
            id
        );
        assert!("0190c1d2".parse::<MessageId>().is_err());
        assert!(MessageId::from_slice(&[1; 15]).is_err());
        assert!(serde_json::from_str::<MessageId>("\"not an id\"").is_err());
    }

    #[test]
    fn case_refs_show_as_32_hex_digits_and_none_as_empty_in_records() {
        let case: CaseRef = "00112233445566778899AABBCCDDEEFF".parse().unwrap();
        assert_eq!(case.to_string(), "00112233445566778899aabbccddeeff");
        assert_eq!(CaseRef::NONE.to_string(), "0".repeat(32));
        assert!("0011".parse::<CaseRef>().is_err());
        assert!(
            "zz112233445566778899aabbccddeeff"
                .parse::<CaseRef>()
                .is_err()
        );
        assert_eq!(CaseRef::from_slice(&[]).unwrap(), CaseRef::NONE);
        assert!(CaseRef::from_slice(&[1; 17]).is_err());

        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct R {
            #[serde(with = "case_or_empty")]
            case: CaseRef,
            #[serde(with = "id_or_empty")]
            in_reply_to: Option<MessageId>,
        }
        let none = R {
            case: CaseRef::NONE,
            in_reply_to: None,
        };
        let text = serde_json::to_string(&none).unwrap();
        assert_eq!(text, r#"{"case":"","in_reply_to":""}"#);
        assert_eq!(serde_json::from_str::<R>(&text).unwrap(), none);
        let some = R {
            case,
            in_reply_to: Some(MessageId([7; 16])),
        };
        let text = serde_json::to_string(&some).unwrap();
        assert_eq!(serde_json::from_str::<R>(&text).unwrap(), some);
    }
}
