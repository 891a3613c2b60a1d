//! The demo estate: a realistic, deterministic inventory (fixed seed, fixed date) with
//! examples of every problem in the findings catalogue, so a new user sees steward's
//! value in a minute and later features have data to work on.
//!
//! Identities that carry a planted problem are labelled `demo.problem=<rule id>`; the
//! rest are compliant with the default policy. Secrets are generated, fingerprinted under
//! the installation key and dropped, like real ones.

use std::collections::BTreeMap;
use steward_core::time::default_created;
use steward_core::{
    CredentialKind, CredentialStatus, FindingRule, Fingerprint, FingerprintKey, IdentityKind, LifecycleState,
    LocationKind, NewCredential, NewIdentity, NewParty, PartyKind, PartyStatus, Policy, Provenance, Roles, Scope, Tier,
    redact_secret,
};
use steward_store::{Actor, ImportAudit, ImportIdentity, Store, StoreError};

/// The demo's fixed "now".
pub const DEMO_NOW: &str = "2026-11-01T09:00:00Z";

/// Every rule of the findings catalogue (DESIGN §3), each planted in the demo, in catalogue
/// order: all of `FindingRule` but `unmanaged-secret`, which only a scan can raise.
fn planted_problems() -> Vec<&'static str> {
    FindingRule::ALL
        .iter()
        .filter(|rule| **rule != FindingRule::UnmanagedSecret)
        .map(|rule| rule.as_str())
        .collect()
}

/// Examples planted per rule.
const EXAMPLES_PER_PROBLEM: usize = 4;

/// What the demo built.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DemoSummary {
    /// Parties created.
    pub parties: u64,
    /// Departed parties.
    pub departed_parties: u64,
    /// Identities created.
    pub identities: u64,
    /// Credentials created.
    pub credentials: u64,
    /// Known copies (locations) recorded.
    pub locations: u64,
    /// Identities per system.
    pub by_system: BTreeMap<String, u64>,
    /// Identities per lifecycle state.
    pub by_state: BTreeMap<String, u64>,
    /// Identities per tier.
    pub by_tier: BTreeMap<String, u64>,
    /// Identities per planted problem.
    pub planted_problems: BTreeMap<String, u64>,
    /// Audit events written.
    pub audit_events: u64,
}

/// SplitMix64: a tiny deterministic generator (no dependency, same sequence everywhere).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn text(&mut self, alphabet: &[u8], length: usize) -> String {
        (0..length).map(|_| *self.pick(alphabet) as char).collect()
    }
}

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";

const TEAMS: &[&str] = &[
    "payments", "platform", "data", "growth", "support", "security", "ml", "identity",
];

const PEOPLE: &[(&str, &str, &str)] = &[
    ("alice.ng", "Alice Ng", "payments"),
    ("bruno.diaz", "Bruno Díaz", "payments"),
    ("chen.wei", "Chen Wei", "platform"),
    ("dana.okafor", "Dana Okafor", "platform"),
    ("emil.larsen", "Emil Larsen", "data"),
    ("farah.haddad", "Farah Haddad", "data"),
    ("gita.rao", "Gita Rao", "growth"),
    ("hugo.moreau", "Hugo Moreau", "growth"),
    ("ines.silva", "Inês Silva", "support"),
    ("jonas.becker", "Jonas Becker", "support"),
    ("kemi.adeyemi", "Kemi Adeyemi", "security"),
    ("liam.oconnor", "Liam O'Connor", "security"),
    ("mina.park", "Mina Park", "ml"),
    ("noah.cohen", "Noah Cohen", "ml"),
    ("olga.petrova", "Olga Petrova", "identity"),
    ("pablo.ruiz", "Pablo Ruiz", "identity"),
    ("qi.zhang", "Qi Zhang", "platform"),
    ("rosa.mendes", "Rosa Mendes", "payments"),
    ("sam.taylor", "Sam Taylor", "data"),
    ("tara.singh", "Tara Singh", "growth"),
    ("uma.iyer", "Uma Iyer", "ml"),
    ("victor.huang", "Victor Huang", "platform"),
    ("wanda.kowalski", "Wanda Kowalski", "support"),
    ("yusuf.demir", "Yusuf Demir", "security"),
];

/// People who left; owners among them raise `owner-departed`.
const DEPARTED: &[&str] = &["dana.okafor", "hugo.moreau", "jonas.becker", "sam.taylor"];

fn email(user: &str) -> String {
    format!("{user}@example.com")
}

/// A kind of identity a system issues, with naming and credential conventions.
struct Template {
    system: &'static str,
    kind: IdentityKind,
    credential: Option<CredentialKind>,
    workloads: &'static [&'static str],
    data: &'static [&'static str],
}

const TEMPLATES: &[Template] = &[
    Template {
        system: "aws",
        kind: IdentityKind::ServiceAccount,
        credential: Some(CredentialKind::AccessKey),
        workloads: &[
            "billing-export",
            "s3-backup",
            "cost-report",
            "log-shipper",
            "terraform-ci",
            "invoice-sync",
        ],
        data: &["invoices", "backups", "logs", "billing"],
    },
    Template {
        system: "aws",
        kind: IdentityKind::WorkloadIdentity,
        credential: None,
        workloads: &["eks-orders", "lambda-thumbnails", "ecs-payments", "batch-etl"],
        data: &["orders", "images", "payments", "warehouse"],
    },
    Template {
        system: "gcp",
        kind: IdentityKind::ServiceAccount,
        credential: Some(CredentialKind::PrivateKey),
        workloads: &["bigquery-loader", "gcs-archiver", "vertex-trainer", "pubsub-bridge"],
        data: &["analytics", "archives", "models", "events"],
    },
    Template {
        system: "gcp",
        kind: IdentityKind::ApiKey,
        credential: Some(CredentialKind::ApiKey),
        workloads: &["maps-frontend", "translate-support"],
        data: &["geodata", "tickets"],
    },
    Template {
        system: "azure",
        kind: IdentityKind::ServiceAccount,
        credential: Some(CredentialKind::ClientSecret),
        workloads: &["ad-sync", "blob-reporting", "graph-mailer"],
        data: &["directory", "reports", "mail"],
    },
    Template {
        system: "kubernetes",
        kind: IdentityKind::ServiceAccount,
        credential: Some(CredentialKind::Token),
        workloads: &[
            "argo-deployer",
            "prometheus",
            "cert-manager",
            "external-dns",
            "ingress-controller",
        ],
        data: &["cluster", "metrics", "certificates", "dns"],
    },
    Template {
        system: "github",
        kind: IdentityKind::DeployKey,
        credential: Some(CredentialKind::SshKey),
        workloads: &["infra-repo", "website-repo", "charts-repo"],
        data: &["source"],
    },
    Template {
        system: "github",
        kind: IdentityKind::PersonalAccessToken,
        credential: Some(CredentialKind::Token),
        workloads: &["release-bot", "dependabot-sync", "docs-publisher"],
        data: &["source", "packages"],
    },
    Template {
        system: "github",
        kind: IdentityKind::Bot,
        credential: Some(CredentialKind::PrivateKey),
        workloads: &["merge-queue-app", "changelog-app"],
        data: &["source"],
    },
    Template {
        system: "postgres",
        kind: IdentityKind::ServiceAccount,
        credential: Some(CredentialKind::Password),
        workloads: &["orders-api", "reporting-ro", "migrations", "replication"],
        data: &["orders", "customers", "payments"],
    },
    Template {
        system: "redis",
        kind: IdentityKind::ServiceAccount,
        credential: Some(CredentialKind::Password),
        workloads: &["session-cache", "rate-limiter", "queue-worker"],
        data: &["sessions", "counters", "jobs"],
    },
    Template {
        system: "ldap",
        kind: IdentityKind::ServiceAccount,
        credential: Some(CredentialKind::Password),
        workloads: &["jenkins-bind", "vpn-bind", "wiki-bind"],
        data: &["directory"],
    },
    Template {
        system: "vault",
        kind: IdentityKind::ServiceAccount,
        credential: Some(CredentialKind::Token),
        workloads: &["approle-payments", "approle-ci", "pki-issuer"],
        data: &["secrets", "certificates"],
    },
    Template {
        system: "slack",
        kind: IdentityKind::Bot,
        credential: Some(CredentialKind::Token),
        workloads: &["incident-bot", "deploy-notifier", "standup-bot"],
        data: &["messages"],
    },
    Template {
        system: "openai",
        kind: IdentityKind::AiAgent,
        credential: Some(CredentialKind::ApiKey),
        workloads: &["support-triage-agent", "code-review-agent", "sql-assistant"],
        data: &["tickets", "source", "warehouse"],
    },
];

/// Builds the demo into an empty store. `identities` is at least 200.
pub fn build_demo(store: &mut dyn Store, key: &FingerprintKey, identities: u32) -> Result<DemoSummary, StoreError> {
    let now: jiff::Timestamp = DEMO_NOW.parse().expect("valid demo date");
    let actor = Actor {
        name: "demo".into(),
        now,
    };
    let days_ago = |days: i64| steward_core::time::add_days(now, -days);
    let mut random = Random(0x0005_EED0_F57E_3A2D);
    let policy = Policy::default();

    let mut parties: Vec<NewParty> = TEAMS
        .iter()
        .map(|team| NewParty {
            display_name: Some(format!("{team} team")),
            kind: PartyKind::Team,
            ..NewParty::from_handle(&format!("team-{team}"))
        })
        .collect();
    for (user, name, team) in PEOPLE {
        parties.push(NewParty {
            display_name: Some(name.to_string()),
            team: Some(team.to_string()),
            ..NewParty::from_handle(&email(user))
        });
    }
    let active_people: Vec<&(&str, &str, &str)> =
        PEOPLE.iter().filter(|(user, _, _)| !DEPARTED.contains(user)).collect();

    let planted = planted_problems();
    let mut records = Vec::with_capacity(identities as usize);
    // Secrets kept in memory only long enough to plant shared copies and leaks.
    let mut secrets: Vec<Vec<String>> = Vec::new();
    let mut problems: Vec<Option<&str>> = Vec::new();
    let mut summary = DemoSummary::default();
    let mut name_counts: BTreeMap<String, u32> = BTreeMap::new();

    for index in 0..identities as usize {
        let template = &TEMPLATES[index % TEMPLATES.len()];
        let problem = (index < planted.len() * EXAMPLES_PER_PROBLEM).then(|| planted[index % planted.len()]);
        let workload = *random.pick(template.workloads);
        let environment = *random.pick(&["prod", "prod", "prod", "staging", "dev"]);
        let base = format!("{workload}-{environment}");
        let count = name_counts.entry(format!("{}/{base}", template.system)).or_default();
        *count += 1;
        let name = if *count == 1 { base } else { format!("{base}-{count}") };
        let tier = *random.pick(&[
            Tier::Critical,
            Tier::High,
            Tier::High,
            Tier::Medium,
            Tier::Medium,
            Tier::Low,
        ]);
        let (user, _, team) = **random.pick(&active_people);
        let backup = loop {
            let (candidate, _, _) = **random.pick(&active_people);
            if candidate != user {
                break email(candidate);
            }
        };
        let data = *random.pick(template.data);
        let mut scope = Scope::default();
        scope
            .insert("system", workload.split('-').next().unwrap_or(workload))
            .expect("valid scope");
        scope.insert("data", data).expect("valid scope");
        scope.insert("env", environment).expect("valid scope");
        let created_days = 30 + random.below(900) as i64;
        let tier_policy = policy.for_tier(tier);
        let mut identity = NewIdentity {
            name,
            kind: template.kind,
            system: template.system.to_string(),
            external_id: Some(external_id(template, workload, &mut random)),
            environment: environment.to_string(),
            tier,
            state: LifecycleState::Active,
            purpose: Some(format!("{} for the {team} team ({data})", workload.replace('-', " "))),
            scope,
            labels: BTreeMap::from([("cost-centre".to_string(), format!("cc-{}", 100 + random.below(40)))]),
            roles: Roles {
                business_owner: Some(email(user)),
                technical_steward: Some(format!("team-{team}")),
                backup_approvers: vec![backup],
                control_owner: Some("team-identity".to_string()),
            },
            created_at: days_ago(created_days),
            expires_at: None,
            review_due: Some(steward_core::time::utc_date(days_ago(
                -(10 + random.below(tier_policy.review_interval_days as u64 - 10) as i64),
            ))),
            last_attested_at: Some(days_ago(random.below(60) as i64)),
            last_used_at: Some(days_ago(random.below(5) as i64)),
            last_rotated_at: None,
            provenance: Provenance {
                source: "demo".into(),
                observed_at: now,
            },
        };
        // A compliant credential: younger than the tier's cadence, expiring within its max TTL.
        let mut credentials = Vec::new();
        let mut identity_secrets = Vec::new();
        if let Some(kind) = template.credential {
            let age = random.below(tier_policy.rotation_cadence_days as u64 / 2) as i64;
            let secret = secret_for(kind, &mut random);
            credentials.push(NewCredential {
                kind,
                public_id: public_id(kind, &mut random),
                fingerprint: Some(Fingerprint::compute(key, secret.as_bytes())),
                preview: Some(redact_secret(&secret)),
                status: CredentialStatus::Active,
                created_at: days_ago(age),
                expires_at: Some(days_ago(age - tier_policy.rotation_cadence_days as i64)),
                last_used_at: identity.last_used_at,
                revoked_at: None,
            });
            identity.last_rotated_at = Some(days_ago(age));
            identity_secrets.push(secret);
        }
        if let Some(problem) = problem {
            identity.labels.insert("demo.problem".into(), problem.into());
            plant(
                problem,
                &mut identity,
                &mut credentials,
                &mut identity_secrets,
                &mut random,
                key,
                now,
            );
        }
        if problem.is_none() && index % 25 == 5 {
            // A request waiting for approval: no credential issued yet.
            identity.state = LifecycleState::Proposed;
            identity.last_used_at = None;
            identity.last_rotated_at = None;
            credentials.clear();
            identity_secrets.clear();
        }
        // A planted problem may date a use, attestation or rotation before the drawn
        // creation time: each record was created no later than its other instants.
        identity.created_at = default_created(
            identity.created_at,
            [
                identity.expires_at,
                identity.last_attested_at,
                identity.last_used_at,
                identity.last_rotated_at,
            ],
        );
        for credential in &mut credentials {
            credential.created_at =
                default_created(credential.created_at, [credential.expires_at, credential.last_used_at]);
        }
        *summary.by_system.entry(identity.system.clone()).or_default() += 1;
        *summary.by_tier.entry(identity.tier.to_string()).or_default() += 1;
        summary.credentials += credentials.len() as u64;
        records.push(ImportIdentity { identity, credentials });
        secrets.push(identity_secrets);
        problems.push(problem);
    }

    // Shared and cross-environment secrets: consecutive examples of the rule share one.
    for rule in ["shared", "cross-environment"] {
        let members: Vec<usize> = (0..records.len())
            .filter(|index| problems[*index] == Some(rule))
            .collect();
        for pair in members.chunks(2) {
            if let [first, second] = pair {
                let shared = secrets[*first]
                    .first()
                    .cloned()
                    .unwrap_or_else(|| secret_for(CredentialKind::ApiKey, &mut random));
                if rule == "cross-environment" {
                    records[*first].identity.environment = "prod".into();
                    records[*second].identity.environment = "staging".into();
                }
                for member in [*first, *second] {
                    let credential = NewCredential {
                        kind: CredentialKind::ApiKey,
                        public_id: None,
                        fingerprint: Some(Fingerprint::compute(key, shared.as_bytes())),
                        preview: Some(redact_secret(&shared)),
                        status: CredentialStatus::Active,
                        created_at: days_ago(40),
                        expires_at: Some(days_ago(-50)),
                        last_used_at: Some(days_ago(1)),
                        revoked_at: None,
                    };
                    if member != *first || records[member].credentials.is_empty() {
                        records[member].credentials.push(credential);
                        summary.credentials += 1;
                    }
                    secrets[member].push(shared.clone());
                }
            }
        }
    }

    let import_summary = store.import(
        &actor,
        "demo",
        ImportAudit::PerRecord,
        &parties,
        &mut records.clone().into_iter().map(Ok),
    )?;
    summary.parties = import_summary.parties;
    summary.identities = import_summary.identities;

    for user in DEPARTED {
        store.set_party_status(&actor, &email(user), PartyStatus::Departed, Some("left the company"))?;
        summary.departed_parties += 1;
    }

    // Copies of secrets: leaks in code, chat and tickets; a revoked key still referenced.
    let places = [
        (
            LocationKind::RepositoryFile,
            "git@example.com:acme/monolith.git@3f2a9c1:config/settings.py:42",
        ),
        (LocationKind::ChatMessage, "slack:#deployments/1730901234.000200"),
        (LocationKind::Ticket, "jira:OPS-1432#comment-99812"),
        (LocationKind::Document, "confluence:Runbooks/Payments+Failover"),
    ];
    for (index, record) in records.iter().enumerate() {
        let Some(problem) = problems[index] else { continue };
        let reference = format!("{}/{}", record.identity.system, record.identity.name);
        match problem {
            "leaked" | "revoked-but-referenced" => {
                let Some(secret) = secrets[index].first() else { continue };
                let fingerprint = Fingerprint::compute(key, secret.as_bytes());
                let (kind, locator) = places[index % places.len()];
                store.record_location(&actor, &fingerprint, kind, locator)?;
                summary.locations += 1;
                if problem == "revoked-but-referenced"
                    && let Some(credential) = store.credentials(&reference)?.credentials.first()
                {
                    store.revoke_credential(
                        &actor,
                        &reference,
                        &format!("#{}", credential.id.0),
                        "rotated after incident INC-2291",
                    )?;
                }
            }
            _ => {}
        }
    }

    // Lifecycle: a spread of states among compliant identities, through real transitions.
    for (index, record) in records.iter().enumerate() {
        if problems[index].is_some() {
            continue;
        }
        let reference = format!("{}/{}", record.identity.system, record.identity.name);
        let path: &[(LifecycleState, &str)] = match index % 25 {
            0 => &[(LifecycleState::Suspended, "suspected misuse, INC-2307")],
            1 => &[(LifecycleState::Offboarding, "system retired: legacy billing cut over")],
            2 | 3 => &[
                (LifecycleState::Offboarding, "project closed"),
                (LifecycleState::Revoked, "credentials revoked at the provider"),
            ],
            4 => &[
                (LifecycleState::Offboarding, "vendor exit"),
                (LifecycleState::Revoked, "credentials revoked at the provider"),
                (LifecycleState::Archived, "no copies or use remain"),
            ],
            _ => &[],
        };
        for (state, reason) in path {
            if *state == LifecycleState::Revoked {
                for credential in store.credentials(&reference)?.credentials {
                    store.revoke_credential(&actor, &reference, &format!("#{}", credential.id.0), reason)?;
                }
            }
            store.transition_identity(&actor, &reference, *state, reason)?;
        }
    }

    for identity in store.identities(&Default::default())? {
        *summary.by_state.entry(identity.state.to_string()).or_default() += 1;
        if let Some(problem) = identity.labels.get("demo.problem") {
            *summary.planted_problems.entry(problem.clone()).or_default() += 1;
        }
    }
    let mut events = 0;
    store.for_each_event(&Default::default(), &mut |_| {
        events += 1;
        Ok(())
    })?;
    summary.audit_events = events;
    Ok(summary)
}

fn external_id(template: &Template, workload: &str, random: &mut Random) -> String {
    match (template.system, template.kind) {
        ("aws", IdentityKind::WorkloadIdentity) => format!("arn:aws:iam::4815162342:role/{workload}"),
        ("aws", _) => format!("AIDA{}", random.text(UPPER_DIGITS, 17)),
        ("gcp", IdentityKind::ServiceAccount) => format!("{workload}@acme-prod.iam.gserviceaccount.com"),
        ("kubernetes", _) => format!("system:serviceaccount:{workload}:{workload}"),
        ("azure", _) => format!(
            "{}-{}-4{}",
            random.text(HEX, 8),
            random.text(HEX, 4),
            random.text(HEX, 3)
        ),
        _ => format!("{}-{}", template.system, random.text(HEX, 12)),
    }
}

fn public_id(kind: CredentialKind, random: &mut Random) -> Option<String> {
    match kind {
        CredentialKind::AccessKey => Some(format!("AKIA{}", random.text(UPPER_DIGITS, 16))),
        CredentialKind::PrivateKey | CredentialKind::SshKey => Some(random.text(HEX, 40)),
        CredentialKind::ClientSecret => Some(format!("{}-{}", random.text(HEX, 8), random.text(HEX, 4))),
        _ => None,
    }
}

fn secret_for(kind: CredentialKind, random: &mut Random) -> String {
    match kind {
        CredentialKind::AccessKey => random.text(ALNUM, 40),
        CredentialKind::Token => format!("demo_{}", random.text(ALNUM, 36)),
        CredentialKind::Password => random.text(ALNUM, 24),
        _ => random.text(ALNUM, 48),
    }
}

fn plant(
    problem: &str,
    identity: &mut NewIdentity,
    credentials: &mut Vec<NewCredential>,
    secrets: &mut Vec<String>,
    random: &mut Random,
    key: &FingerprintKey,
    now: jiff::Timestamp,
) {
    let days_ago = |days: i64| steward_core::time::add_days(now, -days);
    let mut ensure_credential = |credentials: &mut Vec<NewCredential>, secrets: &mut Vec<String>| {
        if credentials.is_empty() {
            let secret = secret_for(CredentialKind::ApiKey, random);
            credentials.push(NewCredential {
                kind: CredentialKind::ApiKey,
                public_id: None,
                fingerprint: Some(Fingerprint::compute(key, secret.as_bytes())),
                preview: Some(redact_secret(&secret)),
                status: CredentialStatus::Active,
                created_at: days_ago(20),
                expires_at: Some(days_ago(-20)),
                last_used_at: Some(days_ago(1)),
                revoked_at: None,
            });
            secrets.push(secret);
        }
    };
    match problem {
        "no-owner" => {
            identity.roles.business_owner = None;
            identity.roles.technical_steward = None;
        }
        "owner-departed" => {
            identity.roles.business_owner = Some(email(DEPARTED[random.below(DEPARTED.len() as u64) as usize]))
        }
        "no-backup-approver" => {
            identity.tier = Tier::Critical;
            identity.roles.backup_approvers.clear();
        }
        "undocumented" => {
            identity.purpose = None;
            identity.scope = Scope::default();
        }
        "rotation-overdue" => {
            ensure_credential(credentials, secrets);
            identity.tier = Tier::Medium;
            let credential = &mut credentials[0];
            credential.created_at = days_ago(250);
            credential.expires_at = Some(days_ago(-50));
            identity.last_rotated_at = Some(days_ago(250));
        }
        "long-lived" => {
            ensure_credential(credentials, secrets);
            credentials[0].expires_at = None;
        }
        "review-overdue" => {
            identity.review_due = Some(steward_core::time::utc_date(days_ago(60)));
            identity.last_attested_at = Some(days_ago(420));
        }
        "dormant" => {
            identity.last_used_at = Some(days_ago(200));
            for credential in credentials.iter_mut() {
                credential.last_used_at = Some(days_ago(200));
            }
        }
        "never-used" => {
            identity.created_at = days_ago(300);
            identity.last_used_at = None;
            for credential in credentials.iter_mut() {
                credential.last_used_at = None;
            }
        }
        "shared" | "cross-environment" | "leaked" | "revoked-but-referenced" => ensure_credential(credentials, secrets),
        "over-privileged" => {
            identity.labels.insert("grants".into(), "AdministratorAccess".into());
            identity.labels.insert("grants.unused_days".into(), "180".into());
        }
        "human-use" => {
            identity.labels.insert(
                "usage.interactive_login".into(),
                "console, Mozilla/5.0 (Macintosh)".into(),
            );
        }
        "customer-key-orphaned" => {
            identity.kind = IdentityKind::ApiKey;
            identity.system = "customer-api".into();
            identity.scope =
                Scope::parse("customer=globex,workflow=invoice-export,data=invoices").expect("valid scope");
            identity
                .labels
                .insert("customer.contract_end".into(), "2026-06-30".into());
            ensure_credential(credentials, secrets);
        }
        "third-party-unreviewed" => {
            identity.kind = IdentityKind::OauthApp;
            identity.labels.insert("vendor".into(), "quicksheets.example".into());
            identity.roles.business_owner = None;
            identity.review_due = None;
            identity.last_attested_at = None;
        }
        "anomalous-use" => {
            identity
                .labels
                .insert("usage.anomaly".into(), "calls from a new ASN at 03:12 UTC".into());
        }
        _ => {}
    }
}
