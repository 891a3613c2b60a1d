//! Resolves where steward keeps its data and who is acting: defaults < environment
//! (`STEWARD_*`) < flags (clap merges the last two). Reads the clock once, here.

use crate::cli::{Globals, OutputFormat};
use crate::keys::{self, Keys};
use anyhow::Context;
use std::path::PathBuf;
use steward_store::{Actor, Store};

/// Everything a command needs to know about its environment.
pub struct Settings {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL (a path for SQLite).
    pub database_url: String,
    /// Who acts, and when.
    pub actor: Actor,
    /// Output format.
    pub output: OutputFormat,
}

/// The default data directory: the per-user data directory plus `steward`.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .or_else(|| dirs::home_dir().map(|home| home.join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("steward")
}

/// The OS user: `$USER` (or `$USERNAME`, `$LOGNAME`), else, as under cron, systemd or
/// `docker exec` where none is set, the name of the process's user in `/etc/passwd`, or
/// `uid:N`.
fn os_user() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .or_else(user_of_process)
        .unwrap_or_else(|| "unknown".to_string())
}

/// The name of the user the process runs as (its effective uid), or `uid:N`.
#[cfg(unix)]
fn user_of_process() -> Option<String> {
    // SAFETY: geteuid takes nothing, cannot fail and touches no memory of ours.
    let uid = unsafe { libc::geteuid() };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    Some(user_named_in(&passwd, uid).unwrap_or_else(|| format!("uid:{uid}")))
}

#[cfg(not(unix))]
fn user_of_process() -> Option<String> {
    None
}

/// The name of user `uid` in `passwd` (the format of `/etc/passwd`).
fn user_named_in(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id.parse() == Ok(uid) && !name.is_empty()).then(|| name.to_string())
    })
}

/// The current time, or `STEWARD_NOW` (RFC 3339 or a date) for reproducible runs.
pub fn now() -> anyhow::Result<jiff::Timestamp> {
    match std::env::var("STEWARD_NOW") {
        Ok(text) => {
            steward_core::time::parse_instant(&text).map_err(|error| crate::usage(format!("STEWARD_NOW: {error}")))
        }
        Err(_) => Ok(jiff::Timestamp::now()),
    }
}

impl Settings {
    /// Resolves the settings from the global options.
    pub fn resolve(globals: &Globals) -> anyhow::Result<Settings> {
        let data_dir = globals.data_dir.clone().unwrap_or_else(default_data_dir);
        let database_url = globals
            .database_url
            .clone()
            .unwrap_or_else(|| data_dir.join("steward.db").display().to_string());
        Ok(Settings {
            data_dir,
            database_url,
            actor: Actor {
                // A blank actor (`STEWARD_ACTOR=` in an env file) is no actor: the OS user.
                name: globals
                    .actor
                    .as_deref()
                    .map(str::trim)
                    .filter(|actor| !actor.is_empty())
                    .map_or_else(os_user, str::to_string),
                now: now()?,
            },
            output: globals.output.unwrap_or(OutputFormat::Table),
        })
    }

    /// Whether the database is SQLite (a file in or outside the data directory).
    pub fn is_sqlite(&self) -> bool {
        !(self.database_url.starts_with("postgres://") || self.database_url.starts_with("postgresql://"))
    }

    /// Loads the installation keys.
    pub fn keys(&self) -> anyhow::Result<Keys> {
        keys::load_keys(&self.data_dir)
    }

    /// Opens the store with the audit signing key (for commands that write).
    pub fn open_store(&self) -> anyhow::Result<(Box<dyn Store>, Keys)> {
        let keys = self.keys()?;
        self.check_sqlite_file()?;
        let store = steward_store::open(&self.database_url, Some(keys.signing.clone()))?;
        Ok((store, keys))
    }

    /// Opens the store without keys (read-only commands; auditors may hold no keys).
    pub fn open_store_read_only(&self) -> anyhow::Result<Box<dyn Store>> {
        self.check_sqlite_file()?;
        Ok(steward_store::open(&self.database_url, None)?)
    }

    fn check_sqlite_file(&self) -> anyhow::Result<()> {
        if self.is_sqlite() {
            let path = PathBuf::from(
                self.database_url
                    .strip_prefix("sqlite://")
                    .unwrap_or(&self.database_url),
            );
            if !path.exists() {
                anyhow::bail!(
                    "no database at {}; run `steward init --data-dir {}` first",
                    path.display(),
                    self.data_dir.display()
                );
            }
        }
        Ok(())
    }

    /// Creates the data directory (mode 0700).
    pub fn create_data_dir(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("cannot create data directory {}", self.data_dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.data_dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict {}", self.data_dir.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_found_by_uid_in_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\nsvc-backup:x:1001:1001::/home/svc:/bin/sh\n";
        assert_eq!(user_named_in(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_named_in(passwd, 1001).as_deref(), Some("svc-backup"));
        assert_eq!(user_named_in(passwd, 7), None);
    }
}
