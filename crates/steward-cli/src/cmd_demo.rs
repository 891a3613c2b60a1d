//! `steward demo`: builds the demo estate into its own data directory and prints an
//! inventory summary.

use crate::cli::{DemoArgs, Globals, OutputFormat};
use crate::output::write_stdout;
use crate::settings::{Settings, default_data_dir};
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;
use steward_store::IdentityFilter;

/// Marks a data directory as made by `steward demo`, so a re-run may replace it.
const DEMO_MARKER: &str = ".steward-demo";

/// Empties a previous demo's data directory; refuses to touch anything else.
fn prepare_demo_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.join("steward.db").exists() || dir.join("keys").exists() {
        if !dir.join(DEMO_MARKER).exists() {
            anyhow::bail!(
                "{} holds a steward installation that the demo did not create; give the demo its own --data-dir",
                dir.display()
            );
        }
        for name in ["steward.db", "steward.db-wal", "steward.db-shm", DEMO_MARKER] {
            let path = dir.join(name);
            if path.exists() {
                std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        let keys = dir.join("keys");
        if keys.exists() {
            std::fs::remove_dir_all(&keys).with_context(|| format!("cannot remove {}", keys.display()))?;
        }
    }
    Ok(())
}

pub fn run(globals: &Globals, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let mut settings = Settings::resolve(globals)?;
    if globals.data_dir.is_none() {
        settings.data_dir = default_data_dir().join("demo");
        if globals.database_url.is_none() {
            settings.database_url = settings.data_dir.join("steward.db").display().to_string();
        }
    }
    if settings.is_sqlite() {
        prepare_demo_dir(&settings.data_dir)?;
    }
    settings.create_data_dir()?;
    crate::keys::create_keys(&settings.data_dir)?;
    std::fs::write(
        settings.data_dir.join(DEMO_MARKER),
        "made by steward demo; `steward demo` may replace it\n",
    )
    .with_context(|| format!("cannot write {}", settings.data_dir.display()))?;
    let keys = settings.keys()?;
    let mut store = steward_store::open(&settings.database_url, Some(keys.signing.clone()))?;
    if !store
        .identities(&IdentityFilter {
            limit: Some(1),
            ..Default::default()
        })?
        .is_empty()
    {
        anyhow::bail!("the demo needs an empty database, and {} is not", settings.database_url);
    }
    let started = std::time::Instant::now();
    let summary = crate::demo::build_demo(store.as_mut(), &keys.fingerprint, args.identities)?;
    let elapsed = started.elapsed().as_secs_f64();
    if settings.output != OutputFormat::Table {
        crate::output::print_record(settings.output, &summary, &[])?;
        return Ok(ExitCode::SUCCESS);
    }
    let data_dir = settings.data_dir.display().to_string();
    write_stdout(|out| {
        writeln!(
            out,
            "demo estate ready in {data_dir} ({:.1} s): {} identities, {} credentials, {} parties ({} departed), {} known copies, {} audit events",
            elapsed,
            summary.identities,
            summary.credentials,
            summary.parties,
            summary.departed_parties,
            summary.locations,
            summary.audit_events
        )?;
        for (title, counts) in [
            ("by system", &summary.by_system),
            ("by state", &summary.by_state),
            ("by tier", &summary.by_tier),
        ] {
            writeln!(out, "\n{title}:")?;
            let width = counts.keys().map(String::len).max().unwrap_or(0);
            for (key, count) in counts {
                writeln!(out, "  {key:width$}  {count:>5}")?;
            }
        }
        writeln!(
            out,
            "\nplanted problems (label demo.problem), {} rules:",
            summary.planted_problems.len()
        )?;
        let line: Vec<String> = summary
            .planted_problems
            .iter()
            .map(|(rule, count)| format!("{rule} {count}"))
            .collect();
        writeln!(out, "  {}", line.join(", "))?;
        writeln!(
            out,
            "  (`steward findings` lists the leaked and revoked-but-referenced copies; the other rules are\n   \
             for detection, which no command runs yet: the identities carry the label demo.problem)"
        )?;
        writeln!(out, "\nexplore it:")?;
        // On PostgreSQL the commands need its URL too (a password in it left out).
        let url = &settings.database_url;
        let has_password = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .is_some_and(|(credentials, _)| credentials.contains(':'));
        let steward = match (settings.is_sqlite(), has_password) {
            (true, _) => format!("steward --data-dir {data_dir}"),
            (false, true) => format!(
                "steward --data-dir {data_dir} --database-url '{}'",
                steward_store::redact_url(url)
            ),
            (false, false) => format!("steward --data-dir {data_dir} --database-url '{url}'"),
        };
        writeln!(out, "  {steward} nhi list --system aws --tier critical")?;
        writeln!(out, "  {steward} nhi show aws/billing-export-prod")?;
        writeln!(out, "  {steward} findings")?;
        writeln!(out, "  {steward} audit verify")
    })?;
    Ok(ExitCode::SUCCESS)
}
