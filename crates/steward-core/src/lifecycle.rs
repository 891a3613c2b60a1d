//! The identity lifecycle:
//! `proposed → active ⇄ suspended → offboarding → revoked → archived`, plus
//! `active → offboarding`. Every move is validated here; the store records it with an
//! actor, a reason and an audit event.

use crate::{CredentialStatus, DomainError};

text_enum! {
    /// Where an identity is in its life.
    pub enum LifecycleState as "state" {
        /// Requested, not yet in use.
        Proposed => "proposed",
        /// In use.
        Active => "active",
        /// Temporarily disabled (e.g. during an incident).
        Suspended => "suspended",
        /// Being removed: approvals, rotation of shared copies, revocation.
        Offboarding => "offboarding",
        /// Every credential revoked at its system.
        Revoked => "revoked",
        /// Offboarding verified; kept for evidence only.
        Archived => "archived",
    }
}

impl LifecycleState {
    /// States directly reachable from this one.
    pub fn successors(self) -> &'static [LifecycleState] {
        use LifecycleState::*;
        match self {
            Proposed => &[Active],
            Active => &[Suspended, Offboarding],
            Suspended => &[Active, Offboarding],
            Offboarding => &[Revoked],
            Revoked => &[Archived],
            Archived => &[],
        }
    }

    /// Whether the machine allows `self → to`.
    pub fn can_move_to(self, to: LifecycleState) -> bool {
        self.successors().contains(&to)
    }

    /// Whether the identity may still hold usable credentials in this state.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            LifecycleState::Proposed | LifecycleState::Active | LifecycleState::Suspended | LifecycleState::Offboarding
        )
    }
}

/// Facts about an identity that some transitions depend on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransitionContext {
    /// Credentials not (yet) revoked at their system: active, inactive, expired or
    /// superseded ones all may still work there or be made to.
    pub unrevoked_credentials: usize,
    /// Known locations (copies) of the identity's credentials that were seen after
    /// the credential was revoked, or are not marked removed.
    pub live_locations: usize,
}

/// Validates `from → to` for an identity in `context`.
///
/// `revoked` requires every credential revoked; `archived` requires that too, and that no
/// copy of a credential remains. Both preconditions implement DESIGN's meaning of those
/// states, so that a record never claims more than is true.
pub fn check_transition(
    from: LifecycleState,
    to: LifecycleState,
    context: TransitionContext,
) -> Result<(), DomainError> {
    if !from.can_move_to(to) {
        let allowed = from.successors().iter().map(|state| state.as_str()).collect::<Vec<_>>();
        return Err(DomainError::IllegalTransition {
            from,
            to,
            allowed: if allowed.is_empty() {
                "none, it is final".to_string()
            } else {
                allowed.join(", ")
            },
        });
    }
    // `archived` follows `revoked`, but credentials added since (the store refuses them; a
    // database edited by hand may still hold them) keep it back too.
    if matches!(to, LifecycleState::Revoked | LifecycleState::Archived) && context.unrevoked_credentials > 0 {
        return Err(DomainError::TransitionBlocked {
            to,
            reason: format!(
                "{} credential(s) not revoked (active, inactive, expired or superseded); revoke them first (steward credential revoke)",
                context.unrevoked_credentials
            ),
        });
    }
    if to == LifecycleState::Archived && context.live_locations > 0 {
        return Err(DomainError::TransitionBlocked {
            to,
            reason: format!("{} known location(s) of its credentials remain", context.live_locations),
        });
    }
    Ok(())
}

/// Checks that an identity in `state` may hold a credential of `status`: once revoked
/// (and archived), every credential it holds is revoked, so only a revoked one is added
/// or imported.
pub fn check_credential_allowed(state: LifecycleState, status: CredentialStatus) -> Result<(), DomainError> {
    if state.is_live() || status == CredentialStatus::Revoked {
        return Ok(());
    }
    Err(DomainError::IdentityClosed {
        state,
        reason: format!("every credential it holds is revoked, so none can be {status}"),
    })
}

/// Checks that an identity in `state` may be edited: `archived` is final, kept for
/// evidence as it was.
pub fn check_editable(state: LifecycleState) -> Result<(), DomainError> {
    if state == LifecycleState::Archived {
        return Err(DomainError::IdentityClosed {
            state,
            reason: "archived is final; its record is kept as it was".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_state() -> impl Strategy<Value = LifecycleState> {
        proptest::sample::select(LifecycleState::ALL)
    }

    proptest! {
        #[test]
        fn only_listed_moves_are_accepted(from in any_state(), to in any_state()) {
            let result = check_transition(from, to, TransitionContext::default());
            prop_assert_eq!(result.is_ok(), from.successors().contains(&to));
        }

        #[test]
        fn every_walk_ends_in_archived_or_loops_through_live_states(
            choices in proptest::collection::vec(0usize..3, 0..40)
        ) {
            let mut state = LifecycleState::Proposed;
            for choice in choices {
                let next = state.successors();
                if next.is_empty() { break; }
                let to = next[choice % next.len()];
                prop_assert!(check_transition(state, to, TransitionContext::default()).is_ok());
                prop_assert!(state.is_live() || to == LifecycleState::Archived);
                state = to;
            }
        }
    }

    #[test]
    fn active_to_archived_is_illegal_and_names_the_allowed_moves() {
        let error = check_transition(
            LifecycleState::Active,
            LifecycleState::Archived,
            TransitionContext::default(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "illegal transition active -> archived (allowed from active: suspended, offboarding)"
        );
    }

    #[test]
    fn revocation_waits_for_unrevoked_credentials() {
        let context = TransitionContext {
            unrevoked_credentials: 2,
            live_locations: 0,
        };
        let error = check_transition(LifecycleState::Offboarding, LifecycleState::Revoked, context).unwrap_err();
        assert!(error.to_string().contains("2 credential(s) not revoked"), "{error}");
    }

    #[test]
    fn archive_waits_for_remaining_copies() {
        let context = TransitionContext {
            unrevoked_credentials: 0,
            live_locations: 1,
        };
        assert!(check_transition(LifecycleState::Revoked, LifecycleState::Archived, context).is_err());
        assert!(
            check_transition(
                LifecycleState::Revoked,
                LifecycleState::Archived,
                TransitionContext::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn archive_waits_for_unrevoked_credentials_too() {
        let context = TransitionContext {
            unrevoked_credentials: 1,
            live_locations: 0,
        };
        let error = check_transition(LifecycleState::Revoked, LifecycleState::Archived, context).unwrap_err();
        assert!(error.to_string().contains("1 credential(s) not revoked"), "{error}");
    }

    #[test]
    fn closed_identities_take_only_revoked_credentials_and_archived_ones_no_change() {
        for &state in LifecycleState::ALL {
            for status in [
                CredentialStatus::Active,
                CredentialStatus::Inactive,
                CredentialStatus::Expired,
                CredentialStatus::Superseded,
                CredentialStatus::Revoked,
            ] {
                let allowed = check_credential_allowed(state, status).is_ok();
                assert_eq!(
                    allowed,
                    state.is_live() || status == CredentialStatus::Revoked,
                    "{state} {status}"
                );
            }
            assert_eq!(
                check_editable(state).is_ok(),
                state != LifecycleState::Archived,
                "{state}"
            );
        }
        let error = check_credential_allowed(LifecycleState::Revoked, CredentialStatus::Active).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the identity is revoked: every credential it holds is revoked, so none can be active"
        );
    }
}
