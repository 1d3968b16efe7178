//! Typed identifiers.
//!
//! Tenants and documents are identified by random UUIDs (v4): they carry no
//! personal data and reveal nothing, not even creation order, so they can
//! name objects in a blob store. Applicants are identified by the caller's
//! own opaque id, restricted to a safe alphabet.

use std::fmt;

use crate::error::{Error, Result};

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new random id.
            pub fn random() -> Self {
                Self(uuid::Uuid::new_v4())
            }

            /// The id from its 16 raw bytes.
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(uuid::Uuid::from_bytes(bytes))
            }

            /// The id's 16 raw bytes (the form bound into keys and streams).
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// Parses the hyphenated text form.
            pub fn parse(s: &str) -> Result<Self> {
                uuid::Uuid::try_parse(s)
                    .map(Self)
                    .map_err(|_| Error::InvalidArgument(concat!("malformed ", stringify!($name))))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }
    };
}

uuid_id!(
    /// A tenant (one leasing company).
    TenantId
);
uuid_id!(
    /// A stored document.
    DocumentId
);

/// Longest accepted applicant id, in bytes.
pub const APPLICANT_ID_MAX_LEN: usize = 128;

/// An applicant, as the caller names them: 1–128 characters of
/// `A-Za-z0-9._-`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApplicantId(String);

impl ApplicantId {
    /// Validates and wraps a caller's applicant id.
    pub fn new(s: &str) -> Result<Self> {
        let ok_len = (1..=APPLICANT_ID_MAX_LEN).contains(&s.len());
        let ok_chars = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok_len && ok_chars {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::InvalidArgument(
                "applicant id must be 1-128 characters of A-Za-z0-9._-",
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApplicantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ApplicantId {
    // Debug output ends up in logs and panic messages; an applicant id may
    // identify a person in the caller's systems, so it is not printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApplicantId(<{} chars>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applicant_id_alphabet_and_length() {
        assert!(ApplicantId::new("app-123_x.y").is_ok());
        assert!(ApplicantId::new(&"a".repeat(128)).is_ok());
        for bad in ["", "a b", "a/b", "../x", "é", "a@b", "a\0"] {
            assert!(ApplicantId::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ApplicantId::new(&"a".repeat(129)).is_err());
    }

    #[test]
    fn applicant_id_debug_does_not_print_the_id() {
        let a = ApplicantId::new("jane-doe-1985").unwrap();
        assert!(!format!("{a:?}").contains("jane"));
        assert_eq!(a.to_string(), "jane-doe-1985");
    }

    #[test]
    fn uuid_ids_round_trip() {
        let t = TenantId::random();
        assert_eq!(TenantId::parse(&t.to_string()).unwrap(), t);
        assert_eq!(TenantId::from_bytes(*t.as_bytes()), t);
        assert!(DocumentId::parse("not-a-uuid").is_err());
    }
}
