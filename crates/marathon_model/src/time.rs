//! Timestamps and versions: milliseconds since the Unix epoch, written as UTC ISO-8601
//! with exactly three fraction digits and `Z` (marathon-api.md §1 "Timestamps / versions",
//! §9: clients accept at most 6 fraction digits, so 3 always).
//!
//! The model never reads a clock: callers pass `Timestamp`s in. The civil-date
//! conversion is written here (days ↔ year/month/day, proleptic Gregorian) to keep the
//! dependency list short.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since 1970-01-01T00:00:00Z (negative = before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// Why a string is not a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp '{0}': expected YYYY-MM-DDTHH:MM:SS[.fff]Z")]
pub struct TimestampError(pub String);

const MS_PER_DAY: i64 = 86_400_000;
/// Years accepted on parse; keeps every computation far from overflow.
const YEAR_MIN: i64 = 0;
const YEAR_MAX: i64 = 9999;

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(month);
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether `year` is a Gregorian leap year.
pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Timestamp {
    /// From milliseconds since the epoch.
    pub fn from_millis(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parse `YYYY-MM-DDTHH:MM:SS[.f{1,9}]` followed by `Z` or `±HH:MM`. Digits beyond
    /// milliseconds are truncated.
    pub fn parse(s: &str) -> Result<Timestamp, TimestampError> {
        parse(s).ok_or_else(|| TimestampError(s.to_string()))
    }
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
}

fn parse(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])? as u32;
    let day = digits(&b[8..10])? as u32;
    let (hour, min, sec) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(YEAR_MIN..=YEAR_MAX).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        let mut padded = [b'0'; 3];
        for (dst, src) in padded.iter_mut().zip(&frac[..n]) {
            *dst = *src;
        }
        millis = digits(&padded)?;
        rest = &frac[n..];
    }
    let offset_minutes = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let total = h * 60 + m;
            if *sign == b'+' {
                total
            } else {
                -total
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let ms = days * MS_PER_DAY + ((hour * 60 + min - offset_minutes) * 60 + sec) * 1000 + millis;
    Some(Timestamp(ms))
}

impl fmt::Display for Timestamp {
    /// `2024-05-01T12:00:00.123Z`: always three fraction digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(MS_PER_DAY);
        let in_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let (secs, ms) = (in_day / 1000, in_day % 1000);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Timestamp, TimestampError> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn formats_with_three_fraction_digits() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_714_564_800_123).to_string(),
            "2024-05-01T12:00:00.123Z"
        );
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_fraction_variants() {
        assert_eq!(ts("2024-05-01T12:00:00.123Z").0, 1_714_564_800_123);
        assert_eq!(ts("2024-05-01T12:00:00Z").0, 1_714_564_800_000);
        assert_eq!(ts("2024-05-01T12:00:00.1Z").0, 1_714_564_800_100);
        assert_eq!(ts("2024-05-01T12:00:00.123456789Z").0, 1_714_564_800_123);
        assert_eq!(ts("2024-05-01T14:00:00.123+02:00").0, 1_714_564_800_123);
        assert_eq!(ts("2024-05-01T10:30:00.123-01:30").0, 1_714_564_800_123);
    }

    #[test]
    fn refuses_malformed_input() {
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00.1234567890Z",
            "2024-13-01T12:00:00Z",
            "2024-04-31T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60:00Z",
            "2024-05-01 12:00:00Z",
            "+024-05-01T12:00:00Z",
            "2024-05-01T12:00:00Zjunk",
            "2024-05-01T12:00:00+2:00",
            "٢٠٢٤-05-01T12:00:00Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn leap_years() {
        assert!(is_leap_year(2024) && is_leap_year(2000) && is_leap_year(1600));
        assert!(!is_leap_year(1900) && !is_leap_year(2023) && !is_leap_year(2100));
        assert_eq!(
            ts("2024-02-29T00:00:00Z").to_string(),
            "2024-02-29T00:00:00.000Z"
        );
        assert_eq!(
            ts("2000-02-29T23:59:59.999Z").to_string(),
            "2000-02-29T23:59:59.999Z"
        );
        assert!(Timestamp::parse("1900-02-29T00:00:00Z").is_err());
        // The day after Feb 29 is Mar 1.
        let feb29 = ts("2024-02-29T00:00:00Z").0;
        assert_eq!(
            Timestamp(feb29 + MS_PER_DAY).to_string(),
            "2024-03-01T00:00:00.000Z"
        );
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
        assert_eq!(
            days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28),
            1
        );
    }

    #[test]
    fn civil_conversion_round_trips_over_centuries() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        let mut day = days_from_civil(1599, 1, 1);
        let end = days_from_civil(2401, 1, 1);
        let mut prev = civil_from_days(day - 1);
        while day < end {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
            assert!(d >= 1 && d <= days_in_month(y, m));
            assert!((y, m, d) > prev);
            prev = (y, m, d);
            day += 1;
        }
    }

    #[test]
    fn extreme_values_format_without_panicking() {
        for ms in [i64::MIN, i64::MIN + 1, i64::MAX, -MS_PER_DAY * 1000] {
            assert!(Timestamp(ms).to_string().ends_with('Z'));
        }
        assert_eq!(
            ts("0000-01-01T00:00:00Z").to_string(),
            "0000-01-01T00:00:00.000Z"
        );
        assert_eq!(
            ts("9999-12-31T23:59:59.999Z").to_string(),
            "9999-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn display_round_trips() {
        for ms in [
            0,
            1,
            999,
            1_714_564_800_123,
            951_782_400_000,
            253_402_300_799_999,
        ] {
            let t = Timestamp(ms);
            assert_eq!(Timestamp::parse(&t.to_string()), Ok(t));
        }
        let json = serde_json::to_string(&Timestamp(1_714_564_800_123)).unwrap();
        assert_eq!(json, "\"2024-05-01T12:00:00.123Z\"");
        let back: Timestamp = serde_json::from_str(&json).unwrap();
        assert_eq!(back.0, 1_714_564_800_123);
    }
}
