//! Identities: the non-human identities (service accounts, keys, apps, bots, agents…)
//! that steward governs, with their scope, ownership and dates.

use crate::DomainError;
use crate::lifecycle::LifecycleState;
use jiff::{Timestamp, civil::Date};
use serde::Serialize;
use std::collections::BTreeMap;

/// Store-assigned id of an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct IdentityId(pub i64);

text_enum! {
    /// What sort of non-human identity this is.
    pub enum IdentityKind as "identity kind" {
        /// A cloud or platform service account / IAM user used by software.
        ServiceAccount => "service_account",
        /// A static API key.
        ApiKey => "api_key",
        /// An OAuth application (client).
        OauthApp => "oauth_app",
        /// An OAuth access or refresh token.
        OauthToken => "oauth_token",
        /// A personal access token used by automation.
        PersonalAccessToken => "personal_access_token",
        /// A repository deploy key.
        DeployKey => "deploy_key",
        /// An SSH key pair.
        SshKey => "ssh_key",
        /// An X.509 certificate and key.
        Certificate => "certificate",
        /// A federated workload identity (IRSA, Workload Identity, SPIFFE…).
        WorkloadIdentity => "workload_identity",
        /// A chat or automation bot.
        Bot => "bot",
        /// An AI agent acting with delegated access.
        AiAgent => "ai_agent",
    }
}

text_enum! {
    /// Privilege tier: drives rotation cadence, review interval and approvals.
    pub enum Tier as "tier" {
        /// Can cause severe, broad damage (admin of production, customer data).
        Critical => "critical",
        /// Significant production access.
        High => "high",
        /// Limited access.
        Medium => "medium",
        /// Minimal or non-production access.
        Low => "low",
    }
}

/// What an identity may touch: `system=billing`, `data=invoices`, `api=/v1/export`,
/// `customer=acme`, `workflow=month-end`… Keys are lowercase words; each may hold
/// several values. Kept sorted so that equal scopes compare and hash equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Scope(pub BTreeMap<String, Vec<String>>);

impl Scope {
    /// Parses `key=value,key=value2,…` (the CLI form). Repeated keys accumulate values.
    pub fn parse(text: &str) -> Result<Scope, DomainError> {
        let mut scope = Scope::default();
        for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| DomainError::InvalidField {
                field: "scope",
                reason: format!("'{part}' is not key=value"),
            })?;
            scope.insert(key.trim(), value.trim())?;
        }
        Ok(scope)
    }

    /// Adds one `key=value` pair after validating both.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), DomainError> {
        let key_ok = !key.is_empty()
            && key.len() <= 64
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !key_ok {
            return Err(DomainError::InvalidField {
                field: "scope",
                reason: format!("key '{key}' must be lowercase letters, digits or '_'"),
            });
        }
        if value.is_empty() {
            return Err(DomainError::InvalidField {
                field: "scope",
                reason: format!("key '{key}' has an empty value"),
            });
        }
        let values = self.0.entry(key.to_string()).or_default();
        if !values.iter().any(|existing| existing == value) {
            values.push(value.to_string());
            values.sort();
        }
        Ok(())
    }

    /// Whether no scope is documented.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The CLI form, `key=value,key=value`.
    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .flat_map(|(key, values)| values.iter().map(move |value| format!("{key}={value}")))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Who holds which role on an identity, by party handle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Roles {
    /// The one accountable owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_owner: Option<String>,
    /// The one operating steward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub technical_steward: Option<String>,
    /// Approvers in the owners' absence.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backup_approvers: Vec<String>,
    /// The IAM/PAM team that enforces removal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_owner: Option<String>,
}

impl Roles {
    /// Every handle named in any role.
    pub fn handles(&self) -> impl Iterator<Item = &str> {
        self.business_owner
            .iter()
            .chain(self.technical_steward.iter())
            .chain(self.backup_approvers.iter())
            .chain(self.control_owner.iter())
            .map(String::as_str)
    }
}

/// Which source asserted an identity, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// `manual`, `import:<file>`, `demo`, later a connector name.
    pub source: String,
    /// When that source last said so.
    pub observed_at: Timestamp,
}

/// A governed non-human identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// Store id.
    pub id: IdentityId,
    /// Name, unique within its system.
    pub name: String,
    /// Kind of NHI.
    pub kind: IdentityKind,
    /// The system that issued it (aws, gcp, github, kubernetes, postgres…).
    pub system: String,
    /// Its id in that system (ARN, unique id, app id…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Environment (prod, staging, dev…).
    pub environment: String,
    /// Privilege tier.
    pub tier: Tier,
    /// Lifecycle state.
    pub state: LifecycleState,
    /// Why it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// What it may touch.
    #[serde(skip_serializing_if = "Scope::is_empty")]
    pub scope: Scope,
    /// Free-form labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Owners and approvers.
    pub roles: Roles,
    /// When it was created at its system (or registered, if unknown).
    pub created_at: Timestamp,
    /// When it stops being valid (TTL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// When its owner must next re-attest it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_due: Option<Date>,
    /// When it was last attested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attested_at: Option<Timestamp>,
    /// When it was last used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
    /// When a credential of it was last rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_rotated_at: Option<Timestamp>,
    /// Who said it exists.
    pub provenance: Provenance,
}

/// An identity to be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIdentity {
    /// Name, unique within its system.
    pub name: String,
    /// Kind of NHI.
    pub kind: IdentityKind,
    /// Issuing system.
    pub system: String,
    /// Id at the system.
    pub external_id: Option<String>,
    /// Environment.
    pub environment: String,
    /// Tier.
    pub tier: Tier,
    /// Initial state (usually `active` for existing identities, `proposed` for requests).
    pub state: LifecycleState,
    /// Purpose.
    pub purpose: Option<String>,
    /// Scope.
    pub scope: Scope,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Roles, by party handle.
    pub roles: Roles,
    /// Creation time at the system.
    pub created_at: Timestamp,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Review date.
    pub review_due: Option<Date>,
    /// Last attestation.
    pub last_attested_at: Option<Timestamp>,
    /// Last use.
    pub last_used_at: Option<Timestamp>,
    /// Last rotation.
    pub last_rotated_at: Option<Timestamp>,
    /// Provenance.
    pub provenance: Provenance,
}

impl NewIdentity {
    /// Checks the fields that do not depend on other records.
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_fields(
            &self.name,
            &self.system,
            &self.environment,
            self.external_id.as_deref(),
            self.purpose.as_deref(),
            &self.roles,
        )?;
        check_dates(
            self.created_at,
            self.expires_at,
            self.last_attested_at,
            self.last_used_at,
            self.last_rotated_at,
        )
    }

    /// The identity this would become under `id`.
    pub fn into_identity(self, id: IdentityId) -> Identity {
        Identity {
            id,
            name: self.name,
            kind: self.kind,
            system: self.system,
            external_id: self.external_id,
            environment: self.environment,
            tier: self.tier,
            state: self.state,
            purpose: self.purpose,
            scope: self.scope,
            labels: self.labels,
            roles: self.roles,
            created_at: self.created_at,
            expires_at: self.expires_at,
            review_due: self.review_due,
            last_attested_at: self.last_attested_at,
            last_used_at: self.last_used_at,
            last_rotated_at: self.last_rotated_at,
            provenance: self.provenance,
        }
    }
}

impl Identity {
    /// Checks the fields that do not depend on other records (after a change).
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_fields(
            &self.name,
            &self.system,
            &self.environment,
            self.external_id.as_deref(),
            self.purpose.as_deref(),
            &self.roles,
        )?;
        check_dates(
            self.created_at,
            self.expires_at,
            self.last_attested_at,
            self.last_used_at,
            self.last_rotated_at,
        )
    }
}

/// An identity's instants after its creation are not before it.
fn check_dates(
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    last_attested_at: Option<Timestamp>,
    last_used_at: Option<Timestamp>,
    last_rotated_at: Option<Timestamp>,
) -> Result<(), DomainError> {
    crate::time::check_not_before_creation(
        created_at,
        &[
            ("expires_at", expires_at),
            ("last_attested_at", last_attested_at),
            ("last_used_at", last_used_at),
            ("last_rotated_at", last_rotated_at),
        ],
    )
}

/// The longest purpose, in characters: a few paragraphs (every audit snapshot of the
/// identity carries it).
pub const PURPOSE_MAX_CHARS: usize = 4000;

fn validate_fields(
    name: &str,
    system: &str,
    environment: &str,
    external_id: Option<&str>,
    purpose: Option<&str>,
    roles: &Roles,
) -> Result<(), DomainError> {
    if purpose.is_some_and(|purpose| purpose.chars().count() > PURPOSE_MAX_CHARS) {
        return Err(DomainError::InvalidField {
            field: "purpose",
            reason: format!("is over {PURPOSE_MAX_CHARS} characters"),
        });
    }
    validate_name("name", name)?;
    validate_name("system", system)?;
    validate_name("environment", environment)?;
    if let Some(external_id) = external_id
        && (external_id.is_empty() || external_id.len() > 2048)
    {
        return Err(DomainError::InvalidField {
            field: "external_id",
            reason: "must be 1-2048 characters".into(),
        });
    }
    if roles
        .backup_approvers
        .iter()
        .any(|backup| Some(backup) == roles.business_owner.as_ref() || Some(backup) == roles.technical_steward.as_ref())
    {
        return Err(DomainError::InvalidField {
            field: "backup_approvers",
            reason: "a backup approver must differ from the owner and the steward".into(),
        });
    }
    let backups = &roles.backup_approvers;
    if let Some(repeated) = (1..backups.len()).find_map(|at| backups[..at].contains(&backups[at]).then(|| &backups[at]))
    {
        return Err(DomainError::InvalidField {
            field: "backup_approvers",
            reason: format!("'{repeated}' is listed twice"),
        });
    }
    Ok(())
}

/// Checks a name-like field (identity name, system, environment): 1-200 characters of
/// letters, digits and `-_.:/@+`, starting with a letter or digit.
pub fn validate_name(field: &'static str, value: &str) -> Result<(), DomainError> {
    let mut chars = value.chars();
    let ok = value.len() <= 200
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "-_.:/@+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(DomainError::InvalidField {
            field,
            reason: format!(
                "'{value}' must be 1-200 characters of letters, digits and -_.:/@+, starting with a letter or digit"
            ),
        })
    }
}

/// A change to an identity's descriptive fields. `None` leaves a field as it is;
/// `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityPatch {
    /// New purpose.
    pub purpose: Option<Option<String>>,
    /// New scope (replaces the old one).
    pub scope: Option<Scope>,
    /// New tier.
    pub tier: Option<Tier>,
    /// New environment.
    pub environment: Option<String>,
    /// New external id.
    pub external_id: Option<Option<String>>,
    /// New expiry.
    pub expires_at: Option<Option<Timestamp>>,
    /// New review date.
    pub review_due: Option<Option<Date>>,
    /// Labels to set.
    pub set_labels: BTreeMap<String, String>,
    /// Labels to remove.
    pub remove_labels: Vec<String>,
    /// New business owner.
    pub business_owner: Option<Option<String>>,
    /// New technical steward.
    pub technical_steward: Option<Option<String>>,
    /// New backup approvers (replaces the list).
    pub backup_approvers: Option<Vec<String>>,
    /// New control owner.
    pub control_owner: Option<Option<String>>,
    /// Records an attestation at this time; the next review is then due after the
    /// (new) tier's review interval, unless `review_due` is given too.
    pub attested_at: Option<Timestamp>,
}

impl IdentityPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == IdentityPatch::default()
    }

    /// Applies the patch to a copy of `identity` and validates the result.
    pub fn apply(&self, identity: &Identity) -> Result<Identity, DomainError> {
        let mut next = identity.clone();
        if let Some(purpose) = &self.purpose {
            next.purpose = purpose.clone();
        }
        if let Some(scope) = &self.scope {
            next.scope = scope.clone();
        }
        if let Some(tier) = self.tier {
            next.tier = tier;
        }
        if let Some(environment) = &self.environment {
            validate_name("environment", environment)?;
            next.environment = environment.clone();
        }
        if let Some(external_id) = &self.external_id {
            next.external_id = external_id.clone();
        }
        if let Some(expires_at) = self.expires_at {
            next.expires_at = expires_at;
        }
        if let Some(review_due) = self.review_due {
            next.review_due = review_due;
        }
        // Removals first: a label removed and set in one patch ends set.
        for key in &self.remove_labels {
            next.labels.remove(key);
        }
        for (key, value) in &self.set_labels {
            next.labels.insert(key.clone(), value.clone());
        }
        if let Some(owner) = &self.business_owner {
            next.roles.business_owner = owner.clone();
        }
        if let Some(steward) = &self.technical_steward {
            next.roles.technical_steward = steward.clone();
        }
        if let Some(backups) = &self.backup_approvers {
            next.roles.backup_approvers = backups.clone();
        }
        if let Some(control) = &self.control_owner {
            next.roles.control_owner = control.clone();
        }
        if let Some(at) = self.attested_at {
            next.last_attested_at = Some(at);
            // An attestation is the review: the next one is due an interval later.
            if self.review_due.is_none() {
                next.review_due = Some(crate::Policy::default().default_review_due(next.tier, at));
            }
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scope_parses_and_prints_sorted() {
        let scope = Scope::parse("system=billing, data=invoices,data=ledger").unwrap();
        assert_eq!(scope.to_text(), "data=invoices,data=ledger,system=billing");
        assert!(Scope::parse("billing").is_err());
        assert!(Scope::parse("Sys=x").is_err());
        assert!(Scope::parse("").unwrap().is_empty());
    }

    #[test]
    fn backup_approvers_are_distinct_and_differ_from_the_owners() {
        let roles = |owner: &str, backups: &[&str]| Roles {
            business_owner: Some(owner.into()),
            backup_approvers: backups.iter().map(|handle| handle.to_string()).collect(),
            ..Roles::default()
        };
        let check =
            |roles: &Roles| validate_fields("svc", "aws", "prod", None, None, roles).map_err(|error| error.to_string());
        assert!(check(&roles("a@x.io", &["b@x.io", "c@x.io"])).is_ok());
        let repeated = check(&roles("a@x.io", &["b@x.io", "c@x.io", "b@x.io"])).unwrap_err();
        assert!(repeated.contains("'b@x.io' is listed twice"), "{repeated}");
        assert!(
            check(&roles("a@x.io", &["a@x.io"]))
                .unwrap_err()
                .contains("must differ")
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("name", "billing-export").is_ok());
        assert!(validate_name("name", "arn:aws:iam::1/x").is_ok());
        assert!(validate_name("name", "").is_err());
        assert!(validate_name("name", "-x").is_err());
        assert!(validate_name("name", "a b").is_err());
    }

    #[test]
    fn text_enums_reject_unknown_values_with_the_accepted_list() {
        let error = "hgih".parse::<Tier>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid tier 'hgih' (expected one of: critical, high, medium, low)"
        );
    }

    proptest! {
        #[test]
        fn scope_text_round_trips(pairs in proptest::collection::vec(("[a-z_]{1,8}", "[a-z0-9/.-]{1,12}"), 0..6)) {
            let mut scope = Scope::default();
            for (key, value) in &pairs {
                scope.insert(key, value).unwrap();
            }
            prop_assert_eq!(Scope::parse(&scope.to_text()).unwrap(), scope);
        }
    }
}
