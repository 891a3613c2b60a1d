//! Time helpers. All instants are UTC `jiff::Timestamp`s; calendar dates are
//! `jiff::civil::Date`s. Nothing here reads the clock.

use jiff::{Timestamp, civil::Date};

/// Microseconds since the Unix epoch, the storage form of an instant.
pub fn to_micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

/// The inverse of [`to_micros`].
pub fn from_micros(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Adds whole days to an instant (saturating at jiff's range).
pub fn add_days(at: Timestamp, days: i64) -> Timestamp {
    at.checked_add(jiff::SignedDuration::from_hours(days.saturating_mul(24)))
        .unwrap_or(at)
}

/// The UTC calendar date of an instant.
pub fn utc_date(at: Timestamp) -> Date {
    at.to_zoned(jiff::tz::TimeZone::UTC).date()
}

/// Parses an instant given either as RFC 3339 (`2027-01-01T00:00:00Z`) or as a plain date
/// (`2027-01-01`, meaning midnight UTC).
pub fn parse_instant(text: &str) -> Result<Timestamp, String> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    let date: Date = text
        .parse()
        .map_err(|_| format!("'{text}' is not a date (YYYY-MM-DD) or an RFC 3339 timestamp"))?;
    date.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|zoned| zoned.timestamp())
        .map_err(|error| format!("'{text}': {error}"))
}

/// Parses a calendar date `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    text.parse().map_err(|_| format!("'{text}' is not a date (YYYY-MM-DD)"))
}

/// Formats an instant as RFC 3339 with second precision, e.g. `2026-11-27T10:00:00Z`.
pub fn format_instant(at: Timestamp) -> String {
    at.round(jiff::Unit::Second)
        .unwrap_or(at)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
