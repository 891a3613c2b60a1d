//! Errors raised by domain validation.

use crate::lifecycle::LifecycleState;

/// A rule of the domain was broken by the input. Messages are lowercase and name the
/// value or field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A text value is not one of the accepted forms.
    #[error("invalid {what} '{value}' (expected one of: {expected})")]
    InvalidValue {
        /// What kind of value was expected (e.g. "tier").
        what: &'static str,
        /// The rejected text.
        value: String,
        /// The accepted forms.
        expected: String,
    },
    /// A field is malformed.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field at fault.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// The lifecycle machine does not allow this move.
    #[error("illegal transition {from} -> {to} (allowed from {from}: {allowed})")]
    IllegalTransition {
        /// Current state.
        from: LifecycleState,
        /// Requested state.
        to: LifecycleState,
        /// States reachable from `from`, comma-separated.
        allowed: String,
    },
    /// The move is legal in general but a precondition does not hold for this identity.
    #[error("cannot move to {to}: {reason}")]
    TransitionBlocked {
        /// Requested state.
        to: LifecycleState,
        /// The unmet precondition.
        reason: String,
    },
    /// The identity's state does not allow the change (it is revoked or archived).
    #[error("the identity is {state}: {reason}")]
    IdentityClosed {
        /// Its state.
        state: LifecycleState,
        /// What it does not allow.
        reason: String,
    },
}
