//! Wire shapes of steward's own file and output formats (JSON, YAML, CSV): identities,
//! parties and credentials as a user reads and writes them. Kept apart from the domain
//! types so the formats can stay stable while the domain evolves.
//!
//! The same [`IdentityRecord`] is printed by `nhi list -o json`, written by `export` and
//! read by `import`, so an export imports into another installation unchanged.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use steward_core::time::default_created;
use steward_core::{
    Credential, CredentialKind, CredentialStatus, Fingerprint, Identity, IdentityKind, LifecycleState, NewCredential,
    NewIdentity, NewParty, Party, PartyKind, PartyStatus, Policy, Provenance, Roles, Scope, Tier,
};

/// `fingerprint_key` of an export made where the fingerprint key was not at hand: its
/// fingerprints cannot be checked, so an import refuses them.
pub const UNKNOWN_KEY: &str = "unknown";

/// The version of the inventory file format this binary reads and writes.
pub const FILE_FORMAT_VERSION: u32 = 1;

/// An inventory file: `version`, `parties`, `identities`, `secrets`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryFile {
    /// Format version; must be 1.
    pub version: u32,
    /// [`steward_core::FingerprintKey::id`] of the key the file's fingerprints were made
    /// under (written by `export`; a file without it is taken to use the reader's key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_key: Option<String>,
    /// People and teams.
    #[serde(default)]
    pub parties: Vec<PartyRecord>,
    /// Identities with their credentials.
    #[serde(default)]
    pub identities: Vec<IdentityRecord>,
    /// Secrets known to have copies, or recorded by scans, with their copies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretRecord>,
}

/// A secret in an inventory file: its fingerprint, what a scan recorded of it, and its
/// known copies. Never the secret itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRecord {
    /// HMAC-SHA256 fingerprint under this installation's key (64 hex digits).
    pub fingerprint: String,
    /// Id of the scanner rule that found it (with `rule_name` and `preview`; absent when
    /// its copies were only recorded by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Name of that rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// Redacted preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// First recorded by a scan (default: its first copy's first sighting, else now).
    #[serde(default, with = "instant", skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<jiff::Timestamp>,
    /// Last recorded by a scan (default: its copies' last sighting, else `first_seen`).
    #[serde(default, with = "instant", skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<jiff::Timestamp>,
    /// Its copies.
    #[serde(default)]
    pub locations: Vec<CopyRecord>,
}

/// A copy of a secret in an inventory file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyRecord {
    /// Kind of place.
    pub kind: steward_core::LocationKind,
    /// Exact place.
    pub locator: String,
    /// First seen (default: now).
    #[serde(default, with = "instant")]
    pub first_seen: Option<jiff::Timestamp>,
    /// Last seen (default: `first_seen`).
    #[serde(default, with = "instant")]
    pub last_seen: Option<jiff::Timestamp>,
    /// When it was found gone, if it was.
    #[serde(default, with = "instant", skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<jiff::Timestamp>,
    /// Dismissed: still there, the risk accepted (`credential locate --dismiss`); needs
    /// `removed_at`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dismissed: bool,
}

impl SecretRecord {
    /// From what the store knows of a secret.
    pub fn from_known(secret: &steward_store::KnownSecret) -> Self {
        let scanned = secret.scanned.as_ref();
        SecretRecord {
            fingerprint: secret.fingerprint.as_str().to_string(),
            rule_id: scanned.map(|scanned| scanned.rule_id.clone()),
            rule_name: scanned.map(|scanned| scanned.rule_name.clone()),
            preview: scanned.map(|scanned| scanned.preview.clone()),
            first_seen: scanned.map(|scanned| scanned.first_seen),
            last_seen: scanned.map(|scanned| scanned.last_seen),
            locations: secret
                .copies
                .iter()
                .map(|copy| CopyRecord {
                    kind: copy.kind,
                    locator: copy.locator.clone(),
                    first_seen: Some(copy.first_seen),
                    last_seen: Some(copy.last_seen),
                    removed_at: copy.removed_at,
                    dismissed: copy.dismissed,
                })
                .collect(),
        }
    }

    /// To a secret to import, or the field (path inside this record) that is wrong and why.
    pub fn to_known(&self, now: jiff::Timestamp) -> Result<steward_store::KnownSecret, (String, String)> {
        let fingerprint =
            Fingerprint::parse(&self.fingerprint).map_err(|error| ("fingerprint".to_string(), error.to_string()))?;
        // The store's own checks (`Location::validate`, `ScannedSecret::validate`), their
        // field named as a path in this record.
        let checked = |prefix: &str, outcome: Result<(), steward_core::DomainError>| {
            outcome.map_err(|error| match error {
                steward_core::DomainError::InvalidField { field, reason } => (format!("{prefix}{field}"), reason),
                other => (prefix.trim_end_matches('.').to_string(), other.to_string()),
            })
        };
        let mut places = std::collections::HashSet::new();
        let mut copies = Vec::with_capacity(self.locations.len());
        for (index, copy) in self.locations.iter().enumerate() {
            let prefix = format!("locations[{index}].");
            // A blank locator is refused here too (the store takes any non-empty one).
            if copy.locator.trim().is_empty() {
                return Err((format!("{prefix}locator"), "must be 1-4096 characters".to_string()));
            }
            let first_seen = copy.first_seen.unwrap_or(now);
            let location = steward_core::Location {
                id: 0,
                credential_id: None,
                fingerprint: fingerprint.clone(),
                kind: copy.kind,
                locator: copy.locator.clone(),
                first_seen,
                last_seen: copy.last_seen.unwrap_or(first_seen),
                removed_at: copy.removed_at,
                dismissed: copy.dismissed,
            };
            checked(&prefix, location.validate())?;
            if !places.insert((copy.kind, copy.locator.as_str())) {
                return Err((
                    format!("{prefix}locator"),
                    format!("'{}' is listed twice", copy.locator),
                ));
            }
            copies.push(location);
        }
        let scanned = match (&self.rule_id, &self.rule_name, &self.preview) {
            (None, None, None) => {
                for (name, value) in [("first_seen", self.first_seen), ("last_seen", self.last_seen)] {
                    if value.is_some() {
                        return Err((
                            name.to_string(),
                            "is what a scan recorded: give rule_id too".to_string(),
                        ));
                    }
                }
                if copies.is_empty() {
                    return Err((
                        "locations".to_string(),
                        "a secret needs copies, or rule_id, rule_name and preview".to_string(),
                    ));
                }
                None
            }
            (Some(rule_id), Some(rule_name), Some(preview)) => {
                // Blank ones are refused here too (the store takes any non-empty text).
                for (name, value) in [("rule_id", rule_id), ("rule_name", rule_name), ("preview", preview)] {
                    if value.trim().is_empty() {
                        return Err((name.to_string(), "must be 1-256 characters".to_string()));
                    }
                }
                let first_seen = self
                    .first_seen
                    .or_else(|| copies.iter().map(|copy| copy.first_seen).min())
                    .unwrap_or(now);
                let last_seen = self
                    .last_seen
                    .or_else(|| copies.iter().map(|copy| copy.last_seen).max())
                    .unwrap_or(first_seen);
                let scanned = steward_core::ScannedSecret {
                    fingerprint: fingerprint.clone(),
                    rule_id: rule_id.clone(),
                    rule_name: rule_name.clone(),
                    preview: preview.clone(),
                    first_seen,
                    last_seen,
                };
                checked("", scanned.validate())?;
                Some(scanned)
            }
            _ => {
                let missing = [
                    ("rule_id", &self.rule_id),
                    ("rule_name", &self.rule_name),
                    ("preview", &self.preview),
                ]
                .into_iter()
                .find(|(_, value)| value.is_none())
                .map_or("rule_id", |(name, _)| name);
                return Err((
                    missing.to_string(),
                    "rule_id, rule_name and preview go together".to_string(),
                ));
            }
        };
        Ok(steward_store::KnownSecret {
            fingerprint,
            scanned,
            copies,
        })
    }
}

/// A party as written in files and printed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyRecord {
    /// E-mail address or `team-<name>`.
    pub handle: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// person or team (inferred from the handle when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<PartyKind>,
    /// Team handle or name, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// active (default) or departed.
    #[serde(default = "default_party_status")]
    pub status: PartyStatus,
}

fn default_party_status() -> PartyStatus {
    PartyStatus::Active
}

impl PartyRecord {
    /// From a stored party.
    pub fn from_party(party: &Party) -> Self {
        PartyRecord {
            handle: party.handle.clone(),
            display_name: party.display_name.clone(),
            kind: Some(party.kind),
            team: party.team.clone(),
            status: party.status,
        }
    }

    /// To a party to create.
    pub fn to_new_party(&self) -> NewParty {
        let inferred = NewParty::from_handle(&self.handle);
        NewParty {
            display_name: self.display_name.clone(),
            kind: self.kind.unwrap_or(inferred.kind),
            team: self.team.clone(),
            status: self.status,
            ..inferred
        }
    }
}

/// Scope values: a single string or a list in files; always a list when written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeValues(pub Vec<String>);

impl Serialize for ScopeValues {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ScopeValues {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(value) => ScopeValues(vec![value]),
            OneOrMany::Many(values) => ScopeValues(values),
        })
    }
}

/// Instants in files: RFC 3339 or a plain date (midnight UTC); written as RFC 3339.
mod instant {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<jiff::Timestamp>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(at) => serializer.serialize_str(&steward_core::time::format_instant(*at)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<jiff::Timestamp>, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        text.filter(|text| !text.is_empty())
            .map(|text| steward_core::time::parse_instant(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A review date as a file gives it: absent (the tier's review interval applies), `null`
/// or empty (no review date: what an export writes for an identity without one), or a
/// date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReviewDue {
    /// Not in the file.
    #[default]
    Absent,
    /// `null` or empty.
    None,
    /// A date.
    Date(jiff::civil::Date),
}

impl ReviewDue {
    /// The date, if one is given.
    pub fn date(self) -> Option<jiff::civil::Date> {
        match self {
            ReviewDue::Date(date) => Some(date),
            ReviewDue::Absent | ReviewDue::None => None,
        }
    }
}

impl From<Option<jiff::civil::Date>> for ReviewDue {
    fn from(date: Option<jiff::civil::Date>) -> Self {
        date.map_or(ReviewDue::None, ReviewDue::Date)
    }
}

impl Serialize for ReviewDue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        date::serialize(&self.date(), serializer)
    }
}

impl<'de> Deserialize<'de> for ReviewDue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        date::deserialize(deserializer).map(ReviewDue::from)
    }
}

/// Dates in files: `YYYY-MM-DD`.
mod date {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<jiff::civil::Date>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(date) => serializer.serialize_str(&date.to_string()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<jiff::civil::Date>, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        text.filter(|text| !text.is_empty())
            .map(|text| steward_core::time::parse_date(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

fn default_environment() -> String {
    "prod".to_string()
}

fn default_state() -> LifecycleState {
    LifecycleState::Active
}

/// An identity as written in files and printed by `nhi list -o json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRecord {
    /// Store id (printed; ignored on import, where ids are assigned anew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Name, unique within its system.
    pub name: String,
    /// Kind.
    pub kind: IdentityKind,
    /// Issuing system.
    pub system: String,
    /// Id at the system.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Environment (default prod).
    #[serde(default = "default_environment")]
    pub environment: String,
    /// Tier.
    pub tier: Tier,
    /// Lifecycle state (default active).
    #[serde(default = "default_state")]
    pub state: LifecycleState,
    /// Business owner handle.
    #[serde(default)]
    pub business_owner: Option<String>,
    /// Technical steward handle.
    #[serde(default)]
    pub technical_steward: Option<String>,
    /// Backup approver handles.
    #[serde(default)]
    pub backup_approvers: Vec<String>,
    /// Control owner handle.
    #[serde(default)]
    pub control_owner: Option<String>,
    /// Purpose.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Scope: key → value or list of values.
    #[serde(default)]
    pub scope: BTreeMap<String, ScopeValues>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Created at the system (default: import time).
    #[serde(default, with = "instant")]
    pub created_at: Option<jiff::Timestamp>,
    /// Expiry.
    #[serde(default, with = "instant")]
    pub expires_at: Option<jiff::Timestamp>,
    /// Next review date.
    #[serde(default)]
    pub review_due: ReviewDue,
    /// Last attestation.
    #[serde(default, with = "instant")]
    pub last_attested_at: Option<jiff::Timestamp>,
    /// Last use.
    #[serde(default, with = "instant")]
    pub last_used_at: Option<jiff::Timestamp>,
    /// Last rotation.
    #[serde(default, with = "instant")]
    pub last_rotated_at: Option<jiff::Timestamp>,
    /// Source that asserted it (default `import:<file>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Credentials (export and import; omitted from listings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<CredentialRecord>,
}

/// The columns of an identity in CSV (export, import, `nhi list -o csv`) and in
/// `nhi show`'s table, in order. Lists inside a cell are separated by `;`.
pub const IDENTITY_COLUMNS: &[&str] = &[
    "id",
    "name",
    "kind",
    "system",
    "external_id",
    "environment",
    "tier",
    "state",
    "business_owner",
    "technical_steward",
    "backup_approvers",
    "control_owner",
    "purpose",
    "scope",
    "labels",
    "created_at",
    "expires_at",
    "review_due",
    "last_attested_at",
    "last_used_at",
    "last_rotated_at",
    "source",
];

/// An item of a list cell (`a;b`, `k=v;k=v`) with a backslash before each of `special`
/// and before a backslash, so that the cell reads back as written
/// (`inventory_file::split_list`).
pub fn list_item<'t>(text: &'t str, special: &str) -> std::borrow::Cow<'t, str> {
    if !text.contains(|c: char| c == '\\' || special.contains(c)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if c == '\\' || special.contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    std::borrow::Cow::Owned(escaped)
}

impl IdentityRecord {
    /// The cells of [`IDENTITY_COLUMNS`], as text.
    pub fn text_values(&self) -> Vec<String> {
        use crate::output::{cell, instant_cell};
        let pairs = |pairs: &mut dyn Iterator<Item = (&String, &String)>| {
            pairs
                .map(|(key, value)| format!("{}={}", list_item(key, "=;,"), list_item(value, ";,")))
                .collect::<Vec<_>>()
                .join(";")
        };
        vec![
            cell(&self.id),
            self.name.clone(),
            self.kind.to_string(),
            self.system.clone(),
            cell(&self.external_id),
            self.environment.clone(),
            self.tier.to_string(),
            self.state.to_string(),
            cell(&self.business_owner),
            cell(&self.technical_steward),
            self.backup_approvers
                .iter()
                .map(|handle| list_item(handle, ";,"))
                .collect::<Vec<_>>()
                .join(";"),
            cell(&self.control_owner),
            cell(&self.purpose),
            pairs(
                &mut self
                    .scope
                    .iter()
                    .flat_map(|(key, values)| values.0.iter().map(move |value| (key, value))),
            ),
            pairs(&mut self.labels.iter()),
            instant_cell(self.created_at),
            instant_cell(self.expires_at),
            cell(&self.review_due.date()),
            instant_cell(self.last_attested_at),
            instant_cell(self.last_used_at),
            instant_cell(self.last_rotated_at),
            cell(&self.source),
        ]
    }

    /// From a stored identity (credentials added by the caller when wanted).
    pub fn from_identity(identity: &Identity) -> Self {
        Self::from_owned_identity(identity.clone())
    }

    /// [`IdentityRecord::from_identity`] taking the identity, so nothing is copied (a
    /// listing converts thousands).
    pub fn from_owned_identity(identity: Identity) -> Self {
        IdentityRecord {
            id: Some(identity.id.0),
            name: identity.name,
            kind: identity.kind,
            system: identity.system,
            external_id: identity.external_id,
            environment: identity.environment,
            tier: identity.tier,
            state: identity.state,
            business_owner: identity.roles.business_owner,
            technical_steward: identity.roles.technical_steward,
            backup_approvers: identity.roles.backup_approvers,
            control_owner: identity.roles.control_owner,
            purpose: identity.purpose,
            scope: identity
                .scope
                .0
                .into_iter()
                .map(|(key, values)| (key, ScopeValues(values)))
                .collect(),
            labels: identity.labels,
            created_at: Some(identity.created_at),
            expires_at: identity.expires_at,
            review_due: ReviewDue::from(identity.review_due),
            last_attested_at: identity.last_attested_at,
            last_used_at: identity.last_used_at,
            last_rotated_at: identity.last_rotated_at,
            source: Some(identity.provenance.source),
            credentials: Vec::new(),
        }
    }

    /// To an identity to create; `field` errors name the field at fault.
    pub fn to_new_identity(&self, default_source: &str, now: jiff::Timestamp) -> Result<NewIdentity, (String, String)> {
        let mut scope = Scope::default();
        for (key, values) in &self.scope {
            for value in &values.0 {
                scope
                    .insert(key, value)
                    .map_err(|error| ("scope".to_string(), error.to_string()))?;
            }
        }
        let identity = NewIdentity {
            name: self.name.clone(),
            kind: self.kind,
            system: self.system.clone(),
            external_id: self.external_id.clone().filter(|id| !id.is_empty()),
            environment: self.environment.clone(),
            tier: self.tier,
            state: self.state,
            purpose: self.purpose.clone().filter(|purpose| !purpose.is_empty()),
            scope,
            labels: self.labels.clone(),
            roles: Roles {
                business_owner: self.business_owner.clone().filter(|handle| !handle.is_empty()),
                technical_steward: self.technical_steward.clone().filter(|handle| !handle.is_empty()),
                backup_approvers: self.backup_approvers.clone(),
                control_owner: self.control_owner.clone().filter(|handle| !handle.is_empty()),
            },
            created_at: self.created_at.unwrap_or_else(|| {
                default_created(
                    now,
                    [
                        self.expires_at,
                        self.last_attested_at,
                        self.last_used_at,
                        self.last_rotated_at,
                    ],
                )
            }),
            expires_at: self.expires_at,
            // As `nhi add`: when the file does not say, due after the tier's review
            // interval, so that nothing imported escapes review unless the file says so.
            review_due: match self.review_due {
                ReviewDue::Absent => Some(Policy::default().default_review_due(self.tier, now)),
                given => given.date(),
            },
            last_attested_at: self.last_attested_at,
            last_used_at: self.last_used_at,
            last_rotated_at: self.last_rotated_at,
            provenance: Provenance {
                source: self.source.clone().unwrap_or_else(|| default_source.to_string()),
                observed_at: now,
            },
        };
        identity.validate().map_err(|error| match error {
            steward_core::DomainError::InvalidField { field, reason } => (field.to_string(), reason),
            other => ("identity".to_string(), other.to_string()),
        })?;
        Ok(identity)
    }
}

fn default_credential_status() -> CredentialStatus {
    CredentialStatus::Active
}

/// A credential as written in files and printed. Never holds a secret: only its keyed
/// fingerprint and a redacted preview.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialRecord {
    /// Store id (printed; ignored on import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Kind.
    pub kind: CredentialKind,
    /// Public identifier.
    #[serde(default)]
    pub public_id: Option<String>,
    /// HMAC-SHA256 fingerprint under this installation's key (64 hex digits).
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// Redacted preview.
    #[serde(default)]
    pub preview: Option<String>,
    /// Status (default active).
    #[serde(default = "default_credential_status")]
    pub status: CredentialStatus,
    /// Created (default: import time).
    #[serde(default, with = "instant")]
    pub created_at: Option<jiff::Timestamp>,
    /// Expiry.
    #[serde(default, with = "instant")]
    pub expires_at: Option<jiff::Timestamp>,
    /// Last use.
    #[serde(default, with = "instant")]
    pub last_used_at: Option<jiff::Timestamp>,
    /// Revocation time.
    #[serde(default, with = "instant")]
    pub revoked_at: Option<jiff::Timestamp>,
}

impl CredentialRecord {
    /// From a stored credential.
    pub fn from_credential(credential: &Credential) -> Self {
        CredentialRecord {
            id: Some(credential.id.0),
            kind: credential.kind,
            public_id: credential.public_id.clone(),
            fingerprint: credential
                .fingerprint
                .as_ref()
                .map(|fingerprint| fingerprint.as_str().to_string()),
            preview: credential.preview.clone(),
            status: credential.status,
            created_at: Some(credential.created_at),
            expires_at: credential.expires_at,
            last_used_at: credential.last_used_at,
            revoked_at: credential.revoked_at,
        }
    }

    /// To a credential to create.
    pub fn to_new_credential(&self, now: jiff::Timestamp) -> Result<NewCredential, (String, String)> {
        let fingerprint = self
            .fingerprint
            .as_deref()
            .map(Fingerprint::parse)
            .transpose()
            .map_err(|error| ("fingerprint".to_string(), error.to_string()))?;
        let credential = NewCredential {
            kind: self.kind,
            public_id: self.public_id.clone(),
            fingerprint,
            preview: self.preview.clone(),
            status: self.status,
            created_at: self
                .created_at
                .unwrap_or_else(|| default_created(now, [self.expires_at, self.last_used_at, self.revoked_at])),
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
        };
        credential.validate().map_err(|error| match error {
            steward_core::DomainError::InvalidField { field, reason } => (field.to_string(), reason),
            other => ("credential".to_string(), other.to_string()),
        })?;
        Ok(credential)
    }
}

/// A location as printed.
#[derive(Debug, Clone, Serialize)]
pub struct LocationRecord {
    /// Store id.
    pub id: i64,
    /// Credential id, if the copy belongs to a known credential.
    pub credential_id: Option<i64>,
    /// Kind of place.
    pub kind: steward_core::LocationKind,
    /// Exact place.
    pub locator: String,
    /// First seen.
    #[serde(with = "instant")]
    pub first_seen: Option<jiff::Timestamp>,
    /// Last seen.
    #[serde(with = "instant")]
    pub last_seen: Option<jiff::Timestamp>,
    /// When it was marked gone, if it was.
    #[serde(with = "instant")]
    pub removed_at: Option<jiff::Timestamp>,
    /// Dismissed by hand: still there, the risk accepted.
    pub dismissed: bool,
}

impl LocationRecord {
    /// From a stored location.
    pub fn from_location(location: &steward_core::Location) -> Self {
        LocationRecord {
            id: location.id,
            credential_id: location.credential_id.map(|id| id.0),
            kind: location.kind,
            locator: location.locator.clone(),
            first_seen: Some(location.first_seen),
            last_seen: Some(location.last_seen),
            removed_at: location.removed_at,
            dismissed: location.dismissed,
        }
    }
}
