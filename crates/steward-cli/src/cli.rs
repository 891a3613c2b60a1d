//! Command-line definitions (clap). Values are parsed into domain types here, so a bad
//! tier, date or scope is a usage error (exit 2) naming the flag.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use steward_core::{
    CredentialKind, CredentialStatus, IdentityKind, LifecycleState, LocationKind, PartyKind, PartyStatus, Tier,
};

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  the command was well-formed but could not be carried out (unknown identity, illegal
     transition, duplicate, database unreachable, audit verification failed)
  2  malformed command line or input file (bad flag or value, malformed import file)

Environment:
  STEWARD_DATA_DIR       data directory (same as --data-dir)
  STEWARD_DATABASE_URL   database URL (same as --database-url); PostgreSQL takes libpq's
                         sslmode (disable, allow, prefer [default], require, verify-ca,
                         verify-full) and sslrootcert (PEM file, or system, which needs
                         verify-full) as URL parameters, e.g.
                         postgres://u@db/steward?sslmode=verify-full&sslrootcert=ca.pem
  PGSSLMODE, PGSSLROOTCERT, PGCHANNELBINDING
                         the same, when the URL does not set them
  STEWARD_ACTOR          actor recorded in the audit trail (same as --actor)
  STEWARD_FINGERPRINT_KEY, STEWARD_AUDIT_KEY
                         installation keys as 64 hex digits, instead of the key files
                         (for PostgreSQL deployments without a shared data directory);
                         init then writes only keys/audit-verify.pub
  STEWARD_AUDIT_PUBLIC_KEY
                         the audit public key (64 hex digits), for `audit verify`";

/// steward: governance for non-human identities (service accounts, API keys, OAuth apps
/// and tokens, deploy keys, workload identities, bots and AI agents).
#[derive(Debug, Parser)]
#[command(name = "steward", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub globals: Globals,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// One JSON document.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
    /// YAML (export only).
    Yaml,
    /// SARIF 2.1.0 (scan only), for code-scanning tools.
    Sarif,
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub struct Globals {
    /// Data directory: keys and the SQLite database [default: the per-user data directory, e.g. ~/.local/share/steward]
    #[arg(long, global = true, env = "STEWARD_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: postgres://… selects PostgreSQL, with TLS as ?sslmode=…&sslrootcert=… say (see Environment) [default: SQLite at DATA_DIR/steward.db]
    #[arg(long, global = true, env = "STEWARD_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Who is acting, as recorded in the audit trail [default, and when blank: the OS user: $USER, else the
    /// process's user in /etc/passwd]
    #[arg(long, global = true, env = "STEWARD_ACTOR", value_name = "NAME")]
    pub actor: Option<String>,
    /// Output format [default: table; `export`: json]
    #[arg(short = 'o', long = "output", global = true, value_enum)]
    pub output: Option<OutputFormat>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data directory, the installation keys and the database
    Init(InitArgs),
    /// Build a realistic demo estate (fixed seed, fixed date) and print its summary
    Demo(DemoArgs),
    /// People and teams who own, steward and approve identities
    #[command(subcommand)]
    Party(PartyCommand),
    /// Non-human identities: register, list, show, change, move through the lifecycle
    #[command(subcommand)]
    Nhi(NhiCommand),
    /// Credentials (secrets, keys) of identities: only fingerprints are kept
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Import parties and identities from a YAML, JSON or CSV file, all or nothing
    Import(ImportArgs),
    /// Export the inventory in the import format (json, yaml or csv)
    Export(ExportArgs),
    /// The tamper-evident audit trail
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Find leaked secrets in files and directories (exit 0: none, 1: findings, 2: error)
    Scan(ScanArgs),
    /// Posture findings with severity, evidence, remediation, OWASP NHI and NIST CSF mapping
    Findings(FindingsArgs),
}

/// `steward findings`.
#[derive(Debug, Args)]
#[command(
    after_help = "-o csv has one row per live copy, with the JSON's fields: severity, rule, source, identity, \
                  identity_id, credential_id, public_id, credential_status, scanner_rule, preview, fingerprint, \
                  first_seen, last_seen, copies, location_kind, locator, location_first_seen, location_last_seen, \
                  remediation, owasp_nhi, nist_csf (ids separated by `;`). A CSV cell starting with =, +, -, @, a tab \
                  or a carriage return gets a leading ' so a spreadsheet does not run it as a formula."
)]
pub struct FindingsArgs {
    /// Only findings from this source [default: every source]
    #[arg(long, value_enum)]
    pub source: Option<FindingSource>,
    /// Only findings of at least this severity
    #[arg(long, value_enum)]
    pub min_severity: Option<SeverityArg>,
    /// Exit 1 when any finding is listed (for CI gates); errors then exit 2, as in scan
    #[arg(long)]
    pub fail_on_findings: bool,
}

/// Where findings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FindingSource {
    /// Live copies of secrets (`scan --record`, `credential locate`): leaked, revoked-but-referenced, unmanaged-secret
    Scan,
}

/// A severity, as a flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    /// Critical only
    Critical,
    /// High and above
    High,
    /// Medium and above
    Medium,
    /// Everything
    Low,
}

/// `steward scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files and directories to scan [default: .]; every git repository among or below
    /// them (a `.git` inside, or a bare `*.git` mirror) is also scanned through its history.
    /// A pipe or FIFO given (`/dev/stdin`, `<(…)`) is read as a stream. A path that does
    /// not exist, is a link to nothing or cannot be read exits 2; links below a path are
    /// not followed (counted in the summary)
    pub paths: Vec<PathBuf>,
    /// Also load every *.toml rule file of this directory (format: see the README); each
    /// rule must find its examples and none of its counter-examples, or the scan exits 2
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Honour .gitignore and .ignore files (by default everything is scanned); with
    /// --record, earlier copies are then not marked removed
    #[arg(long)]
    pub respect_gitignore: bool,
    /// Skip files, archive entries and blobs in git history larger than this many bytes (each a warning)
    #[arg(long, default_value_t = 256 * 1024 * 1024, value_name = "BYTES")]
    pub max_file_size: u64,
    /// Print the secrets themselves (local output only; never stored)
    #[arg(long)]
    pub show_secrets: bool,
    /// Exit 0 even when secrets are found
    #[arg(long)]
    pub exit_zero: bool,
    /// Scan only what is staged for the next commit (pre-commit hook), in the repository at PATH [default: .]
    #[arg(long)]
    pub staged: bool,
    /// Report only secrets not in this earlier `steward scan -o json` output (same installation key)
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Also record every copy in the inventory: known credentials get locations, revoked
    /// ones are flagged revoked-but-referenced, unknown ones are listed as unmanaged. A copy
    /// in an export is recorded at its message, issue field or comment, or notebook cell.
    /// Not for streams (a pipe or `/dev/stdin` names no place): save them to a file first
    #[arg(long)]
    pub record: bool,
    /// Do not scan the git history of repositories (only the files)
    #[arg(long)]
    pub no_history: bool,
    /// Memory for decoded git objects during a history scan; a pack too large for it is
    /// read object by object (slower), trees and commits beyond it are read again
    #[arg(long, default_value_t = steward_scan::source::DEFAULT_HISTORY_MEMORY >> 20, value_name = "MiB", value_parser = clap::value_parser!(u64).range(16..=1 << 20))]
    pub history_memory: u64,
    /// Scan archives (zip, tar, tar.gz, gz) as bytes instead of expanding them; with
    /// --record, earlier copies are then not marked removed
    #[arg(long)]
    pub no_archives: bool,
    /// Expand archives nested at most this deep (a .tar.gz is one level)
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub archive_depth: u32,
    /// Stop expanding one archive after this many bytes (zip-bomb guard)
    #[arg(long, default_value_t = 1 << 30, value_name = "BYTES")]
    pub archive_max_bytes: u64,
}

/// `steward init`.
#[derive(Debug, Args)]
pub struct InitArgs {}

/// `steward demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of identities to generate (at least 200)
    #[arg(long, default_value_t = 240, value_parser = clap::value_parser!(u32).range(200..=1_000_000))]
    pub identities: u32,
}

/// `steward party …`.
#[derive(Debug, Subcommand)]
pub enum PartyCommand {
    /// Add a person (e-mail) or team (team-NAME)
    Add(PartyAddArgs),
    /// List parties
    List,
    /// Show one party
    Show {
        /// Party handle
        handle: String,
    },
    /// Mark a party departed (or active again)
    Set(PartySetArgs),
}

/// `steward party add`.
#[derive(Debug, Args)]
pub struct PartyAddArgs {
    /// Handle: an e-mail address for a person, team-NAME for a team
    pub handle: String,
    /// Display name
    #[arg(long)]
    pub name: Option<String>,
    /// Team of a person (created as team-TEAM if missing)
    #[arg(long)]
    pub team: Option<String>,
    /// Kind [default: team for team-… handles, else person]
    #[arg(long, value_parser = parse_text::<PartyKind>)]
    pub kind: Option<PartyKind>,
    /// Status
    #[arg(long, default_value = "active", value_parser = parse_text::<PartyStatus>)]
    pub status: PartyStatus,
}

/// `steward party set`.
#[derive(Debug, Args)]
pub struct PartySetArgs {
    /// Party handle
    pub handle: String,
    /// New status: active or departed (a departure names, on stderr, how many live
    /// identities the party still holds a role on)
    #[arg(long, value_parser = parse_text::<PartyStatus>)]
    pub status: PartyStatus,
    /// Why (recorded in the audit trail)
    #[arg(long, value_parser = parse_reason)]
    pub reason: Option<String>,
}

/// `steward nhi …`.
#[derive(Debug, Subcommand)]
pub enum NhiCommand {
    /// Register an identity
    Add(Box<NhiAddArgs>),
    /// List identities (filters combine)
    List(NhiListArgs),
    /// Show an identity with its credentials and known copies
    Show {
        /// Identity: #id, id, name, or system/name (an ambiguous one is refused)
        identity: String,
    },
    /// Change descriptive fields, roles, dates or labels ("none" clears a field); an archived
    /// identity is final and refuses
    Set(Box<NhiSetArgs>),
    /// Move an identity through its lifecycle
    Transition(NhiTransitionArgs),
}

/// `steward nhi add`.
#[derive(Debug, Args)]
pub struct NhiAddArgs {
    /// Name, unique within its system
    #[arg(long)]
    pub name: String,
    /// Kind
    #[arg(long, value_parser = parse_text::<IdentityKind>, help = format!("Kind: {}", IdentityKind::accepted()))]
    pub kind: IdentityKind,
    /// Issuing system (aws, gcp, azure, github, kubernetes, postgres, redis, ldap, vault, …)
    #[arg(long)]
    pub system: String,
    /// Id of the identity in its system (ARN, unique id, app id…)
    #[arg(long)]
    pub external_id: Option<String>,
    /// Environment (prod, staging, dev, …)
    #[arg(long = "env", default_value = "prod")]
    pub environment: String,
    /// Privilege tier: critical, high, medium, low
    #[arg(long, value_parser = parse_text::<Tier>)]
    pub tier: Tier,
    /// Initial state: proposed (a request) or active (exists already)
    #[arg(long, default_value = "active", value_parser = parse_initial_state)]
    pub state: LifecycleState,
    /// Why it exists
    #[arg(long)]
    pub purpose: Option<String>,
    /// What it may touch: key=value,… (system, data, api, env, customer, workflow, …)
    #[arg(long, value_parser = parse_scope)]
    pub scope: Option<steward_core::Scope>,
    /// Business owner (party handle)
    #[arg(long)]
    pub owner: Option<String>,
    /// Technical steward (party handle)
    #[arg(long)]
    pub steward: Option<String>,
    /// Backup approver (party handle); repeat or separate with commas
    #[arg(long = "backup", value_delimiter = ',')]
    pub backups: Vec<String>,
    /// Control owner: the IAM/PAM team that enforces removal (party handle)
    #[arg(long)]
    pub control_owner: Option<String>,
    /// Created at its system (YYYY-MM-DD or RFC 3339) [default: now, or --expires if earlier]
    #[arg(long, value_parser = parse_instant)]
    pub created: Option<jiff::Timestamp>,
    /// Expiry (YYYY-MM-DD or RFC 3339)
    #[arg(long, value_parser = parse_instant)]
    pub expires: Option<jiff::Timestamp>,
    /// Next review (YYYY-MM-DD) [default: now + the tier's review interval]
    #[arg(long, value_parser = parse_date)]
    pub review_due: Option<jiff::civil::Date>,
    /// Label key=value; repeat for more
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

/// `steward nhi list`.
#[derive(Debug, Args)]
#[command(
    after_help = "With -o json, jsonl or csv, rows are written as the store hands them out (2,048 at a time, \
                  on SQLite and PostgreSQL), so memory does not grow with the listing; a table reads every row first. \
                  On PostgreSQL a listing of 2,048 or more identities also opens a second connection in the same \
                  snapshot for the backup approvers, and goes on over one until it is ready or if it cannot be had."
)]
pub struct NhiListArgs {
    /// Only this system
    #[arg(long)]
    pub system: Option<String>,
    /// Only this tier
    #[arg(long, value_parser = parse_text::<Tier>)]
    pub tier: Option<Tier>,
    /// Only this environment
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// Only this lifecycle state
    #[arg(long, value_parser = parse_text::<LifecycleState>)]
    pub state: Option<LifecycleState>,
    /// Only this kind
    #[arg(long, value_parser = parse_text::<IdentityKind>)]
    pub kind: Option<IdentityKind>,
    /// Only identities where this party holds any role
    #[arg(long)]
    pub party: Option<String>,
    /// At most this many
    #[arg(long)]
    pub limit: Option<u64>,
}

/// A value for `nhi set`: a new value, or "none" to clear the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update<T> {
    /// Clear the field.
    Clear,
    /// Set the field.
    Set(T),
}

impl<T> Update<T> {
    /// As the `Option` the domain patch uses (`None` clears).
    pub fn into_option(self) -> Option<T> {
        match self {
            Update::Clear => None,
            Update::Set(value) => Some(value),
        }
    }
}

/// `steward nhi set`.
#[derive(Debug, Args)]
pub struct NhiSetArgs {
    /// Identity: #id, id, name, or system/name (an ambiguous one is refused)
    pub identity: String,
    /// Purpose ("none" clears)
    #[arg(long, value_parser = parse_clearable_text)]
    pub purpose: Option<Update<String>>,
    /// Scope key=value,… (replaces the scope; "none" clears)
    #[arg(long, value_parser = parse_clearable_scope)]
    pub scope: Option<Update<steward_core::Scope>>,
    /// Tier
    #[arg(long, value_parser = parse_text::<Tier>)]
    pub tier: Option<Tier>,
    /// Environment
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// External id ("none" clears)
    #[arg(long, value_parser = parse_clearable_text)]
    pub external_id: Option<Update<String>>,
    /// Expiry (YYYY-MM-DD or RFC 3339; "none" clears)
    #[arg(long, value_parser = parse_clearable_instant)]
    pub expires: Option<Update<jiff::Timestamp>>,
    /// Next review (YYYY-MM-DD; "none" clears)
    #[arg(long, value_parser = parse_clearable_date)]
    pub review_due: Option<Update<jiff::civil::Date>>,
    /// Business owner ("none" clears)
    #[arg(long, value_parser = parse_clearable_text)]
    pub owner: Option<Update<String>>,
    /// Technical steward ("none" clears)
    #[arg(long, value_parser = parse_clearable_text)]
    pub steward: Option<Update<String>>,
    /// Backup approvers, comma-separated (replaces the list; "none" clears)
    #[arg(long = "backup", value_parser = parse_clearable_text)]
    pub backups: Option<Update<String>>,
    /// Control owner ("none" clears)
    #[arg(long, value_parser = parse_clearable_text)]
    pub control_owner: Option<Update<String>>,
    /// Set a label key=value; repeat for more
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Remove a label; repeat for more
    #[arg(long = "unset-label")]
    pub unset_labels: Vec<String>,
    /// Record that the owner re-attested the identity now; the next review is then due
    /// after the tier's review interval (90/180/365/365 days), unless --review-due is given
    #[arg(long)]
    pub attest: bool,
    /// Why (recorded in the audit trail)
    #[arg(long, value_parser = parse_reason)]
    pub reason: Option<String>,
}

/// `steward nhi transition`.
#[derive(Debug, Args)]
pub struct NhiTransitionArgs {
    /// Identity: #id, id, name, or system/name (an ambiguous one is refused)
    pub identity: String,
    /// Target state: proposed, active, suspended, offboarding, revoked, archived
    #[arg(long, value_parser = parse_text::<LifecycleState>)]
    pub to: LifecycleState,
    /// Why (required; recorded in the audit trail)
    #[arg(long, value_parser = parse_reason)]
    pub reason: String,
}

/// `steward credential …`.
#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Add a credential; with --secret-stdin only its fingerprint and a redacted preview are kept.
    /// A revoked identity takes none that is active or inactive; an archived one takes none
    Add(CredentialAddArgs),
    /// List an identity's credentials
    List {
        /// Identity: #id, id, name, or system/name (an ambiguous one is refused)
        identity: String,
    },
    /// Mark a credential revoked (after revoking it at its system)
    Revoke(CredentialRevokeArgs),
    /// Record a known copy of a credential's secret (read from stdin) at a place
    Locate(CredentialLocateArgs),
}

/// `steward credential add`.
#[derive(Debug, Args)]
pub struct CredentialAddArgs {
    /// Identity: #id, id, name, or system/name (an ambiguous one is refused)
    pub identity: String,
    /// Kind
    #[arg(long, default_value = "access_key", value_parser = parse_text::<CredentialKind>, help = format!("Kind: {}", CredentialKind::accepted()))]
    pub kind: CredentialKind,
    /// Public identifier (access key id, key id, token prefix…)
    #[arg(long)]
    pub public_id: Option<String>,
    /// Read the secret from standard input (never from a flag, which would leak into shell history)
    #[arg(long)]
    pub secret_stdin: bool,
    /// Created (YYYY-MM-DD or RFC 3339) [default: now, or --expires if earlier]
    #[arg(long, value_parser = parse_instant)]
    pub created: Option<jiff::Timestamp>,
    /// Expiry (YYYY-MM-DD or RFC 3339)
    #[arg(long, value_parser = parse_instant)]
    pub expires: Option<jiff::Timestamp>,
    /// Status [default: active, or expired when --expires is already past]
    #[arg(long, value_parser = parse_text::<CredentialStatus>)]
    pub status: Option<CredentialStatus>,
}

/// `steward credential revoke`.
#[derive(Debug, Args)]
pub struct CredentialRevokeArgs {
    /// Identity: #id, id, name, or system/name (an ambiguous one is refused)
    pub identity: String,
    /// Credential: its public id, or `#id` (a bare number is an id when no public id is it).
    /// A public id that several credentials share (in a store written before public ids
    /// had to be distinct) is refused as ambiguous
    pub credential: String,
    /// Why (required; recorded in the audit trail)
    #[arg(long, value_parser = parse_reason)]
    pub reason: String,
}

/// `steward credential locate`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("gone").args(["removed", "dismiss"])))]
pub struct CredentialLocateArgs {
    /// Kind of place
    #[arg(long, value_parser = parse_text::<LocationKind>, help = format!("Kind of place: {}", LocationKind::accepted()))]
    pub kind: LocationKind,
    /// Exact place: path:line, repo@commit:path:line, channel/ts, ticket#comment…
    #[arg(long)]
    pub at: String,
    /// Read the secret from standard input (required: the copy is matched by fingerprint)
    #[arg(long, required = true)]
    pub secret_stdin: bool,
    /// The copy at this place is gone (the file cleaned, the message deleted): mark it
    /// removed, so that it no longer blocks `archived`. Scans remove only copies they
    /// recorded; this is how one recorded by hand goes
    #[arg(long, requires = "reason")]
    pub removed: bool,
    /// The copy is still there but does not count any more: the secret is revoked and
    /// the copy cannot reasonably go (git history, which rewriting would cost more than it
    /// is worth), the risk accepted. It is marked removed, and scans that find it again
    /// leave it so; `credential locate` at the place without this flag makes it live again
    #[arg(long, requires = "reason", conflicts_with = "removed")]
    pub dismiss: bool,
    /// Why the copy is gone or dismissed (required with --removed or --dismiss; recorded
    /// in the audit trail)
    #[arg(long, requires = "gone", value_parser = parse_reason)]
    pub reason: Option<String>,
}

/// `steward import`.
#[derive(Debug, Args)]
#[command(
    after_help = "The file is read as it is imported (mapped; identities parsed a batch at a time), so memory does \
                  not grow with it; a record found bad part-way rolls the whole import back. YAML with anchors, \
                  flow-style identities, tabs or several documents is parsed whole instead. Do not edit the file in \
                  place while it is imported: that can give wrong records or an error. A file's `secrets` (known \
                  copies of secrets, as `export` writes them) are read with its header and imported after the \
                  identities; copies already in the store are kept as they are."
)]
pub struct ImportArgs {
    /// File to import (.yaml/.yml, .json or .csv); see the README for the format
    pub file: PathBuf,
    /// Format [default: from the file extension]
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,
    /// How the import is recorded in the audit trail
    #[arg(long, value_enum, default_value_t = AuditDetail::Auto)]
    pub audit_detail: AuditDetail,
    /// Import credentials without their fingerprints, and leave out the file's secrets:
    /// for a file exported under another installation's fingerprint key (its
    /// `fingerprint_key` differs from this one's), whose fingerprints would never match.
    /// Scan again with --record to find the copies under this key
    #[arg(long)]
    pub drop_fingerprints: bool,
}

/// How an import is recorded in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditDetail {
    /// `record` up to 10,000 identities, `summary` above
    Auto,
    /// One `identity.create` event per identity with the whole record
    Record,
    /// One `identity.import` event per 4,096 identities: counts, id ranges and the SHA-256
    /// of the records (for bulk loads; `audit log --subject` still finds it)
    Summary,
}

/// Above this many identities, `--audit-detail auto` records an import as summaries.
pub const AUTO_SUMMARY_ABOVE: usize = 10_000;

/// `steward export`.
#[derive(Debug, Args)]
#[command(
    after_help = "Writes `-o json` (the default), `-o yaml` or `-o csv` to stdout, identities by system and name, \
                  a batch of 2,048 at a time from one snapshot of the store, so memory does not grow with the \
                  identities. JSON and YAML end with `secrets`: every secret a scan recorded or a copy was recorded \
                  of, with its copies (fingerprints and places, never the secret), so an import elsewhere keeps \
                  them; those are held in memory until the end (about 1.4 KB a copy). `fingerprint_key` names the \
                  key the fingerprints were made under, or is `unknown` when it is not at hand here. \
                  On PostgreSQL an export of 2,048 or more identities also opens a second connection in the same \
                  snapshot for the backup approvers and credentials, and goes on over one until it is ready or if \
                  it cannot be had."
)]
pub struct ExportArgs {}

/// Inventory file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    /// YAML document
    Yaml,
    /// JSON document
    Json,
    /// CSV, one identity per row
    Csv,
}

/// `steward audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Show audit events, oldest first
    Log(AuditLogArgs),
    /// Verify the hash chain and the signed checkpoints; exits 1 naming the first bad event
    Verify(AuditVerifyArgs),
}

/// `steward audit log`.
#[derive(Debug, Args)]
pub struct AuditLogArgs {
    /// Only events about this identity (id, name or system/name)
    #[arg(long)]
    pub subject: Option<String>,
    /// Only events about this party (handle)
    #[arg(long, conflicts_with = "subject")]
    pub party: Option<String>,
    /// Only events from this sequence number on
    #[arg(long)]
    pub since: Option<i64>,
    /// Only the newest N events
    #[arg(long)]
    pub limit: Option<u64>,
}

/// `steward audit verify`.
#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// Verify with this public key file (hex) instead of the data directory's
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
}

fn parse_text<T: std::str::FromStr<Err = steward_core::DomainError>>(text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|error: steward_core::DomainError| error.to_string())
}

/// A reason for the audit trail: some text, at most 2,000 characters, without the spaces
/// around it.
fn parse_reason(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a reason needs some text".into());
    }
    if text.chars().count() > 2000 {
        return Err("a reason is at most 2,000 characters".into());
    }
    Ok(text.to_string())
}

fn parse_initial_state(text: &str) -> Result<LifecycleState, String> {
    match parse_text::<LifecycleState>(text)? {
        state @ (LifecycleState::Proposed | LifecycleState::Active) => Ok(state),
        other => Err(format!("a new identity starts proposed or active, not {other}")),
    }
}

fn parse_scope(text: &str) -> Result<steward_core::Scope, String> {
    steward_core::Scope::parse(text).map_err(|error| error.to_string())
}

fn parse_instant(text: &str) -> Result<jiff::Timestamp, String> {
    steward_core::time::parse_instant(text)
}

fn parse_date(text: &str) -> Result<jiff::civil::Date, String> {
    steward_core::time::parse_date(text)
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not key=value"))?;
    if key.is_empty() {
        return Err(format!("'{text}' has an empty key"));
    }
    Ok((key.to_string(), value.to_string()))
}

fn clearable<T>(text: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Update<T>, String> {
    if text == "none" {
        Ok(Update::Clear)
    } else {
        parse(text).map(Update::Set)
    }
}

fn parse_clearable_text(text: &str) -> Result<Update<String>, String> {
    clearable(text, |text| Ok(text.to_string()))
}

fn parse_clearable_scope(text: &str) -> Result<Update<steward_core::Scope>, String> {
    clearable(text, parse_scope)
}

fn parse_clearable_instant(text: &str) -> Result<Update<jiff::Timestamp>, String> {
    clearable(text, parse_instant)
}

fn parse_clearable_date(text: &str) -> Result<Update<jiff::civil::Date>, String> {
    clearable(text, parse_date)
}
