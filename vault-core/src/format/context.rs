//! The context a stream is bound to.

use std::fmt;

use crate::error::{Error, Result};
use crate::kdf::push_lp;

/// Longest accepted context field, in bytes.
pub const CONTEXT_FIELD_MAX_LEN: usize = 1024;

/// What a stream is about: (tenant, applicant, document id, category).
///
/// The context is the stream's associated data. It is not stored in the
/// stream; the reader must supply the same values, and a stream opened with
/// any other context fails authentication (so a blob copied under another
/// applicant or tenant does not decrypt). Its canonical encoding is each
/// field as a big-endian u16 length followed by its bytes, in the order
/// tenant, applicant, document, category.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamContext {
    encoded: Vec<u8>,
}

impl StreamContext {
    /// A context from its four fields, each at most 1024 bytes.
    pub fn new(tenant: &[u8], applicant: &[u8], document: &[u8], category: &[u8]) -> Result<Self> {
        let fields = [tenant, applicant, document, category];
        if fields.iter().any(|f| f.len() > CONTEXT_FIELD_MAX_LEN) {
            return Err(Error::InvalidArgument(
                "a stream context field is longer than 1024 bytes",
            ));
        }
        let mut encoded = Vec::with_capacity(8 + fields.iter().map(|f| f.len()).sum::<usize>());
        for f in fields {
            push_lp(&mut encoded, f);
        }
        Ok(Self { encoded })
    }

    /// The canonical encoding bound into key derivation.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }
}

impl fmt::Debug for StreamContext {
    // The applicant id may be personal data: never print the fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamContext").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_unambiguous() {
        let a = StreamContext::new(b"ab", b"c", b"", b"").unwrap();
        let b = StreamContext::new(b"a", b"bc", b"", b"").unwrap();
        assert_ne!(a.encoded(), b.encoded());
        assert_eq!(a.encoded(), b"\x00\x02ab\x00\x01c\x00\x00\x00\x00");
    }

    #[test]
    fn long_fields_are_rejected_and_debug_hides_fields() {
        let long = vec![b'x'; CONTEXT_FIELD_MAX_LEN + 1];
        assert!(StreamContext::new(&long, b"", b"", b"").is_err());
        let c = StreamContext::new(b"tenant", b"secret-applicant", b"doc", b"lease").unwrap();
        assert!(!format!("{c:?}").contains("secret-applicant"));
    }
}
