//! Installation keys: the fingerprint key (HMAC-SHA256 of secrets) and the Ed25519 audit
//! key (signs checkpoints). Made once by `steward init` under `<data-dir>/keys/` with mode
//! 0600, or given as hex in `STEWARD_FINGERPRINT_KEY` / `STEWARD_AUDIT_KEY`.

use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use steward_core::FingerprintKey;
use steward_core::audit::{SigningKey, VerifyingKey};

const FINGERPRINT_FILE: &str = "fingerprint.key";
const SIGNING_FILE: &str = "audit-signing.key";
const VERIFYING_FILE: &str = "audit-verify.pub";

/// Both installation keys.
pub struct Keys {
    /// Keys secret fingerprints.
    pub fingerprint: FingerprintKey,
    /// Signs audit checkpoints.
    pub signing: SigningKey,
}

/// The key directory of a data directory.
pub fn key_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

fn random_key() -> anyhow::Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("cannot read random bytes: {error}"))?;
    Ok(bytes)
}

fn write_key_file(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Creates the keys under `data_dir` unless they exist. Returns whether it wrote any.
/// A key given in the environment (`STEWARD_FINGERPRINT_KEY`, `STEWARD_AUDIT_KEY`) is the
/// key in use, so no other is written for it: only the audit key's public half
/// (`audit-verify.pub`, the trust anchor to keep elsewhere) comes from it. A key file that
/// differs from the environment's key is refused, since the two would disagree about
/// which key is the installation's.
pub fn create_keys(data_dir: &Path) -> anyhow::Result<bool> {
    let dir = key_dir(data_dir);
    let env_fingerprint = env_key("STEWARD_FINGERPRINT_KEY")?;
    let env_audit = env_key("STEWARD_AUDIT_KEY")?;
    let stored_fingerprint = stored_key(&dir.join(FINGERPRINT_FILE))?;
    let stored_signing = stored_key(&dir.join(SIGNING_FILE))?;
    for (env, given, stored, file) in [
        (
            "STEWARD_FINGERPRINT_KEY",
            env_fingerprint,
            stored_fingerprint,
            FINGERPRINT_FILE,
        ),
        ("STEWARD_AUDIT_KEY", env_audit, stored_signing, SIGNING_FILE),
    ] {
        if let (Some(given), Some(stored)) = (given, stored)
            && given != stored
        {
            bail!(
                "{} holds another key than {env}: use one of them (remove the file, or unset {env})",
                dir.join(file).display()
            );
        }
    }
    let signing = env_audit.or(stored_signing).map(|seed| SigningKey::from_bytes(&seed));
    let public_text = |signing: &SigningKey| format!("{}\n", hex::encode(signing.verifying_key().to_bytes()));
    let public_is_current = signing.as_ref().is_some_and(|signing| {
        std::fs::read_to_string(dir.join(VERIFYING_FILE)).is_ok_and(|text| text == public_text(signing))
    });
    let fingerprint_missing = env_fingerprint.is_none() && stored_fingerprint.is_none();
    if !fingerprint_missing && signing.is_some() && public_is_current {
        return Ok(false);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
    }
    if fingerprint_missing {
        write_key_file(
            &dir.join(FINGERPRINT_FILE),
            &format!("{}\n", hex::encode(random_key()?)),
            0o600,
        )?;
    }
    let signing = match signing {
        Some(signing) => signing,
        None => {
            let signing = SigningKey::from_bytes(&random_key()?);
            write_key_file(
                &dir.join(SIGNING_FILE),
                &format!("{}\n", hex::encode(signing.to_bytes())),
                0o600,
            )?;
            signing
        }
    };
    if !public_is_current {
        let _ = std::fs::remove_file(dir.join(VERIFYING_FILE));
        write_key_file(&dir.join(VERIFYING_FILE), &public_text(&signing), 0o644)?;
    }
    Ok(true)
}

/// A key given as hex in environment variable `env`, if set (malformed is an error).
fn env_key(env: &str) -> anyhow::Result<Option<[u8; 32]>> {
    match std::env::var(env) {
        Ok(text) => parse_key_hex(&text, env).map(Some),
        Err(_) => Ok(None),
    }
}

fn parse_key_hex(text: &str, origin: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(text.trim()).map_err(|_| anyhow::anyhow!("{origin}: not hexadecimal"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{origin}: a key is 32 bytes (64 hex digits)"))
}

/// The key in key file `path`, if the file exists (a malformed one is an error).
fn stored_key(path: &Path) -> anyhow::Result<Option<[u8; 32]>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key_hex(&text, &path.display().to_string()).map(Some),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// A key from environment variable `env`, else from key file `file`, if either has one.
fn env_or_stored_key(data_dir: &Path, env: &str, file: &str) -> anyhow::Result<Option<[u8; 32]>> {
    match env_key(env)? {
        Some(key) => Ok(Some(key)),
        None => stored_key(&key_dir(data_dir).join(file)),
    }
}

fn read_key(data_dir: &Path, env: &str, file: &str) -> anyhow::Result<[u8; 32]> {
    env_or_stored_key(data_dir, env, file)?.ok_or_else(|| {
        anyhow::anyhow!(
            "data directory {} is not initialised ({} missing); run `steward init --data-dir {}` or set {env}",
            data_dir.display(),
            key_dir(data_dir).join(file).display(),
            data_dir.display()
        )
    })
}

/// Loads the fingerprint key alone (environment first, then the key file): all a scan
/// needs. `Ok(None)` when there is none; a malformed one is an error.
pub fn load_fingerprint_key(data_dir: &Path) -> anyhow::Result<Option<FingerprintKey>> {
    Ok(env_or_stored_key(data_dir, "STEWARD_FINGERPRINT_KEY", FINGERPRINT_FILE)?.map(FingerprintKey::from_bytes))
}

/// Loads both keys (environment first, then the key files).
pub fn load_keys(data_dir: &Path) -> anyhow::Result<Keys> {
    Ok(Keys {
        fingerprint: FingerprintKey::from_bytes(read_key(data_dir, "STEWARD_FINGERPRINT_KEY", FINGERPRINT_FILE)?),
        signing: SigningKey::from_bytes(&read_key(data_dir, "STEWARD_AUDIT_KEY", SIGNING_FILE)?),
    })
}

/// Loads the audit verification key: from `file` when given, else derived from the
/// signing key, else from `<data-dir>/keys/audit-verify.pub` (an auditor may hold only
/// the public key).
pub fn load_verifying_key(data_dir: &Path, file: Option<&Path>) -> anyhow::Result<VerifyingKey> {
    let bytes = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            parse_key_hex(&text, &path.display().to_string())?
        }
        // A malformed STEWARD_AUDIT_KEY is an error, not a reason to try another key; a
        // signing key file that cannot be read leaves the public key file to try.
        None => match env_key("STEWARD_AUDIT_KEY")? {
            Some(seed) => return Ok(SigningKey::from_bytes(&seed).verifying_key()),
            None => match stored_key(&key_dir(data_dir).join(SIGNING_FILE)) {
                Ok(Some(seed)) => return Ok(SigningKey::from_bytes(&seed).verifying_key()),
                Ok(None) | Err(_) => read_key(data_dir, "STEWARD_AUDIT_PUBLIC_KEY", VERIFYING_FILE)?,
            },
        },
    };
    VerifyingKey::from_bytes(&bytes).map_err(|error| anyhow::anyhow!("invalid audit public key: {error}"))
}
