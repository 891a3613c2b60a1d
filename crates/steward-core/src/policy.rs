//! Policy: what each privilege tier expects of an identity (rotation cadence, maximum
//! credential lifetime, dormancy threshold, review interval, backup approver).

use crate::identity::Tier;
use jiff::{Timestamp, civil::Date};
use serde::{Deserialize, Serialize};

/// Expectations for one tier. All durations are whole days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPolicy {
    /// A credential older than this is `rotation-overdue`.
    pub rotation_cadence_days: u32,
    /// A credential without expiry, or valid for longer than this, is `long-lived`.
    pub max_ttl_days: u32,
    /// No use for this many days makes an identity `dormant`.
    pub dormancy_days: u32,
    /// Attestation older than this is `review-overdue`; also sets the default review date.
    pub review_interval_days: u32,
    /// Whether a backup approver is required (`no-backup-approver`).
    pub backup_approver_required: bool,
}

/// The installation's policy: one [`TierPolicy`] per tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Tier `critical`.
    pub critical: TierPolicy,
    /// Tier `high`.
    pub high: TierPolicy,
    /// Tier `medium`.
    pub medium: TierPolicy,
    /// Tier `low`.
    pub low: TierPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        let tier = |rotation, ttl, review, backup| TierPolicy {
            rotation_cadence_days: rotation,
            max_ttl_days: ttl,
            dormancy_days: 90,
            review_interval_days: review,
            backup_approver_required: backup,
        };
        Policy {
            critical: tier(30, 90, 90, true),
            high: tier(90, 180, 180, true),
            medium: tier(180, 365, 365, false),
            low: tier(365, 730, 365, false),
        }
    }
}

impl Policy {
    /// The expectations for `tier`.
    pub fn for_tier(&self, tier: Tier) -> &TierPolicy {
        match tier {
            Tier::Critical => &self.critical,
            Tier::High => &self.high,
            Tier::Medium => &self.medium,
            Tier::Low => &self.low,
        }
    }

    /// The review date an identity of `tier` gets when it is registered at `now`
    /// without an explicit one.
    pub fn default_review_due(&self, tier: Tier, now: Timestamp) -> Date {
        let days = i64::from(self.for_tier(tier).review_interval_days);
        crate::time::utc_date(crate::time::add_days(now, days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_design_table() {
        let policy = Policy::default();
        let cadences: Vec<u32> = Tier::ALL
            .iter()
            .map(|tier| policy.for_tier(*tier).rotation_cadence_days)
            .collect();
        assert_eq!(cadences, vec![30, 90, 180, 365]);
        assert!(policy.critical.backup_approver_required && !policy.low.backup_approver_required);
    }

    #[test]
    fn default_review_due_adds_the_interval() {
        let now: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let due = Policy::default().default_review_due(Tier::Critical, now);
        assert_eq!(due.to_string(), "2026-04-01");
    }
}
