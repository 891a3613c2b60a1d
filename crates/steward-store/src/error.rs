//! Storage errors. Messages are lowercase and name the id, name or field at fault.

use steward_core::DomainError;

/// Anything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Input broke a domain rule.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// No identity matches the reference.
    #[error("unknown identity '{0}'")]
    UnknownIdentity(String),
    /// A bare name matches identities in several systems.
    #[error("ambiguous identity '{name}': it exists in systems {systems}; use system/name or the id")]
    AmbiguousIdentity {
        /// The name given.
        name: String,
        /// The systems it exists in, comma-separated.
        systems: String,
    },
    /// A reference reads as several identities (an id and a name, or two `system/name`
    /// splits).
    #[error("ambiguous identity '{reference}': it could be {candidates}; use #id")]
    AmbiguousReference {
        /// The reference given.
        reference: String,
        /// The identities it could be: `#7 (gh/n2), #9 (gh/7)`.
        candidates: String,
    },
    /// No party has this handle.
    #[error("unknown party '{0}' (add it first with `steward party add`)")]
    UnknownParty(String),
    /// A party with this handle exists.
    #[error("party '{0}' already exists")]
    DuplicateParty(String),
    /// A party's handle differs from this one only in letter case.
    #[error("party '{handle}' differs from the existing '{existing}' only in letter case; use '{existing}'")]
    HandleCaseClash {
        /// The handle given.
        handle: String,
        /// The party that exists.
        existing: String,
    },
    /// An identity with this name exists in the system.
    #[error("identity '{system}/{name}' already exists")]
    DuplicateIdentity {
        /// System.
        system: String,
        /// Name.
        name: String,
    },
    /// No credential of the identity matches.
    #[error("identity '{identity}' has no credential '{credential}'")]
    UnknownCredential {
        /// Identity reference.
        identity: String,
        /// Credential reference.
        credential: String,
    },
    /// A secret already revoked (as another credential) is added as usable again.
    #[error(
        "this secret was revoked as credential #{credential} of '{identity}' ({revoked}): a revoked secret cannot \
         be in use again (a failed rotation?); add the new secret, or add this one with --status revoked"
    )]
    RevokedSecretReused {
        /// The revoked credential's id.
        credential: i64,
        /// Its identity, as system/name.
        identity: String,
        /// When it was revoked.
        revoked: String,
    },
    /// No live copy of the secret is recorded at this place.
    #[error("no live copy of this secret is recorded at {kind} '{locator}'")]
    UnknownLocation {
        /// Kind of place.
        kind: String,
        /// The place.
        locator: String,
    },
    /// The identity already has a credential with this public id.
    #[error("identity '{identity}' already has a credential '{public_id}'")]
    DuplicateCredential {
        /// The identity, `system/name`.
        identity: String,
        /// The public id given again.
        public_id: String,
    },
    /// A credential reference matches several credentials of the identity.
    #[error("credential '{credential}' of identity '{identity}' is ambiguous: it matches {ids}; use #id")]
    AmbiguousCredential {
        /// Identity reference.
        identity: String,
        /// Credential reference.
        credential: String,
        /// The matching credentials' ids (`#9, #10`).
        ids: String,
    },
    /// An import record is invalid; nothing was imported.
    #[error("import record {index} ('{name}'): {message}")]
    ImportRecord {
        /// 1-based position among the imported identities.
        index: usize,
        /// `system/name` of the record.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The caller's side failed and said why: an import's records (a file read as it is
    /// imported, bad at some record; the import was rolled back) or an export's visitor.
    #[error("{0}")]
    Callback(String),
    /// The database was written by a newer steward.
    #[error("database schema version {found} is newer than this steward supports ({supported}); upgrade steward")]
    SchemaTooNew {
        /// Version found in the database.
        found: i64,
        /// Highest version this binary knows.
        supported: i64,
    },
    /// A migration would have left a row referring to one that does not exist; nothing
    /// was changed.
    #[error(
        "cannot migrate the database to schema version {version}: {table} row {rowid} would refer to a missing {parent} row; nothing was changed"
    )]
    MigrationBreaksReference {
        /// The schema version being migrated to.
        version: i64,
        /// Table of the referring row.
        table: String,
        /// Its rowid.
        rowid: i64,
        /// The table referred to.
        parent: String,
    },
    /// The database could not be reached or opened.
    #[error("cannot open database {target}: {reason}")]
    Connect {
        /// Path or URL without password.
        target: String,
        /// Cause.
        reason: String,
    },
    /// A mutation was attempted without the audit signing key.
    #[error(
        "the audit signing key is not loaded, so nothing can be written (run `steward init` or set STEWARD_AUDIT_KEY)"
    )]
    NoSigningKey,
    /// The newest event is not covered by a valid checkpoint: refusing to sign over it.
    #[error(
        "the audit trail's newest event (seq {head}) is not covered by a valid signed checkpoint (the last one \
         found covers seq {checkpoint}): events were added or altered without the signing key, so nothing is \
         written over them; run `steward audit verify`"
    )]
    AuditHeadUnsigned {
        /// The newest event's seq.
        head: i64,
        /// The newest checkpoint's seq (0: none).
        checkpoint: i64,
    },
    /// A database URL of a kind steward does not speak.
    #[error("unsupported database URL scheme '{0}://': use postgres:// (or postgresql://), or a SQLite file path")]
    UnsupportedDatabase(String),
    /// A stored row could not be decoded.
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// What could not be decoded.
        detail: String,
    },
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("postgres: {}", describe_postgres_error(.0))]
    Postgres(#[from] postgres::Error),
}

/// PostgreSQL's `Display` says only "db error"; include the server's message and detail.
fn describe_postgres_error(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

impl StoreError {
    /// Whether the error is about the caller's input (as opposed to the database).
    pub fn is_input_error(&self) -> bool {
        !matches!(
            self,
            StoreError::Sqlite(_)
                | StoreError::Postgres(_)
                | StoreError::Connect { .. }
                | StoreError::Corrupt { .. }
                | StoreError::SchemaTooNew { .. }
                | StoreError::MigrationBreaksReference { .. }
                | StoreError::NoSigningKey
                | StoreError::AuditHeadUnsigned { .. }
        )
    }
}

/// Hides the password of a connection URL for messages: in the user part and in a
/// `password` parameter, split and decoded as tokio-postgres reads them.
pub fn redact_url(url: &str) -> String {
    let (address, query) = crate::pg_tls::split_query(url);
    let after_scheme = address.find("://").map_or(0, |at| at + 3);
    let mut redacted = match address[after_scheme..].find('@') {
        Some(at) => {
            let credentials = &address[after_scheme..after_scheme + at];
            let user = credentials.split(':').next().unwrap_or("");
            format!(
                "{}{user}:***{}",
                &address[..after_scheme],
                &address[after_scheme + at..]
            )
        }
        None => address.to_string(),
    };
    if let Some(query) = query {
        let parameters: Vec<&str> = query
            .split('&')
            .map(|pair| {
                let key = pair.split('=').next().unwrap_or("");
                let decoded = crate::pg_tls::percent_decode(key).unwrap_or_default();
                if decoded == "password" { "password=***" } else { pair }
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&parameters.join("&"));
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_hidden_in_the_user_part_and_in_parameters() {
        assert_eq!(
            redact_url("postgres://steward:s3cret@db.internal:5432/steward?sslmode=require"),
            "postgres://steward:***@db.internal:5432/steward?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db.internal/steward?user=steward&password=s3cret&sslmode=verify-full"),
            "postgres://db.internal/steward?user=steward&password=***&sslmode=verify-full"
        );
        // tokio-postgres ends the user part at the first @ and reads parameters from the
        // first ? after it, so a ? in the password is still the password.
        assert_eq!(
            redact_url("postgres://u:Xy7?kq@db/x?sslmode=require"),
            "postgres://u:***@db/x?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db/x?p%61ssword=s3cret"),
            "postgres://db/x?password=***"
        );
    }
}
