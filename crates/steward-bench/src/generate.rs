//! A deterministic synthetic inventory: a few hundred people and teams, and any number
//! of identities spread over ten systems, four tiers and four environments, each with
//! credentials whose secrets are made up, fingerprinted and redacted the way a real
//! import would. Identity `i` depends only on `i`, so runs are reproducible and any
//! range can be generated on its own.

use jiff::Timestamp;
use std::collections::BTreeMap;
use steward_core::time::{add_days, default_created, utc_date};
use steward_core::{
    CredentialKind, CredentialStatus, Fingerprint, FingerprintKey, IdentityKind, LifecycleState, NewCredential,
    NewIdentity, NewParty, PartyKind, PartyStatus, Provenance, Roles, Scope, Tier, redact_secret,
};
use steward_store::ImportIdentity;

/// Issuing systems and their relative weights (out of 100).
const SYSTEMS: &[(&str, u32)] = &[
    ("aws", 24),
    ("kubernetes", 18),
    ("github", 14),
    ("gcp", 12),
    ("azure", 10),
    ("postgres", 8),
    ("redis", 4),
    ("okta", 4),
    ("slack", 3),
    ("datadog", 3),
];

/// Tiers and weights: few identities are critical.
const TIERS: &[(Tier, u32)] = &[
    (Tier::Critical, 5),
    (Tier::High, 20),
    (Tier::Medium, 35),
    (Tier::Low, 40),
];

const ENVIRONMENTS: &[(&str, u32)] = &[("prod", 50), ("staging", 25), ("dev", 20), ("sandbox", 5)];

const STATES: &[(LifecycleState, u32)] = &[
    (LifecycleState::Active, 88),
    (LifecycleState::Proposed, 3),
    (LifecycleState::Suspended, 4),
    (LifecycleState::Offboarding, 3),
    (LifecycleState::Revoked, 2),
];

const TEAMS: &[&str] = &[
    "payments",
    "billing",
    "checkout",
    "search",
    "identity",
    "iam",
    "platform",
    "data",
    "ml",
    "mobile",
    "web",
    "growth",
    "support",
    "finance",
    "security",
    "sre",
    "observability",
    "storage",
    "network",
    "messaging",
    "catalog",
    "logistics",
    "partners",
    "legal",
];

const FIRST_NAMES: &[&str] = &[
    "ana", "ben", "chloe", "david", "elena", "farid", "grace", "hugo", "ines", "jonas", "kenji", "lena", "marco",
    "nadia", "omar", "priya", "quentin", "rosa", "sven", "tara",
];

const LAST_NAMES: &[&str] = &[
    "garcia",
    "smith",
    "muller",
    "rossi",
    "dubois",
    "kowalski",
    "tanaka",
    "okafor",
    "silva",
    "novak",
    "jensen",
    "haddad",
    "lindqvist",
    "moreau",
];

const VERBS: &[&str] = &[
    "export",
    "import",
    "sync",
    "deploy",
    "backup",
    "scan",
    "notify",
    "ingest",
    "render",
    "reconcile",
    "publish",
    "archive",
    "monitor",
    "migrate",
    "index",
    "build",
];

const NOUNS: &[&str] = &[
    "invoices",
    "ledger",
    "customers",
    "orders",
    "payments",
    "logs",
    "metrics",
    "images",
    "reports",
    "events",
    "tickets",
    "releases",
    "backups",
    "telemetry",
    "catalog",
    "shipments",
];

const TOOLS: &[&str] = &["terraform", "helm", "pulumi", "manual", "crossplane"];

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HEX: &[u8] = b"0123456789abcdef";

/// splitmix64: tiny, fast and good enough to spread synthetic records.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED_57E7_A4D0_0001)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        // The high half of a 64x64-bit product instead of a division (Lemire's method);
        // its bias is below 2^-50 for our small n.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    fn percent(&mut self, p: u32) -> bool {
        self.below(100) < p as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, weight)| weight).sum();
        let mut roll = self.below(total as usize) as u32;
        for (item, weight) in items {
            if roll < *weight {
                return *item;
            }
            roll -= weight;
        }
        items[items.len() - 1].0
    }

    fn text(&mut self, alphabet: &[u8], length: usize) -> String {
        let bytes = (0..length).map(|_| alphabet[self.below(alphabet.len())]).collect();
        String::from_utf8(bytes).expect("alphabets are ASCII")
    }

    fn days(&mut self, at: Timestamp, max_days: usize) -> Timestamp {
        let seconds = self.below(max_days * 86_400) as i64;
        at.checked_add(jiff::SignedDuration::from_secs(seconds))
            .expect("synthetic dates stay in range")
    }
}

/// Makes the parties and identities of a synthetic inventory.
pub struct Generator {
    fingerprint_key: FingerprintKey,
    credentials_per_identity: usize,
    now: Timestamp,
    earliest: Timestamp,
    parties: Vec<NewParty>,
    /// Handles of the people of each team (same order as [`TEAMS`]).
    members: Vec<Vec<String>>,
}

impl Generator {
    /// A generator whose secrets are fingerprinted under `fingerprint_key` and whose
    /// identities are observed at `now`.
    pub fn new(fingerprint_key: FingerprintKey, credentials_per_identity: usize, now: Timestamp) -> Self {
        let mut parties = Vec::new();
        let mut members = vec![Vec::new(); TEAMS.len()];
        for team in TEAMS {
            parties.push(NewParty {
                handle: format!("team-{team}"),
                display_name: Some(format!("{} team", capitalise(team))),
                kind: PartyKind::Team,
                team: None,
                status: PartyStatus::Active,
            });
        }
        let mut index = 0;
        for first in FIRST_NAMES {
            for last in LAST_NAMES {
                let team = index % TEAMS.len();
                let handle = format!("{first}.{last}@example.com");
                // A few people have left: their identities are the orphans steward hunts.
                let status = if index % 37 == 5 {
                    PartyStatus::Departed
                } else {
                    PartyStatus::Active
                };
                parties.push(NewParty {
                    handle: handle.clone(),
                    display_name: Some(format!("{} {}", capitalise(first), capitalise(last))),
                    kind: PartyKind::Person,
                    team: Some(TEAMS[team].to_string()),
                    status,
                });
                members[team].push(handle);
                index += 1;
            }
        }
        Generator {
            fingerprint_key,
            credentials_per_identity,
            now,
            earliest: add_days(now, -7 * 365),
            parties,
            members,
        }
    }

    /// Every party (teams first, then people).
    pub fn parties(&self) -> &[NewParty] {
        &self.parties
    }

    /// Identity number `index` with its credentials.
    pub fn identity(&self, index: u64) -> ImportIdentity {
        let mut rng = Rng::new(index);
        let system = rng.weighted(SYSTEMS);
        let tier = rng.weighted(TIERS);
        let environment = rng.weighted(ENVIRONMENTS);
        let state = rng.weighted(STATES);
        let team = rng.below(TEAMS.len());
        let verb = *rng.pick(VERBS);
        let noun = *rng.pick(NOUNS);
        let name = format!("{}-{verb}-{noun}-{index:07}", TEAMS[team]);
        let kind = identity_kind(system, &mut rng);

        let mut scope = Scope::default();
        scope.insert("system", TEAMS[team]).expect("valid scope");
        scope.insert("data", noun).expect("valid scope");
        if rng.percent(30) {
            let extra = *rng.pick(NOUNS);
            scope.insert("data", extra).expect("valid scope");
        }
        if tier == Tier::Critical {
            scope.insert("access", "admin").expect("valid scope");
        }

        let mut labels = BTreeMap::new();
        labels.insert("cost-center".to_string(), format!("cc-{}", 1000 + team * 10));
        labels.insert("managed-by".to_string(), rng.pick(TOOLS).to_string());
        if rng.percent(20) {
            labels.insert("ticket".to_string(), format!("OPS-{}", 1000 + rng.below(90_000)));
        }

        let team_members = &self.members[team];
        let owner = rng.below(team_members.len());
        let steward = (owner + 1 + rng.below(team_members.len() - 1)) % team_members.len();
        let backup_approvers = (0..rng.below(3))
            .map(|offset| {
                let other = &self.members[(team + 1 + offset) % TEAMS.len()];
                other[rng.below(other.len())].clone()
            })
            .collect();
        let roles = Roles {
            business_owner: (!rng.percent(3)).then(|| team_members[owner].clone()),
            technical_steward: (!rng.percent(5)).then(|| team_members[steward].clone()),
            backup_approvers,
            control_owner: matches!(tier, Tier::Critical | Tier::High).then(|| "team-iam".to_string()),
        };

        let drawn_created_at = rng.days(self.earliest, 6 * 365);
        let last_used_at = rng.percent(85).then(|| rng.days(add_days(self.now, -120), 119));
        let last_attested_at = rng.percent(40).then(|| rng.days(add_days(self.now, -365), 360));
        let expires_at = rng.percent(15).then(|| rng.days(self.now, 365));
        // Created no later than its other instants (the store refuses a use before it).
        let created_at = default_created(drawn_created_at, [last_used_at, last_attested_at, expires_at]);
        let last_rotated_at = rng.percent(60).then(|| rng.days(created_at, 30));
        let review_due = rng
            .percent(70)
            .then(|| utc_date(add_days(self.now, rng.below(540) as i64 - 180)));

        let mut credentials: Vec<NewCredential> = (0..self.credentials_per_identity)
            .map(|position| self.credential(system, position, created_at, &mut rng))
            .collect();
        // A revoked identity holds no usable credential (the store refuses one).
        if !state.is_live() {
            for credential in &mut credentials {
                if credential.status != CredentialStatus::Revoked {
                    credential.status = CredentialStatus::Revoked;
                    credential.last_used_at = None;
                }
            }
        }

        ImportIdentity {
            identity: NewIdentity {
                external_id: Some(external_id(system, &name, team, &mut rng)),
                name,
                kind,
                system: system.to_string(),
                environment: environment.to_string(),
                tier,
                state,
                purpose: Some(format!("{verb} {noun} for the {} team", TEAMS[team])),
                scope,
                labels,
                roles,
                created_at,
                expires_at,
                review_due,
                last_attested_at,
                last_used_at,
                last_rotated_at,
                provenance: Provenance {
                    source: "bench".to_string(),
                    observed_at: self.now,
                },
            },
            credentials,
        }
    }

    fn credential(&self, system: &str, position: usize, identity_created: Timestamp, rng: &mut Rng) -> NewCredential {
        let (kind, public_id, secret) = match system {
            "aws" => (
                CredentialKind::AccessKey,
                Some(format!("AKIA{}", rng.text(BASE32, 16))),
                rng.text(BASE62, 40),
            ),
            "gcp" => (
                CredentialKind::PrivateKey,
                Some(rng.text(HEX, 40)),
                format!("-----BEGIN PRIVATE KEY-----{}", rng.text(BASE62, 64)),
            ),
            "azure" | "okta" => (
                CredentialKind::ClientSecret,
                Some(format!(
                    "{}-{}-{}-{}-{}",
                    rng.text(HEX, 8),
                    rng.text(HEX, 4),
                    rng.text(HEX, 4),
                    rng.text(HEX, 4),
                    rng.text(HEX, 12)
                )),
                rng.text(BASE62, 40),
            ),
            "github" => {
                let secret = format!("ghp_{}", rng.text(BASE62, 36));
                (CredentialKind::Token, Some(secret[..8].to_string()), secret)
            }
            "slack" => {
                let secret = format!("xoxb-{}-{}", rng.text(HEX, 12), rng.text(BASE62, 24));
                (CredentialKind::Token, Some(secret[..10].to_string()), secret)
            }
            "kubernetes" => (
                CredentialKind::Token,
                Some(format!("sa-token-{}", rng.text(HEX, 5))),
                format!("eyJhbGciOiJSUzI1NiJ9.{}", rng.text(BASE62, 120)),
            ),
            "datadog" => {
                let secret = rng.text(HEX, 32);
                (CredentialKind::ApiKey, Some(secret[28..].to_string()), secret)
            }
            _ => (CredentialKind::Password, None, rng.text(BASE62, 32)),
        };
        let status = if position == 0 {
            if rng.percent(95) {
                CredentialStatus::Active
            } else {
                CredentialStatus::Inactive
            }
        } else {
            rng.weighted(&[
                (CredentialStatus::Superseded, 50),
                (CredentialStatus::Active, 40),
                (CredentialStatus::Expired, 10),
            ])
        };
        let last_used_at =
            (status == CredentialStatus::Active && rng.percent(80)).then(|| rng.days(add_days(self.now, -60), 59));
        let created_at = default_created(rng.days(identity_created, 365), [last_used_at]);
        NewCredential {
            kind,
            public_id,
            fingerprint: Some(Fingerprint::compute(&self.fingerprint_key, secret.as_bytes())),
            preview: Some(redact_secret(&secret)),
            status,
            created_at,
            expires_at: rng.percent(50).then(|| add_days(created_at, 365)),
            last_used_at,
            revoked_at: None,
        }
    }
}

fn identity_kind(system: &str, rng: &mut Rng) -> IdentityKind {
    use IdentityKind::*;
    let kinds: &[IdentityKind] = match system {
        "aws" | "gcp" => &[
            ServiceAccount,
            ServiceAccount,
            ServiceAccount,
            WorkloadIdentity,
            AiAgent,
        ],
        "azure" => &[ServiceAccount, OauthApp, WorkloadIdentity],
        "kubernetes" => &[ServiceAccount, ServiceAccount, WorkloadIdentity],
        "github" => &[DeployKey, PersonalAccessToken, OauthApp, Bot],
        "okta" => &[OauthApp, ApiKey],
        "slack" => &[Bot, OauthToken],
        "datadog" => &[ApiKey],
        _ => &[ServiceAccount],
    };
    *rng.pick(kinds)
}

fn external_id(system: &str, name: &str, team: usize, rng: &mut Rng) -> String {
    match system {
        "aws" => format!("arn:aws:iam::{:012}:user/{name}", 100_000_000_000 + team as u64 * 7_919),
        "gcp" => format!(
            "{}@{}-prod.iam.gserviceaccount.com",
            &name[..name.len().min(30)],
            TEAMS[team]
        ),
        "kubernetes" => format!("system:serviceaccount:{}:{name}", TEAMS[team]),
        "github" => format!("{}", 1_000_000 + rng.below(90_000_000)),
        "azure" => format!(
            "{}-{}-{}-{}-{}",
            rng.text(HEX, 8),
            rng.text(HEX, 4),
            rng.text(HEX, 4),
            rng.text(HEX, 4),
            rng.text(HEX, 12)
        ),
        "okta" => format!("0oa{}", rng.text(BASE62, 17)),
        "slack" => format!("B0{}", rng.text(BASE32, 9)),
        _ => format!("{system}:{name}"),
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator() -> Generator {
        Generator::new(
            FingerprintKey::from_bytes([1; 32]),
            2,
            "2026-11-27T10:00:00Z".parse().unwrap(),
        )
    }

    #[test]
    fn identities_are_valid_deterministic_and_unique() {
        let generator = generator();
        let handles: std::collections::HashSet<&str> =
            generator.parties().iter().map(|party| party.handle.as_str()).collect();
        assert_eq!(handles.len(), generator.parties().len());
        let mut names = std::collections::HashSet::new();
        for index in 0..5_000 {
            let record = generator.identity(index);
            record.identity.validate().unwrap();
            assert_eq!(record.credentials.len(), 2);
            for credential in &record.credentials {
                credential.validate().unwrap();
                // The store's own rules: no usable credential on a revoked identity, one
                // credential per public id.
                steward_core::lifecycle::check_credential_allowed(record.identity.state, credential.status).unwrap();
            }
            let public_ids: std::collections::HashSet<_> = record
                .credentials
                .iter()
                .filter_map(|credential| credential.public_id.as_ref())
                .collect();
            assert_eq!(
                public_ids.len(),
                record
                    .credentials
                    .iter()
                    .filter(|credential| credential.public_id.is_some())
                    .count()
            );
            for handle in record.identity.roles.handles() {
                assert!(handles.contains(handle), "{handle} is not a party");
            }
            let backups = &record.identity.roles.backup_approvers;
            assert!(backups.len() < 2 || backups[0] != backups[1]);
            assert!(names.insert((record.identity.system.clone(), record.identity.name.clone())));
        }
        assert_eq!(generator.identity(42).identity, generator.identity(42).identity);
        assert_eq!(
            generator.identity(42).credentials[1].fingerprint,
            generator.identity(42).credentials[1].fingerprint
        );
    }

    #[test]
    fn every_system_and_tier_occurs() {
        let generator = generator();
        let mut seen = std::collections::HashSet::new();
        for index in 0..2_000 {
            let identity = generator.identity(index).identity;
            seen.insert(identity.system);
            seen.insert(identity.tier.as_str().to_string());
        }
        assert_eq!(seen.len(), SYSTEMS.len() + TIERS.len());
    }
}
