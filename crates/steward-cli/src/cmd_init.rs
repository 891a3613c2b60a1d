//! `steward init`: data directory, installation keys, database schema.

use crate::cli::{Globals, InitArgs};
use crate::settings::Settings;
use std::process::ExitCode;

pub fn run(globals: &Globals, _args: &InitArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(globals)?;
    // Before anything is created: a URL steward cannot use leaves no half-made directory.
    steward_store::check_database_url(&settings.database_url)?;
    settings.create_data_dir()?;
    let created = crate::keys::create_keys(&settings.data_dir)?;
    let keys = settings.keys()?;
    let store = steward_store::open(&settings.database_url, Some(keys.signing))?;
    let database = if settings.is_sqlite() {
        settings.database_url.clone()
    } else {
        format!("{} database", store.backend_name())
    };
    if created {
        println!(
            "initialised {} (keys in {}, database {database})",
            settings.data_dir.display(),
            crate::keys::key_dir(&settings.data_dir).display()
        );
    } else {
        println!(
            "{} is already initialised (database {database})",
            settings.data_dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
