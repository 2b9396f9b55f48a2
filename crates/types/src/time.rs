//! Time as the domain sees it: an injectable clock so that expiry and retention can be tested.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    pub fn plus_millis(self, millis: i64) -> UnixMillis {
        UnixMillis(self.0.saturating_add(millis))
    }

    /// Parses an RFC 3339 timestamp (`2027-12-31T23:59:59Z`) or a calendar date (`2027-12-31`, meaning the end
    /// of that day, UTC: a key "expiring 2027-12-31" works all of that day).
    pub fn parse_date_or_rfc3339(text: &str) -> Option<UnixMillis> {
        use ::time::format_description::well_known::Rfc3339;
        let text = text.trim();
        if let Ok(moment) = ::time::OffsetDateTime::parse(text, &Rfc3339) {
            return millis_of(moment);
        }
        let format = ::time::macros::format_description!("[year]-[month]-[day]");
        let date = ::time::Date::parse(text, &format).ok()?;
        let end_of_day = date.next_day()?.midnight().assume_utc();
        millis_of(end_of_day)
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2027-12-31T23:59:59.000Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        let moment = ::time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .unwrap_or(::time::OffsetDateTime::UNIX_EPOCH);
        let format = ::time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        moment.format(&format).unwrap_or_default()
    }
}

fn millis_of(moment: ::time::OffsetDateTime) -> Option<UnixMillis> {
    i64::try_from(moment.unix_timestamp_nanos() / 1_000_000).ok().map(UnixMillis)
}

/// Where "now" comes from. Production uses [`SystemClock`]; tests use [`ManualClock`].
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> UnixMillis;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        UnixMillis(i64::try_from(millis).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: UnixMillis) -> ManualClock {
        ManualClock(AtomicI64::new(start.0))
    }

    pub fn advance_millis(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixMillis {
        UnixMillis(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(UnixMillis(1_000));
        assert_eq!(clock.now(), UnixMillis(1_000));
        clock.advance_millis(500);
        assert_eq!(clock.now(), UnixMillis(1_500));
    }

    #[test]
    fn dates_and_timestamps() {
        let check = |text: &str, expected: Option<i64>| {
            assert_eq!(UnixMillis::parse_date_or_rfc3339(text), expected.map(UnixMillis), "{text}")
        };
        check("2027-12-31", Some(1_830_297_600_000));
        check("2027-12-31T00:00:00Z", Some(1_830_211_200_000));
        check("2027-12-31T01:00:00+01:00", Some(1_830_211_200_000));
        check("2027-02-30", None);
        check("31/12/2027", None);
        check("", None);
        assert_eq!(UnixMillis(1_830_211_200_123).to_rfc3339(), "2027-12-31T00:00:00.123Z");
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now().0 > 1_577_836_800_000);
    }
}
