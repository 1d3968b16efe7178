//! Document categories.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// What kind of paper a document is. The category drives retention and the
/// content types a document may have, and is bound into its encryption
/// context: a document cannot be relabelled without failing to decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Category {
    /// Government-issued identity document.
    IdDocument,
    /// Pay stub.
    PayStub,
    /// Bank statement.
    BankStatement,
    /// Credit report (FCRA).
    CreditReport,
    /// Background check (FCRA).
    BackgroundCheck,
    /// Signed lease.
    Lease,
    /// Anything else.
    Other,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 7] = [
        Category::IdDocument,
        Category::PayStub,
        Category::BankStatement,
        Category::CreditReport,
        Category::BackgroundCheck,
        Category::Lease,
        Category::Other,
    ];

    /// The stable name used in APIs, storage and the encryption context.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::IdDocument => "id_document",
            Category::PayStub => "pay_stub",
            Category::BankStatement => "bank_statement",
            Category::CreditReport => "credit_report",
            Category::BackgroundCheck => "background_check",
            Category::Lease => "lease",
            Category::Other => "other",
        }
    }
}

impl FromStr for Category {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(Error::InvalidArgument("unknown document category"))
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_rejected() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>().unwrap(), c);
        }
        assert!("ID_DOCUMENT".parse::<Category>().is_err());
        assert!("".parse::<Category>().is_err());
    }
}
