//! Values as the templates show them, shared by the kinds.

use mpanel_store::UserRecord;
use time::OffsetDateTime;

/// How a user is greeted: their display name, else their address.
pub(crate) fn addressee(user: &UserRecord) -> String {
    let name = user.display_name.trim();
    if name.is_empty() {
        user.email.clone()
    } else {
        name.to_owned()
    }
}

/// A moment in UTC, to the minute (`2026-11-21 09:05 UTC`).
pub(crate) fn minute(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", at.date(), at.hour(), at.minute())
}

/// A day (`2026-11-21`), or nothing.
pub(crate) fn date(at: Option<OffsetDateTime>) -> String {
    at.map(|t| t.date().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn moments_are_shown_in_utc() {
        assert_eq!(
            minute(datetime!(2026-11-21 10:05:59 +01:00)),
            "2026-11-21 09:05 UTC"
        );
        assert_eq!(date(Some(datetime!(2026-11-21 10:05 UTC))), "2026-11-21");
        assert_eq!(date(None), "");
    }
}
