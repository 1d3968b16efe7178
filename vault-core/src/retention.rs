//! Retention policy and the rule that decides when a document is due.

use std::collections::BTreeMap;

use crate::category::Category;
use crate::error::{Error, Result};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// A tenant's retention policy: how long an application may stay idle
/// before it counts as closed, and how many days each category is kept
/// after its application closes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Days without activity (no upload, no open or close) after which an
    /// application counts as closed. Default 14.
    pub inactivity_days: u32,
    /// Days each category is kept after the application closes.
    pub retain_days: BTreeMap<Category, u32>,
}

/// Longest retention accepted (100 years).
const MAX_DAYS: u32 = 36_500;

impl Default for RetentionPolicy {
    /// The documented defaults (`docs/OPERATIONS.md`): 25 months (760 days)
    /// for application papers, the record-keeping period of ECOA/Regulation
    /// B (12 CFR 1002.12(b)) used as a conservative floor; 7 years for
    /// signed leases; 1 year for anything else. Tenants set their own with
    /// counsel.
    fn default() -> Self {
        let retain_days = Category::ALL
            .into_iter()
            .map(|c| {
                let days = match c {
                    Category::Lease => 2_555,
                    Category::Other => 365,
                    _ => 760,
                };
                (c, days)
            })
            .collect();
        Self {
            inactivity_days: 14,
            retain_days,
        }
    }
}

impl RetentionPolicy {
    /// Checks the limits (every value at most 36,500 days, inactivity at
    /// least one day).
    pub fn validate(&self) -> Result<()> {
        if self.inactivity_days == 0
            || self.inactivity_days > MAX_DAYS
            || self.retain_days.values().any(|&d| d > MAX_DAYS)
        {
            return Err(Error::InvalidArgument(
                "retention days must be within 0-36500 (inactivity 1-36500)",
            ));
        }
        Ok(())
    }

    /// Days `category` is kept after close.
    pub fn days(&self, category: Category) -> u32 {
        self.retain_days.get(&category).copied().unwrap_or_else(|| {
            RetentionPolicy::default()
                .retain_days
                .get(&category)
                .copied()
                .unwrap_or(365)
        })
    }

    /// When an application closed, as of `as_of`: its explicit close time,
    /// or the moment it became inactive if that is not after `as_of`; `None`
    /// while it is open and active.
    pub fn effective_close(
        &self,
        closed_at: Option<i64>,
        last_activity_at: i64,
        as_of: i64,
    ) -> Option<i64> {
        if let Some(c) = closed_at {
            return Some(c);
        }
        let inactive_at = last_activity_at.saturating_add(i64::from(self.inactivity_days) * DAY_MS);
        (inactive_at <= as_of).then_some(inactive_at)
    }

    /// The end of a document's retention, as of `as_of`; `None` while its
    /// application is open.
    pub fn retain_until(
        &self,
        category: Category,
        closed_at: Option<i64>,
        last_activity_at: i64,
        as_of: i64,
    ) -> Option<i64> {
        self.effective_close(closed_at, last_activity_at, as_of)
            .map(|c| c.saturating_add(i64::from(self.days(category)) * DAY_MS))
    }
}
