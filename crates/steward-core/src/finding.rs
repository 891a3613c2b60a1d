//! Findings: posture problems with a rule id, a severity, evidence, a remediation and
//! their mapping to the OWASP Non-Human Identities Top 10 (2025) and NIST CSF 2.0.
//!
//! This module holds the catalogue (DESIGN §3) and the rules that judge the copies of
//! secrets the scanner recorded ([`judge_copies`]); other sources add their rules here.

use crate::credential::{CredentialStatus, Fingerprint};
use crate::identity::Tier;
use jiff::Timestamp;
use serde::Serialize;

/// A secret that a scan recorded: the rule that found it and a redacted preview. Its
/// copies are locations with the same fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScannedSecret {
    /// Fingerprint (HMAC under the installation key).
    pub fingerprint: Fingerprint,
    /// Scanner rule id.
    pub rule_id: String,
    /// Scanner rule name.
    pub rule_name: String,
    /// Redacted preview.
    pub preview: String,
    /// First recorded.
    pub first_seen: Timestamp,
    /// Last recorded.
    pub last_seen: Timestamp,
}

impl ScannedSecret {
    /// Checks what a scan records of a secret: rule id, rule name and preview of 1 to 256
    /// bytes, not seen last before it was first seen.
    pub fn validate(&self) -> Result<(), crate::DomainError> {
        for (field, value) in [
            ("rule_id", &self.rule_id),
            ("rule_name", &self.rule_name),
            ("preview", &self.preview),
        ] {
            if value.is_empty() || value.len() > 256 {
                return Err(crate::DomainError::InvalidField {
                    field,
                    reason: "must be 1-256 characters".into(),
                });
            }
        }
        crate::credential::check_seen(self.first_seen, self.last_seen)
    }
}

text_enum! {
    /// A finding rule of the catalogue.
    pub enum FindingRule as "finding rule" {
        /// No business owner or no technical steward.
        NoOwner => "no-owner",
        /// An owner party has departed.
        OwnerDeparted => "owner-departed",
        /// Tier critical or high without a backup approver.
        NoBackupApprover => "no-backup-approver",
        /// Purpose or scope missing.
        Undocumented => "undocumented",
        /// A credential older than its tier's rotation cadence.
        RotationOverdue => "rotation-overdue",
        /// A credential without expiry, or with an expiry beyond policy.
        LongLived => "long-lived",
        /// Attestation older than policy, or past the review date.
        ReviewOverdue => "review-overdue",
        /// No use for the policy's dormancy period.
        Dormant => "dormant",
        /// No use since creation.
        NeverUsed => "never-used",
        /// One fingerprint held by several identities, systems or workloads.
        Shared => "shared",
        /// One credential present in several environments.
        CrossEnvironment => "cross-environment",
        /// A copy of an inventory credential found in code, history, a ticket, chat or a doc.
        Leaked => "leaked",
        /// A revoked credential that still has live copies or use.
        RevokedButReferenced => "revoked-but-referenced",
        /// Grants beyond the documented scope, or unused grants.
        OverPrivileged => "over-privileged",
        /// Interactive or human use of a non-human identity.
        HumanUse => "human-use",
        /// A customer key whose contract or workflow ended, still valid.
        CustomerKeyOrphaned => "customer-key-orphaned",
        /// A vendor or OAuth app without owner or review.
        ThirdPartyUnreviewed => "third-party-unreviewed",
        /// Use outside the identity's learned time, source or action profile.
        AnomalousUse => "anomalous-use",
        /// A secret found by the scanner that no identity of the inventory holds: an
        /// unmanaged identity to adopt or revoke (the one rule beyond DESIGN §3).
        UnmanagedSecret => "unmanaged-secret",
    }
}

text_enum! {
    /// How urgent a finding is.
    pub enum Severity as "severity" {
        /// Act now.
        Critical => "critical",
        /// Act this week.
        High => "high",
        /// Plan it.
        Medium => "medium",
        /// Good hygiene.
        Low => "low",
    }
}

impl FindingRule {
    /// The OWASP Non-Human Identities Top 10 (2025) risk the rule evidences.
    pub fn owasp_nhi(self) -> &'static str {
        use FindingRule::*;
        match self {
            NoOwner | OwnerDeparted | NoBackupApprover | ReviewOverdue | Dormant | NeverUsed | RevokedButReferenced
            | CustomerKeyOrphaned => "NHI1",
            Leaked | UnmanagedSecret => "NHI2",
            ThirdPartyUnreviewed => "NHI3",
            AnomalousUse => "NHI4",
            Undocumented | OverPrivileged => "NHI5",
            RotationOverdue | LongLived => "NHI7",
            CrossEnvironment => "NHI8",
            Shared => "NHI9",
            HumanUse => "NHI10",
        }
    }

    /// The NIST CSF 2.0 subcategories the rule supports. Inventory gaps map to ID.AM-02
    /// (software, services and systems), not ID.AM-01, which is about hardware.
    pub fn nist_csf(self) -> &'static [&'static str] {
        use FindingRule::*;
        match self {
            NoOwner | NoBackupApprover => &["GV.RR-02", "PR.AA-01"],
            OwnerDeparted | RotationOverdue | LongLived | RevokedButReferenced | HumanUse | CustomerKeyOrphaned => {
                &["PR.AA-01"]
            }
            Undocumented => &["ID.AM-02", "PR.AA-05"],
            ReviewOverdue | Dormant | NeverUsed | Shared | CrossEnvironment | OverPrivileged => &["PR.AA-05"],
            Leaked => &["PR.DS-01"],
            // Nobody's credential: missing from the inventory, unmanaged as an identity's
            // credential, and exposed where it was found.
            UnmanagedSecret => &["ID.AM-02", "PR.AA-01", "PR.DS-01"],
            ThirdPartyUnreviewed => &["GV.SC-07"],
            AnomalousUse => &["DE.CM-03"],
        }
    }
}

/// What the inventory knows of a secret found by the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Tier of the identity holding the credential.
    pub tier: Tier,
    /// Status of the credential.
    pub status: CredentialStatus,
    /// Whether the identity is archived (decommissioned: a copy found since is found
    /// after the fact).
    pub archived: bool,
}

/// The finding that live copies of one secret raise, with its severity and remediation:
/// `unmanaged-secret` when no credential of the inventory has its fingerprint,
/// `revoked-but-referenced` when the credential is revoked, else `leaked` (critical for a
/// critical identity). `None` when no live copy remains.
pub fn judge_copies(holder: Option<Holder>, live_copies: usize) -> Option<(FindingRule, Severity, &'static str)> {
    if live_copies == 0 {
        return None;
    }
    Some(match holder {
        None => (
            FindingRule::UnmanagedSecret,
            Severity::High,
            "find who uses it; adopt it (steward credential add) or revoke it at its system, then remove the copies",
        ),
        Some(Holder {
            status: CredentialStatus::Revoked,
            archived: true,
            ..
        }) => (
            FindingRule::RevokedButReferenced,
            Severity::Medium,
            "the identity is archived, yet copies of its revoked secret were found since: remove them and check \
             that nothing still tries to use it (a missed dependency of a decommissioned system)",
        ),
        Some(Holder {
            status: CredentialStatus::Revoked,
            ..
        }) => (
            FindingRule::RevokedButReferenced,
            Severity::Medium,
            "remove the remaining copies (and any use of them) before archiving the identity",
        ),
        Some(Holder { tier, .. }) => (
            FindingRule::Leaked,
            if tier == Tier::Critical {
                Severity::Critical
            } else {
                Severity::High
            },
            "rotate the credential, then remove every copy; treat the secret as compromised",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_judged_by_what_the_inventory_holds() {
        let holder = |tier, status| {
            Some(Holder {
                tier,
                status,
                archived: false,
            })
        };
        assert_eq!(judge_copies(holder(Tier::Low, CredentialStatus::Active), 0), None);
        let rule = |holder| judge_copies(holder, 2).map(|(rule, severity, _)| (rule, severity));
        assert_eq!(rule(None), Some((FindingRule::UnmanagedSecret, Severity::High)));
        assert_eq!(
            rule(holder(Tier::Critical, CredentialStatus::Revoked)),
            Some((FindingRule::RevokedButReferenced, Severity::Medium))
        );
        assert_eq!(
            rule(holder(Tier::Critical, CredentialStatus::Active)),
            Some((FindingRule::Leaked, Severity::Critical))
        );
        assert_eq!(
            rule(holder(Tier::Low, CredentialStatus::Superseded)),
            Some((FindingRule::Leaked, Severity::High))
        );
        // Found after the identity was archived: said so, not "before archiving".
        let archived = Holder {
            tier: Tier::Low,
            status: CredentialStatus::Revoked,
            archived: true,
        };
        let (rule, _, remediation) = judge_copies(Some(archived), 1).unwrap();
        assert_eq!(rule, FindingRule::RevokedButReferenced);
        assert!(remediation.starts_with("the identity is archived"), "{remediation}");
        let (_, _, remediation) = judge_copies(holder(Tier::Low, CredentialStatus::Revoked), 1).unwrap();
        assert!(remediation.ends_with("before archiving the identity"), "{remediation}");
    }

    #[test]
    fn every_rule_is_mapped() {
        for rule in FindingRule::ALL {
            assert!(rule.owasp_nhi().starts_with("NHI"), "{rule}");
            assert!(!rule.nist_csf().is_empty(), "{rule}");
        }
        assert_eq!(FindingRule::ALL.len(), 19);
    }

    /// CSF 2.0's ID.AM-01 is the hardware inventory: no rule about identities and their
    /// secrets maps to it; a secret nobody owns is an inventory and identity-management gap.
    #[test]
    fn inventory_gaps_map_to_software_and_services_not_hardware() {
        for rule in FindingRule::ALL {
            assert!(!rule.nist_csf().contains(&"ID.AM-01"), "{rule}");
        }
        assert_eq!(
            FindingRule::UnmanagedSecret.nist_csf(),
            ["ID.AM-02", "PR.AA-01", "PR.DS-01"]
        );
        assert_eq!(FindingRule::Undocumented.nist_csf(), ["ID.AM-02", "PR.AA-05"]);
    }
}
