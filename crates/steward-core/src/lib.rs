//! The steward domain: what a non-human identity (NHI) is, who owns it, which credentials
//! it holds and where their copies live, how it moves through its lifecycle, what the
//! policy expects of it, and how audit events are chained and checkpoints signed.
//!
//! This crate is pure: it performs no I/O, starts no runtime and never reads the clock.
//! Every function that depends on the current time takes `now` as an argument, so rules
//! can be tested at any date. Storage lives in `steward-store`; surfaces live in
//! `steward-cli` (and later the server).

#[macro_use]
mod text_enum;

pub mod audit;
pub mod credential;
pub mod error;
pub mod finding;
pub mod identity;
pub mod lifecycle;
pub mod party;
pub mod policy;
pub mod time;

pub use credential::{
    Credential, CredentialId, CredentialKind, CredentialStatus, Fingerprint, FingerprintKey, Location, LocationKind,
    NewCredential, canonical_secret, redact_secret,
};
pub use error::DomainError;
pub use finding::{FindingRule, ScannedSecret, Severity};
pub use identity::{
    Identity, IdentityId, IdentityKind, IdentityPatch, NewIdentity, Provenance, Roles, Scope, Tier, validate_name,
};
pub use lifecycle::{LifecycleState, TransitionContext};
pub use party::{NewParty, Party, PartyId, PartyKind, PartyStatus, Role};
pub use policy::{Policy, TierPolicy};
