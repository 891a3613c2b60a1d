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
    // Only a bare date is read as midnight UTC: a date and time without `Z` or an offset
    // names no instant (and jiff would read its date alone, dropping the time).
    let not_an_instant =
        || format!("'{text}' is not a date (YYYY-MM-DD) or an RFC 3339 timestamp (with Z or an offset)");
    if text.len() != 10 {
        return Err(not_an_instant());
    }
    let date: Date = text.parse().map_err(|_| not_an_instant())?;
    date.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|zoned| zoned.timestamp())
        .map_err(|error| format!("'{text}': {error}"))
}

/// The creation time to assume for a record that does not give one: `now`, or the
/// earliest of its other instants if one is earlier (a credential that expired last year
/// was created no later than that), so that a guess never contradicts what was given.
pub fn default_created(now: Timestamp, given: impl IntoIterator<Item = Option<Timestamp>>) -> Timestamp {
    given.into_iter().flatten().fold(now, Timestamp::min)
}

/// Checks that each of a record's later instants (`field`, value) is not before its
/// creation time.
pub fn check_not_before_creation(
    created_at: Timestamp,
    later: &[(&'static str, Option<Timestamp>)],
) -> Result<(), crate::DomainError> {
    match later.iter().find(|(_, at)| at.is_some_and(|at| at < created_at)) {
        Some((field, _)) => Err(crate::DomainError::InvalidField {
            field,
            reason: format!("is before the creation time ({})", format_instant(created_at)),
        }),
        None => Ok(()),
    }
}

/// Parses a calendar date `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    text.parse().map_err(|_| format!("'{text}' is not a date (YYYY-MM-DD)"))
}

/// Formats an instant as RFC 3339 with second precision, e.g. `2026-11-27T10:00:00Z`.
pub fn format_instant(at: Timestamp) -> String {
    let at = at.round(jiff::Unit::Second).unwrap_or(at);
    let civil = jiff::tz::Offset::UTC.to_datetime(at);
    let year = civil.year();
    if !(0..=9999).contains(&year) {
        return at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    // Listings and exports format several instants a row: digits by hand cost a tenth of
    // `strftime` (a unit test checks they agree).
    let mut text = String::with_capacity(20);
    let mut digits = |value: i32, width: u32, after: char| {
        for place in (0..width).rev() {
            let digit = (value / 10_i32.pow(place)) % 10;
            text.push(char::from(b'0' + digit as u8));
        }
        text.push(after);
    };
    digits(i32::from(year), 4, '-');
    digits(i32::from(civil.month()), 2, '-');
    digits(i32::from(civil.day()), 2, 'T');
    digits(i32::from(civil.hour()), 2, ':');
    digits(i32::from(civil.minute()), 2, ':');
    digits(i32::from(civil.second()), 2, 'Z');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_creation_time_is_no_later_than_the_other_instants() {
        let now: Timestamp = "2026-11-27T10:00:00Z".parse().unwrap();
        let earlier: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let later: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(default_created(now, [None, Some(later)]), now);
        assert_eq!(default_created(now, [Some(later), Some(earlier), None]), earlier);
        assert!(check_not_before_creation(earlier, &[("expires_at", Some(now)), ("last_used_at", None)]).is_ok());
        assert!(check_not_before_creation(now, &[("expires_at", Some(now))]).is_ok());
        let error = check_not_before_creation(now, &[("expires_at", Some(later)), ("last_used_at", Some(earlier))])
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "invalid last_used_at: is before the creation time (2026-11-27T10:00:00Z)"
        );
    }

    #[test]
    fn an_instant_is_a_timestamp_with_an_offset_or_a_bare_date() {
        assert_eq!(
            parse_instant("2027-01-01T15:30:00Z").unwrap().to_string(),
            "2027-01-01T15:30:00Z"
        );
        assert_eq!(
            parse_instant("2027-01-01T15:30:00+02:00").unwrap().to_string(),
            "2027-01-01T13:30:00Z"
        );
        assert_eq!(parse_instant("2027-01-01").unwrap().to_string(), "2027-01-01T00:00:00Z");
        for text in ["2027-01-01T15:30:00", "2027-01-01 15:30", "2027-1-1", "tomorrow"] {
            assert_eq!(
                parse_instant(text).unwrap_err(),
                format!("'{text}' is not a date (YYYY-MM-DD) or an RFC 3339 timestamp (with Z or an offset)"),
            );
        }
    }

    #[test]
    fn instants_format_as_strftime_formats_them() {
        let strftime = |at: Timestamp| {
            at.round(jiff::Unit::Second)
                .unwrap_or(at)
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        };
        // Seconds spread over the whole range (negative years included), each with
        // fractions that round down, up and across a minute, day or year boundary.
        let (first, last) = (Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
        let step = (last - first) / 100_003;
        let mut checked = 0;
        for second in (first..=last)
            .step_by(step as usize)
            .chain([-1, 0, 59, 86_399, 1_798_761_599])
        {
            for nanos in [0, 1, 499_999_999, 500_000_000, 999_999_999] {
                if let Ok(at) = Timestamp::new(second, nanos) {
                    assert_eq!(format_instant(at), strftime(at), "{at:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 500_000);
        let at: Timestamp = "2026-12-31T23:59:59.5Z".parse().unwrap();
        assert_eq!(format_instant(at), "2027-01-01T00:00:00Z");
    }
}
