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

    /// RFC 3339 in UTC with millisecond precision, e.g. `2027-12-31T23:59:59.000Z`. Written digit by digit (it
    /// is on every pre-check's answer; `time`'s formatter took ~0.4 us); years outside 0-9999 go through it.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        let moment = ::time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .unwrap_or(::time::OffsetDateTime::UNIX_EPOCH);
        let (year, month, day) = moment.to_calendar_date();
        let Some(year) = u32::try_from(year).ok().filter(|year| *year <= 9999) else {
            let format = ::time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            );
            return moment.format(&format).unwrap_or_default();
        };
        let (hour, minute, second, milli) = moment.to_hms_milli();
        let mut out = String::with_capacity(24);
        let mut digits = |value: u32, width: u32, then: Option<char>| {
            for place in (0..width).rev() {
                out.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
            }
            out.extend(then);
        };
        digits(year, 4, Some('-'));
        digits(u32::from(u8::from(month)), 2, Some('-'));
        digits(u32::from(day), 2, Some('T'));
        digits(u32::from(hour), 2, Some(':'));
        digits(u32::from(minute), 2, Some(':'));
        digits(u32::from(second), 2, Some('.'));
        digits(u32::from(milli), 3, Some('Z'));
        out
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
        // Digit by digit as `time` formats them, across the years and into the ones it formats itself.
        let format = ::time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        let mut millis = -62_135_596_800_000 - 2 * 365 * 86_400_000; // two years before 1 CE
        while millis < 253_402_300_799_999 {
            let moment =
                ::time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).unwrap();
            assert_eq!(UnixMillis(millis).to_rfc3339(), moment.format(&format).unwrap(), "{millis}");
            millis += 7_919_993_471; // about three months, never the same time of day twice
        }
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now().0 > 1_577_836_800_000);
    }
}
