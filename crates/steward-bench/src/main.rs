//! `steward-bench`: measures steward against its speed targets. It generates a large,
//! realistic, deterministic inventory (by default 1,000,000 identities with 2 credentials
//! each, owned by a few hundred people and teams), streams it through
//! [`steward_store::Store::import`] without holding it in memory, then verifies the
//! whole audit trail with [`steward_store::Store::verify_audit`], printing throughput
//! and peak memory. `scripts/bench` drives it on SQLite and PostgreSQL and times the
//! `steward` CLI over the resulting stores.
//!
//! Pointed at a data directory made by `steward init`, it uses that installation's keys,
//! so the CLI can verify the trail afterwards.

mod generate;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use generate::Generator;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use steward_core::FingerprintKey;
use steward_core::audit::SigningKey;
use steward_store::{Actor, ImportAudit, ImportIdentity, Store, redact_url};

/// Generated identities are handed from the generator thread in batches of this size.
const BATCH: usize = 512;
/// At most this many batches wait between generator and store.
const QUEUE: usize = 8;

#[derive(Parser)]
#[command(
    name = "steward-bench",
    version,
    about = "Load generator and timer for steward's speed targets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Imports a synthetic inventory through the store API, then verifies the audit trail.
    Import(ImportArgs),
    /// Verifies the audit trail of an existing store and reports events/s.
    Verify(StoreArgs),
    /// Only generates the inventory (no store), to show what generation alone costs.
    Generate(GenerateArgs),
}

#[derive(Args)]
struct StoreArgs {
    /// A data directory made by `steward init`: its keys are used, and its steward.db
    /// unless --database-url is given. Without it, fixed built-in keys are used.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// SQLite path or postgres:// URL.
    #[arg(long, env = "STEWARD_DATABASE_URL")]
    database_url: Option<String>,
    /// Append `key=value` result lines to this file (for scripts).
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(Args)]
struct GenerateArgs {
    /// Number of identities.
    #[arg(long, default_value_t = 1_000_000)]
    identities: u64,
    /// Credentials of each identity.
    #[arg(long, default_value_t = 2)]
    credentials_per_identity: usize,
}

#[derive(Args)]
struct ImportArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    generate: GenerateArgs,
    /// Generate in the importing thread instead of a separate generator thread.
    #[arg(long)]
    inline: bool,
    /// Skip the audit verification after the import.
    #[arg(long)]
    no_verify: bool,
    /// Audit detail: `summary` (one event per chunk of 4,096 identities, what `steward
    /// import` does above 10,000 identities) or `record` (one event per identity).
    #[arg(long, value_enum, default_value_t = AuditDetail::Summary)]
    audit_detail: AuditDetail,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AuditDetail {
    Summary,
    Record,
}

/// The fixed clock of every run, so the data are the same each time.
const NOW: &str = "2026-11-27T10:00:00Z";

/// The same allocator as the `steward` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Import(args) => import(&args),
        Command::Verify(args) => {
            let (mut store, keys) = open(&args)?;
            let mut report = Report::new(args.report.as_deref())?;
            verify(store.as_mut(), &keys.signing, &mut report)?;
            report.peak_rss()
        }
        Command::Generate(args) => generate_only(&args),
    }
}

struct Keys {
    fingerprint: FingerprintKey,
    signing: SigningKey,
}

/// Reads a key the way the CLI does: the environment variable, else the key file.
fn read_key(data_dir: &Path, env: &str, file: &str) -> anyhow::Result<[u8; 32]> {
    let (text, origin) = match std::env::var(env) {
        Ok(text) => (text, env.to_string()),
        Err(_) => {
            let path = data_dir.join("keys").join(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {} (run `steward init` first)", path.display()))?;
            (text, path.display().to_string())
        }
    };
    let bytes = hex::decode(text.trim()).with_context(|| format!("{origin}: not hexadecimal"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{origin}: a key is 32 bytes (64 hex digits)"))
}

fn open(args: &StoreArgs) -> anyhow::Result<(Box<dyn Store>, Keys)> {
    let keys = match &args.data_dir {
        Some(dir) => Keys {
            fingerprint: FingerprintKey::from_bytes(read_key(dir, "STEWARD_FINGERPRINT_KEY", "fingerprint.key")?),
            signing: SigningKey::from_bytes(&read_key(dir, "STEWARD_AUDIT_KEY", "audit-signing.key")?),
        },
        None => Keys {
            fingerprint: FingerprintKey::from_bytes([9; 32]),
            signing: SigningKey::from_bytes(&[7; 32]),
        },
    };
    let url = match (&args.database_url, &args.data_dir) {
        (Some(url), _) => url.clone(),
        (None, Some(dir)) => dir.join("steward.db").display().to_string(),
        (None, None) => bail!("give --database-url or --data-dir"),
    };
    let started = Instant::now();
    let store = steward_store::open(&url, Some(keys.signing.clone()))
        .with_context(|| format!("cannot open {}", redact_url(&url)))?;
    eprintln!(
        "opened {} store {} in {:.2} s",
        store.backend_name(),
        redact_url(&url),
        started.elapsed().as_secs_f64()
    );
    Ok((store, keys))
}

/// Collects `key=value` lines for scripts, and prints nothing itself.
struct Report {
    file: Option<std::fs::File>,
}

impl Report {
    fn new(path: Option<&Path>) -> anyhow::Result<Self> {
        let file = path
            .map(|path| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot open {}", path.display()))
            })
            .transpose()?;
        Ok(Report { file })
    }

    fn put(&mut self, key: &str, value: impl std::fmt::Display) -> anyhow::Result<()> {
        if let Some(file) = &mut self.file {
            writeln!(file, "{key}={value}")?;
        }
        Ok(())
    }

    /// Prints and reports the process's peak resident memory.
    fn peak_rss(&mut self) -> anyhow::Result<()> {
        if let Some(kib) = peak_rss_kib() {
            println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0);
            self.put("bench_peak_rss_kib", kib)?;
        }
        Ok(())
    }
}

/// VmHWM from /proc/self/status (Linux), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn actor() -> Actor {
    Actor {
        name: "steward-bench".to_string(),
        now: NOW.parse().expect("valid constant"),
    }
}

/// Identities coming from the generator thread. Counts how long the importer waited
/// for them (time the store was starved by generation).
struct Feed {
    receiver: mpsc::Receiver<Vec<ImportIdentity>>,
    current: std::vec::IntoIter<ImportIdentity>,
    waited: Duration,
    /// Records not yet handed out (what a file import knows up front).
    remaining: usize,
}

impl Iterator for Feed {
    type Item = ImportIdentity;

    fn next(&mut self) -> Option<ImportIdentity> {
        loop {
            if let Some(record) = self.current.next() {
                self.remaining = self.remaining.saturating_sub(1);
                return Some(record);
            }
            let started = Instant::now();
            let batch = self.receiver.recv().ok()?;
            self.waited += started.elapsed();
            self.current = batch.into_iter();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

/// Identities generated in the importing thread, timing the generation.
struct InlineFeed<'g> {
    generator: &'g Generator,
    next: u64,
    end: u64,
    spent: Duration,
}

impl Iterator for InlineFeed<'_> {
    type Item = ImportIdentity;

    fn next(&mut self) -> Option<ImportIdentity> {
        if self.next == self.end {
            return None;
        }
        let started = Instant::now();
        let record = self.generator.identity(self.next);
        self.spent += started.elapsed();
        self.next += 1;
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = (self.end - self.next) as usize;
        (remaining, Some(remaining))
    }
}

fn import(args: &ImportArgs) -> anyhow::Result<()> {
    let (mut store, keys) = open(&args.store)?;
    let mut report = Report::new(args.store.report.as_deref())?;
    let backend = store.backend_name();
    let total = args.generate.identities;
    let generator = Generator::new(
        keys.fingerprint.clone(),
        args.generate.credentials_per_identity,
        NOW.parse()?,
    );
    let parties = generator.parties().to_vec();
    println!(
        "importing {total} identities with {} credentials each and {} parties into {backend}",
        args.generate.credentials_per_identity,
        parties.len()
    );

    let audit = match args.audit_detail {
        AuditDetail::Summary => ImportAudit::Summary,
        AuditDetail::Record => ImportAudit::PerRecord,
    };
    println!("audit detail: {:?}", args.audit_detail);
    let started = Instant::now();
    let (summary, generation, starved) = if args.inline {
        let mut feed = InlineFeed {
            generator: &generator,
            next: 0,
            end: total,
            spent: Duration::ZERO,
        };
        let summary = store.import(&actor(), "bench", audit, &parties, &mut (&mut feed).map(Ok))?;
        (summary, feed.spent, feed.spent)
    } else {
        let (sender, receiver) = mpsc::sync_channel::<Vec<ImportIdentity>>(QUEUE);
        let producer = std::thread::spawn(move || {
            let started = Instant::now();
            let mut next = 0;
            while next < total {
                let end = (next + BATCH as u64).min(total);
                let batch = (next..end).map(|index| generator.identity(index)).collect();
                if sender.send(batch).is_err() {
                    break;
                }
                next = end;
            }
            started.elapsed()
        });
        let mut feed = Feed {
            receiver,
            current: Vec::new().into_iter(),
            waited: Duration::ZERO,
            remaining: total as usize,
        };
        let outcome = store.import(&actor(), "bench", audit, &parties, &mut (&mut feed).map(Ok));
        let waited = feed.waited;
        drop(feed);
        let generation = producer
            .join()
            .map_err(|_| anyhow::anyhow!("generator thread panicked"))?;
        (outcome?, generation, waited)
    };
    let seconds = started.elapsed().as_secs_f64();
    let rate = summary.identities as f64 / seconds;
    println!(
        "import: {} identities, {} credentials, {} parties, {} audit events in {seconds:.2} s = {rate:.0} identities/s",
        summary.identities, summary.credentials, summary.parties, summary.events
    );
    let store_seconds = seconds - starved.as_secs_f64();
    if args.inline {
        println!("  generating inline took {:.2} s of it", generation.as_secs_f64());
    } else {
        println!(
            "  generator thread ran {:.2} s (including waits on a full queue); the store waited {:.2} s for it",
            generation.as_secs_f64(),
            starved.as_secs_f64()
        );
    }
    println!(
        "  store alone: {store_seconds:.2} s = {:.0} identities/s",
        summary.identities as f64 / store_seconds
    );
    report.put("backend", backend)?;
    report.put("identities", summary.identities)?;
    report.put("credentials", summary.credentials)?;
    report.put("import_events", summary.events)?;
    report.put("import_seconds", format!("{seconds:.3}"))?;
    report.put("import_ids_per_s", format!("{rate:.0}"))?;
    report.put("import_store_seconds", format!("{store_seconds:.3}"))?;

    if !args.no_verify {
        verify(store.as_mut(), &keys.signing, &mut report)?;
    }
    report.peak_rss()
}

fn verify(store: &mut dyn Store, key: &SigningKey, report: &mut Report) -> anyhow::Result<()> {
    let started = Instant::now();
    let outcome = store.verify_audit(&key.verifying_key())?;
    let seconds = started.elapsed().as_secs_f64();
    let summary = outcome.context("audit verification failed")?;
    let rate = summary.events as f64 / seconds;
    println!(
        "verify: {} events, {} checkpoints in {seconds:.2} s = {rate:.0} events/s",
        summary.events, summary.checkpoints
    );
    report.put("verify_events", summary.events)?;
    report.put("verify_seconds", format!("{seconds:.3}"))?;
    report.put("verify_events_per_s", format!("{rate:.0}"))?;
    Ok(())
}

fn generate_only(args: &GenerateArgs) -> anyhow::Result<()> {
    let generator = Generator::new(
        FingerprintKey::from_bytes([9; 32]),
        args.credentials_per_identity,
        NOW.parse()?,
    );
    let started = Instant::now();
    let mut credentials = 0;
    for index in 0..args.identities {
        credentials += std::hint::black_box(generator.identity(index)).credentials.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "generate: {} identities, {credentials} credentials in {seconds:.2} s = {:.0} identities/s (one thread)",
        args.identities,
        args.identities as f64 / seconds
    );
    Report { file: None }.peak_rss()
}
