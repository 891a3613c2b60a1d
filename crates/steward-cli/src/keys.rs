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

/// Creates the keys under `data_dir` unless they exist. Returns whether it created them.
pub fn create_keys(data_dir: &Path) -> anyhow::Result<bool> {
    let dir = key_dir(data_dir);
    if dir.join(SIGNING_FILE).exists() && dir.join(FINGERPRINT_FILE).exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
    }
    if !dir.join(FINGERPRINT_FILE).exists() {
        write_key_file(
            &dir.join(FINGERPRINT_FILE),
            &format!("{}\n", hex::encode(random_key()?)),
            0o600,
        )?;
    }
    if !dir.join(SIGNING_FILE).exists() {
        let signing = SigningKey::from_bytes(&random_key()?);
        write_key_file(
            &dir.join(SIGNING_FILE),
            &format!("{}\n", hex::encode(signing.to_bytes())),
            0o600,
        )?;
        let _ = std::fs::remove_file(dir.join(VERIFYING_FILE));
        write_key_file(
            &dir.join(VERIFYING_FILE),
            &format!("{}\n", hex::encode(signing.verifying_key().to_bytes())),
            0o644,
        )?;
    }
    Ok(true)
}

fn parse_key_hex(text: &str, origin: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(text.trim()).map_err(|_| anyhow::anyhow!("{origin}: not hexadecimal"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{origin}: a key is 32 bytes (64 hex digits)"))
}

fn read_key(data_dir: &Path, env: &str, file: &str) -> anyhow::Result<[u8; 32]> {
    if let Ok(text) = std::env::var(env) {
        return parse_key_hex(&text, env);
    }
    let path = key_dir(data_dir).join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_key_hex(&text, &path.display().to_string()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
            "data directory {} is not initialised ({} missing); run `steward init --data-dir {}` or set {env}",
            data_dir.display(),
            path.display(),
            data_dir.display()
        ),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
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
        None => match read_key(data_dir, "STEWARD_AUDIT_KEY", SIGNING_FILE) {
            Ok(seed) => return Ok(SigningKey::from_bytes(&seed).verifying_key()),
            Err(_) => read_key(data_dir, "STEWARD_AUDIT_PUBLIC_KEY", VERIFYING_FILE)?,
        },
    };
    VerifyingKey::from_bytes(&bytes).map_err(|error| anyhow::anyhow!("invalid audit public key: {error}"))
}
