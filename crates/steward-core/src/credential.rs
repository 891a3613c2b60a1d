//! Credentials (secrets and key material held by an identity), their keyed fingerprints,
//! redacted previews, and the locations where copies of them live.
//!
//! A secret is never kept: callers hand it to [`Fingerprint::compute`] and
//! [`redact_secret`] and drop it.

use crate::DomainError;
use crate::identity::IdentityId;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde::Serialize;
use sha2::Sha256;

/// Store-assigned id of a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CredentialId(pub i64);

text_enum! {
    /// What sort of secret or key a credential is.
    pub enum CredentialKind as "credential kind" {
        /// A cloud access key pair (e.g. AWS `AKIA…` + secret).
        AccessKey => "access_key",
        /// A static API key.
        ApiKey => "api_key",
        /// A bearer or personal access token.
        Token => "token",
        /// An OAuth client secret.
        ClientSecret => "client_secret",
        /// A password.
        Password => "password",
        /// An SSH private key.
        SshKey => "ssh_key",
        /// A private key of any other kind (PEM, PKCS#8…).
        PrivateKey => "private_key",
        /// An X.509 certificate with its key.
        Certificate => "certificate",
        /// A connection string with embedded credentials.
        ConnectionString => "connection_string",
        /// A webhook URL that embeds its secret.
        Webhook => "webhook",
    }
}

text_enum! {
    /// Whether a credential can still be used.
    pub enum CredentialStatus as "credential status" {
        /// Usable.
        Active => "active",
        /// Disabled at its system but not deleted.
        Inactive => "inactive",
        /// Past its expiry.
        Expired => "expired",
        /// Revoked at its system.
        Revoked => "revoked",
        /// Replaced by a newer credential after rotation.
        Superseded => "superseded",
    }
}

impl CredentialStatus {
    /// Whether the credential still grants access (an inactive key can be re-enabled, so it
    /// counts as live too).
    pub fn is_usable(self) -> bool {
        matches!(self, CredentialStatus::Active | CredentialStatus::Inactive)
    }
}

/// The installation key under which secrets are fingerprinted (32 random bytes made at
/// `steward init`).
#[derive(Clone)]
pub struct FingerprintKey {
    bytes: [u8; 32],
    /// HMAC state with the key's inner and outer pads already hashed: each fingerprint
    /// clones it, saving two of the four SHA-256 blocks of a short secret.
    keyed: Hmac<Sha256>,
}

impl FingerprintKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        FingerprintKey {
            bytes,
            keyed: Hmac::<Sha256>::new_from_slice(&bytes).expect("hmac accepts keys of any length"),
        }
    }

    /// The raw key bytes (for writing the key file).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// A short public name of the key, 16 hex digits: the start of the HMAC of a fixed
    /// text under it. Files that carry fingerprints carry it too, so that a reader can
    /// tell whether they were made under its own key (fingerprints under another key never
    /// match); it tells nothing of the key.
    pub fn id(&self) -> String {
        let mut mac = self.keyed.clone();
        mac.update(b"\0steward fingerprint key id\0");
        hex::encode(&mac.finalize().into_bytes()[..8])
    }
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(<redacted>)")
    }
}

/// HMAC-SHA256 of a secret under the installation key, as 64 lowercase hex digits.
/// Equal secrets have equal fingerprints within one installation, so copies can be
/// matched without keeping the secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Fingerprints `secret` under `key`.
    pub fn compute(key: &FingerprintKey, secret: &[u8]) -> Fingerprint {
        let mut mac = key.keyed.clone();
        mac.update(secret);
        let mut text = [0u8; 64];
        hex::encode_to_slice(mac.finalize().into_bytes(), &mut text).expect("64 hex digits fit 32 bytes");
        Fingerprint(String::from_utf8(text.to_vec()).expect("hex digits are ASCII"))
    }

    /// Accepts a fingerprint given as text (64 hex digits, as exported).
    pub fn parse(text: &str) -> Result<Fingerprint, DomainError> {
        let ok = text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(Fingerprint(text.to_ascii_lowercase()))
        } else {
            Err(DomainError::InvalidField {
                field: "fingerprint",
                reason: "must be 64 hexadecimal digits (HMAC-SHA256)".into(),
            })
        }
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The form of a secret that is fingerprinted: the secret itself, except for a PEM block
/// (`-----BEGIN …-----` to `-----END …-----`, a private key), whose copies differ in
/// layout but not in key: indented (a Kubernetes `stringData: |` block, a YAML value),
/// with `\n` or `\r\n` escapes for line breaks (an environment variable, JSON such as a
/// GCP service-account file; also doubled, `\\n`), with CRLF line ends, or with trailing
/// white space. A PEM block is rewritten as its lines, each trimmed of white space at both
/// ends (blank lines kept: an encrypted key's headers end with one), joined by `\n`,
/// without a line break at either end: a `.pem` file as `openssl` writes it, read by
/// `credential add --secret-stdin` (which drops one trailing newline). Base64 and PEM
/// headers hold no backslash, so every backslash in a block is an escape.
pub fn canonical_secret(secret: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    let trimmed = secret.trim_ascii();
    let is_pem_block = trimmed.starts_with(b"-----BEGIN ") && trimmed.windows(9).any(|window| window == b"-----END ");
    if !is_pem_block {
        return Cow::Borrowed(secret);
    }
    // Escapes decoded: `\n` (any number of backslashes) is a line break, `\r` nothing.
    let mut unescaped = Vec::with_capacity(trimmed.len());
    let mut index = 0;
    while index < trimmed.len() {
        let byte = trimmed[index];
        if byte != b'\\' {
            unescaped.push(byte);
            index += 1;
            continue;
        }
        let mut after = index;
        while trimmed.get(after) == Some(&b'\\') {
            after += 1;
        }
        match trimmed.get(after) {
            Some(b'n') => {
                unescaped.push(b'\n');
                index = after + 1;
            }
            Some(b'r') => index = after + 1,
            _ => {
                unescaped.extend_from_slice(&trimmed[index..after]);
                index = after;
            }
        }
    }
    let mut canonical = Vec::with_capacity(unescaped.len());
    for (number, line) in unescaped.split(|byte| *byte == b'\n').enumerate() {
        if number > 0 {
            canonical.push(b'\n');
        }
        canonical.extend_from_slice(line.trim_ascii());
    }
    // An escaped line break after the end line (`…-----\n"` in JSON).
    canonical.truncate(canonical.trim_ascii_end().len());
    if canonical == secret {
        Cow::Borrowed(secret)
    } else {
        Cow::Owned(canonical)
    }
}

/// A redacted preview of a secret that is safe to show: the first four characters and
/// the length for secrets of 16 characters or more, only the length for shorter ones
/// (too little would remain hidden).
pub fn redact_secret(secret: &str) -> String {
    let length = secret.chars().count();
    if length >= 16 {
        let head: String = secret.chars().take(4).collect();
        format!("{head}…({length} chars)")
    } else {
        format!("…({length} chars)")
    }
}

/// A credential held by an identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credential {
    /// Store id.
    pub id: CredentialId,
    /// Owning identity.
    pub identity_id: IdentityId,
    /// Kind of secret.
    pub kind: CredentialKind,
    /// Public identifier (access key id, key id, token prefix…), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_id: Option<String>,
    /// Keyed fingerprint of the secret, if it was ever seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// Redacted preview of the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// Status at its system.
    pub status: CredentialStatus,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Last observed use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

/// A credential to be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    /// Kind of secret.
    pub kind: CredentialKind,
    /// Public identifier.
    pub public_id: Option<String>,
    /// Fingerprint of the secret.
    pub fingerprint: Option<Fingerprint>,
    /// Redacted preview.
    pub preview: Option<String>,
    /// Status.
    pub status: CredentialStatus,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Last use.
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked; only with status `revoked` (the store takes the time it is
    /// recorded when a revoked credential comes without one).
    pub revoked_at: Option<Timestamp>,
}

impl NewCredential {
    /// Checks fields that do not depend on other records.
    pub fn validate(&self) -> Result<(), DomainError> {
        if let Some(public_id) = &self.public_id
            && (public_id.is_empty() || public_id.len() > 512)
        {
            return Err(DomainError::InvalidField {
                field: "public_id",
                reason: "must be 1-512 characters".into(),
            });
        }
        if self
            .public_id
            .as_ref()
            .is_some_and(|public_id| public_id.starts_with('#'))
        {
            return Err(DomainError::InvalidField {
                field: "public_id",
                reason: "must not start with '#' (`#id` names a credential by its store id)".into(),
            });
        }
        if self.revoked_at.is_some() && self.status != CredentialStatus::Revoked {
            return Err(DomainError::InvalidField {
                field: "revoked_at",
                reason: format!("is given but the status is {}, not revoked", self.status),
            });
        }
        crate::time::check_not_before_creation(
            self.created_at,
            &[
                ("expires_at", self.expires_at),
                ("last_used_at", self.last_used_at),
                ("revoked_at", self.revoked_at),
            ],
        )
    }
}

text_enum! {
    /// Where a copy of a credential lives.
    pub enum LocationKind as "location kind" {
        /// A secret store path (Vault/OpenBao, AWS Secrets Manager…).
        SecretStore => "secret_store",
        /// A CI/CD variable.
        CiVariable => "ci_variable",
        /// A Kubernetes secret.
        KubernetesSecret => "kubernetes_secret",
        /// A configuration file on a host.
        ConfigFile => "config_file",
        /// A file in a repository at a commit.
        RepositoryFile => "repository_file",
        /// A ticket or its comment.
        Ticket => "ticket",
        /// A chat message.
        ChatMessage => "chat_message",
        /// A document.
        Document => "document",
    }
}

/// A known copy of a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// Store id.
    pub id: i64,
    /// The credential copied, if it is known to the inventory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<CredentialId>,
    /// Fingerprint of the copied secret.
    pub fingerprint: Fingerprint,
    /// Kind of place.
    pub kind: LocationKind,
    /// Exact place (path:line, repo@commit:path:line, channel/ts…).
    pub locator: String,
    /// First time it was seen.
    pub first_seen: Timestamp,
    /// Last time it was seen.
    pub last_seen: Timestamp,
    /// When it was confirmed removed, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<Timestamp>,
    /// Dismissed (`credential locate --dismiss`): still there, the risk accepted; it is
    /// removed too, and scans that find it again leave it so.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dismissed: bool,
}

impl Location {
    /// Checks a copy as stored: a locator of 1 to 4096 bytes, not seen last before it
    /// was first seen nor removed before it was first seen, and removed when dismissed.
    pub fn validate(&self) -> Result<(), DomainError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(DomainError::InvalidField {
                field,
                reason: reason.to_string(),
            })
        };
        if self.locator.is_empty() || self.locator.len() > 4096 {
            return invalid("locator", "must be 1-4096 characters");
        }
        check_seen(self.first_seen, self.last_seen)?;
        if self.removed_at.is_some_and(|removed| removed < self.first_seen) {
            return invalid("removed_at", "is before first_seen");
        }
        if self.dismissed && self.removed_at.is_none() {
            return invalid(
                "dismissed",
                "a dismissed copy has removed_at (when it stopped counting)",
            );
        }
        Ok(())
    }
}

/// Checks that something was not last seen before it was first seen.
pub(crate) fn check_seen(first_seen: Timestamp, last_seen: Timestamp) -> Result<(), DomainError> {
    if last_seen < first_seen {
        return Err(DomainError::InvalidField {
            field: "last_seen",
            reason: "is before first_seen".to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_keyed() {
        let key_a = FingerprintKey::from_bytes([1; 32]);
        let key_b = FingerprintKey::from_bytes([2; 32]);
        let secret = b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz";
        assert_eq!(
            Fingerprint::compute(&key_a, secret),
            Fingerprint::compute(&key_a, secret)
        );
        assert_ne!(
            Fingerprint::compute(&key_a, secret),
            Fingerprint::compute(&key_b, secret)
        );
        assert_eq!(Fingerprint::compute(&key_a, secret).as_str().len(), 64);
    }

    #[test]
    fn fingerprints_are_hmac_sha256_in_lowercase_hex() {
        // Python: hmac.new(bytes([7] * 32), b"AKIAIOSFODNN7EXAMPLE-secret", hashlib.sha256).hexdigest()
        let key = FingerprintKey::from_bytes([7; 32]);
        for _ in 0..2 {
            assert_eq!(
                Fingerprint::compute(&key, b"AKIAIOSFODNN7EXAMPLE-secret").as_str(),
                "cf059607b6a130e79d180215c3634bd015300d3ff605a63ad9f465e238c872d7"
            );
        }
    }

    #[test]
    fn previews_never_reveal_short_secrets() {
        assert_eq!(redact_secret("hunter2"), "…(7 chars)");
        let preview = redact_secret("ghp_abcdefghijklmnopqrstuvwxyz0123456789");
        assert_eq!(preview, "ghp_…(40 chars)");
        assert!(!preview.contains("abcdef"));
    }

    #[test]
    fn fingerprint_text_is_checked() {
        assert!(Fingerprint::parse(&"a".repeat(64)).is_ok());
        assert!(Fingerprint::parse("abc").is_err());
    }

    /// A key's copies in a `.pem` file (LF or CRLF), indented in YAML, with `\n` escapes
    /// (an env var, JSON, doubled) all read as the file `credential add` reads.
    #[test]
    fn a_pem_block_has_one_canonical_form_whatever_its_layout() {
        let pem =
            "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n\nAbCd+/ef==\n-----END RSA PRIVATE KEY-----";
        let copies = [
            pem.to_string(),
            format!("{pem}\n"),
            pem.replace('\n', "\r\n"),
            pem.lines().map(|line| format!("    {line}  \n")).collect::<String>(),
            pem.replace('\n', "\\n"),
            format!("{}\\n", pem.replace('\n', "\\n")),
            pem.replace('\n', "\\r\\n"),
            pem.replace('\n', "\\\\n"),
        ];
        for copy in &copies {
            assert_eq!(canonical_secret(copy.as_bytes()).as_ref(), pem.as_bytes(), "{copy:?}");
        }
        // Anything else is fingerprinted as it is.
        for other in ["ghp_abc\\n", "  padded  ", "-----BEGIN PUBLIC KEY----- x", "a\\nb"] {
            assert_eq!(canonical_secret(other.as_bytes()).as_ref(), other.as_bytes());
        }
    }
}
