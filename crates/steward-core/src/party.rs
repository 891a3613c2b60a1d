//! Parties: the people and teams that own, steward, approve and control identities.

use serde::Serialize;

/// Store-assigned id of a party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PartyId(pub i64);

text_enum! {
    /// Whether a party is a single person or a team.
    pub enum PartyKind as "party kind" {
        /// A person, usually named by e-mail address.
        Person => "person",
        /// A team, by convention named `team-<name>`.
        Team => "team",
    }
}

text_enum! {
    /// Whether a party can still act. A departed owner is a finding (`owner-departed`).
    pub enum PartyStatus as "party status" {
        /// Present and able to act.
        Active => "active",
        /// Left the organisation (or the team was dissolved).
        Departed => "departed",
    }
}

text_enum! {
    /// The role a party plays on an identity.
    pub enum Role as "role" {
        /// Accountable for the identity's existence and purpose; exactly one.
        BusinessOwner => "business_owner",
        /// Operates the identity day to day; exactly one.
        TechnicalSteward => "technical_steward",
        /// May approve in the owners' absence; zero or more.
        BackupApprover => "backup_approver",
        /// The IAM/PAM team that enforces removal.
        ControlOwner => "control_owner",
    }
}

/// A person or team known to steward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Party {
    /// Store id.
    pub id: PartyId,
    /// Unique handle: an e-mail address for people, `team-<name>` for teams.
    pub handle: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Person or team.
    pub kind: PartyKind,
    /// For a person, the handle of their team party, if any.
    pub team: Option<String>,
    /// Active or departed.
    pub status: PartyStatus,
}

/// A party to be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewParty {
    /// Unique handle.
    pub handle: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Person or team.
    pub kind: PartyKind,
    /// Team handle (`team-<name>`), for people.
    pub team: Option<String>,
    /// Initial status.
    pub status: PartyStatus,
}

impl NewParty {
    /// Builds a party from a handle, inferring the kind: handles that start with `team-`
    /// are teams, everything else is a person.
    pub fn from_handle(handle: &str) -> Self {
        let kind = if handle.starts_with("team-") {
            PartyKind::Team
        } else {
            PartyKind::Person
        };
        NewParty {
            handle: handle.to_string(),
            display_name: None,
            kind,
            team: None,
            status: PartyStatus::Active,
        }
    }
}

/// The handle of the team party for a team name: `payments` becomes `team-payments`
/// (a name that already carries the prefix is kept).
pub fn team_handle(team: &str) -> String {
    if team.starts_with("team-") {
        team.to_string()
    } else {
        format!("team-{team}")
    }
}

/// Checks a party handle: 1-200 bytes without white space, control characters or commas;
/// an e-mail address has one `@` with text on both sides, and a team handle a name after
/// `team-`.
pub fn validate_handle(handle: &str) -> Result<(), crate::DomainError> {
    let invalid = |reason: String| {
        Err(crate::DomainError::InvalidField {
            field: "handle",
            reason,
        })
    };
    if handle.is_empty()
        || handle.len() > 200
        || handle.chars().any(|c| c.is_whitespace() || c.is_control() || c == ',')
    {
        return invalid(format!("'{handle}' must be 1-200 characters without spaces or commas"));
    }
    if handle.contains('@')
        && !matches!(handle.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'))
    {
        return invalid(format!(
            "'{handle}' is not an e-mail address (one @ with text on both sides)"
        ));
    }
    if handle == "team-" {
        return invalid("'team-' names no team".into());
    }
    Ok(())
}
