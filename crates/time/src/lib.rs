//! Calendar arithmetic: converting between broken-down UTC dates (as the CMOS RTC reports them)
//! and seconds since the Unix epoch, plus human-readable formatting. No clock access here.
#![no_std]
#![forbid(unsafe_code)]

use core::fmt;

/// A broken-down UTC date and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// Why a date is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidDate;

impl fmt::Display for InvalidDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid calendar date")
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl DateTime {
    /// Checks the fields and converts to seconds since the Unix epoch.
    pub fn to_unix(&self) -> Result<i64, InvalidDate> {
        if !(1..=12).contains(&self.month)
            || self.day == 0
            || self.day > days_in_month(self.year, self.month)
            || self.hour > 23
            || self.minute > 59
            || self.second > 60
        {
            return Err(InvalidDate);
        }
        let days = days_from_civil(self.year, self.month, self.day);
        Ok(days * 86_400 + i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second))
    }

    /// Converts seconds since the Unix epoch to a UTC date.
    pub fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        DateTime { year, month, day, hour: (rem / 3600) as u8, minute: (rem / 60 % 60) as u8, second: (rem % 60) as u8 }
    }

    /// Day of the week, 0 = Sunday.
    pub fn weekday(&self) -> u8 {
        let days = days_from_civil(self.year, self.month, self.day);
        (days + 4).rem_euclid(7) as u8
    }
}

impl fmt::Display for DateTime {
    /// `Thu 2026-11-26 06:10:00 UTC`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        write!(
            f,
            "{} {:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            NAMES[usize::from(self.weekday())],
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second
        )
    }
}

/// Decodes a CMOS RTC register value that may be BCD.
pub fn from_bcd(v: u8) -> u8 {
    (v & 0x0f) + (v >> 4) * 10
}

/// A duration in nanoseconds shown the way `uptime` and `time` print it: `1h 02m 03.456s`.
#[derive(Clone, Copy, Debug)]
pub struct Human(pub u64);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total_ms = self.0 / 1_000_000;
        let ms = total_ms % 1000;
        let s = total_ms / 1000 % 60;
        let m = total_ms / 60_000 % 60;
        let h = total_ms / 3_600_000 % 24;
        let d = total_ms / 86_400_000;
        if d > 0 {
            write!(f, "{d}d {h:02}h {m:02}m {s:02}.{ms:03}s")
        } else if h > 0 {
            write!(f, "{h}h {m:02}m {s:02}.{ms:03}s")
        } else if m > 0 {
            write!(f, "{m}m {s:02}.{ms:03}s")
        } else {
            write!(f, "{s}.{ms:03}s")
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn epoch_and_known_dates() {
        let e = DateTime { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
        assert_eq!(e.to_unix(), Ok(0));
        let d = DateTime { year: 2026, month: 11, day: 26, hour: 6, minute: 10, second: 0 };
        assert_eq!(d.to_unix(), Ok(1_795_673_400));
        assert_eq!(DateTime::from_unix(1_795_673_400), d);
        assert_eq!(d.to_string(), "Thu 2026-11-26 06:10:00 UTC");
        let leap = DateTime { year: 2000, month: 2, day: 29, hour: 23, minute: 59, second: 59 };
        assert_eq!(DateTime::from_unix(leap.to_unix().unwrap()), leap);
    }

    #[test]
    fn round_trips_every_day_for_centuries() {
        let mut t = -86_400 * 365 * 100;
        while t < 86_400 * 365 * 300 {
            let d = DateTime::from_unix(t);
            assert_eq!(d.to_unix(), Ok(t));
            t += 86_400 + 3_661;
        }
    }

    #[test]
    fn rejects_invalid_dates() {
        let bad = DateTime { year: 2023, month: 2, day: 29, hour: 0, minute: 0, second: 0 };
        assert_eq!(bad.to_unix(), Err(InvalidDate));
        let bad = DateTime { year: 2023, month: 13, day: 1, hour: 0, minute: 0, second: 0 };
        assert_eq!(bad.to_unix(), Err(InvalidDate));
        let bad = DateTime { year: 2023, month: 1, day: 1, hour: 24, minute: 0, second: 0 };
        assert_eq!(bad.to_unix(), Err(InvalidDate));
    }

    #[test]
    fn bcd_and_durations() {
        assert_eq!(from_bcd(0x59), 59);
        assert_eq!(from_bcd(0x07), 7);
        assert_eq!(Human(1_234_000_000).to_string(), "1.234s");
        assert_eq!(Human(3_723_004_000_000).to_string(), "1h 02m 03.004s");
        assert_eq!(Human(90_061_000_000_000).to_string(), "1d 01h 01m 01.000s");
    }
}
