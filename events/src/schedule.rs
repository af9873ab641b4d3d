//! Time on the merchant's side: weekly opening hours and the start of a
//! bookable slot. All instants are UTC.

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::ValueError;

/// Slots start on this grid (minutes past the hour), so two bookings of the
/// "same" slot always name the same instant.
pub const SLOT_GRID_MINUTES: u32 = 15;

/// The start of a bookable slot: a UTC instant on the 15-minute grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "DateTime<Utc>")]
pub struct SlotStart(DateTime<Utc>);

impl SlotStart {
    /// Accepts an instant on the 15-minute grid with zero seconds.
    pub fn parse(at: DateTime<Utc>) -> Result<Self, ValueError> {
        if at.second() != 0
            || at.nanosecond() != 0
            || !at.minute().is_multiple_of(SLOT_GRID_MINUTES)
        {
            return Err(ValueError::new(
                "slot_start",
                "a slot starts on a 15-minute boundary (hh:00, :15, :30, :45) with zero seconds",
            ));
        }
        Ok(Self(at))
    }

    /// Parses RFC 3339 text, then checks the grid.
    pub fn parse_str(text: &str) -> Result<Self, ValueError> {
        let at = DateTime::parse_from_rfc3339(text)
            .map_err(|_| ValueError::new("slot_start", "not an RFC 3339 timestamp"))?;
        Self::parse(at.with_timezone(&Utc))
    }

    /// The instant.
    pub fn at(&self) -> DateTime<Utc> {
        self.0
    }

    /// Seconds since the Unix epoch; used in slot stream names.
    pub fn epoch_seconds(&self) -> i64 {
        self.0.timestamp()
    }
}

impl From<SlotStart> for DateTime<Utc> {
    fn from(s: SlotStart) -> Self {
        s.0
    }
}

impl<'de> Deserialize<'de> for SlotStart {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let at = DateTime::<Utc>::deserialize(d)?;
        SlotStart::parse(at).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for SlotStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.to_rfc3339())
    }
}

/// Day of the week, Monday first (ISO 8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    fn from_chrono(d: chrono::Weekday) -> Self {
        match d {
            chrono::Weekday::Mon => Weekday::Mon,
            chrono::Weekday::Tue => Weekday::Tue,
            chrono::Weekday::Wed => Weekday::Wed,
            chrono::Weekday::Thu => Weekday::Thu,
            chrono::Weekday::Fri => Weekday::Fri,
            chrono::Weekday::Sat => Weekday::Sat,
            chrono::Weekday::Sun => Weekday::Sun,
        }
    }
}

/// One opening interval on one weekday, in the merchant's local time as
/// minutes after midnight. `close` may exceed 1440 for a shift past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningInterval {
    /// The weekday the interval opens on.
    pub day: Weekday,
    /// Opening time, minutes after local midnight (0..1440).
    pub open: u16,
    /// Closing time, minutes after local midnight (open < close <= open + 1440).
    pub close: u16,
}

/// A merchant's weekly opening hours in a fixed UTC offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningHours {
    /// Offset of the merchant's local time from UTC, in minutes (-720..=840).
    pub utc_offset_minutes: i16,
    /// The weekly intervals; empty means never open.
    pub intervals: Vec<OpeningInterval>,
}

impl OpeningHours {
    /// Open every day during [open, close) local minutes.
    pub fn daily(utc_offset_minutes: i16, open: u16, close: u16) -> Self {
        use Weekday::*;
        let intervals = [Mon, Tue, Wed, Thu, Fri, Sat, Sun]
            .into_iter()
            .map(|day| OpeningInterval { day, open, close })
            .collect();
        Self {
            utc_offset_minutes,
            intervals,
        }
    }

    /// Checks offsets and interval bounds.
    pub fn validate(&self) -> Result<(), ValueError> {
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            return Err(ValueError::new(
                "opening_hours.utc_offset_minutes",
                "UTC offset must be between -720 and 840 minutes",
            ));
        }
        for i in &self.intervals {
            if i.open >= 1440 || i.close <= i.open || i.close > i.open + 1440 {
                return Err(ValueError::new(
                    "opening_hours.intervals",
                    "each interval needs 0 <= open < 1440 and open < close <= open + 1440",
                ));
            }
        }
        Ok(())
    }

    /// Whether the merchant is open at `at`, including intervals that began
    /// the day before and run past midnight.
    pub fn is_open_at(&self, at: DateTime<Utc>) -> bool {
        let local = at + Duration::minutes(i64::from(self.utc_offset_minutes));
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let today = Weekday::from_chrono(local.weekday());
        let yesterday = Weekday::from_chrono(local.weekday().pred());
        self.intervals.iter().any(|i| {
            (i.day == today && i.open <= minute && minute < i.close)
                || (i.day == yesterday && i.close > 1440 && minute + 1440 < i.close)
        })
    }

    /// Whether the whole span [start, start + minutes) lies inside opening hours,
    /// checked on the slot grid.
    pub fn covers(&self, start: DateTime<Utc>, minutes: u32) -> bool {
        let step = SLOT_GRID_MINUTES.min(minutes.max(1));
        let mut offset = 0;
        while offset < minutes {
            if !self.is_open_at(start + Duration::minutes(i64::from(offset))) {
                return false;
            }
            offset += step;
        }
        minutes == 0
            || self.is_open_at(start + Duration::minutes(i64::from(minutes)) - Duration::seconds(1))
    }
}

/// A UTC instant from calendar parts; a convenience for tests and generators.
pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_start_must_be_on_the_grid() {
        assert!(SlotStart::parse(utc(2026, 11, 25, 10, 15)).is_ok());
        assert!(SlotStart::parse(utc(2026, 11, 25, 10, 7)).is_err());
        assert!(SlotStart::parse_str("2026-11-25T10:30:00Z").is_ok());
        assert!(SlotStart::parse_str("2026-11-25T10:30:01Z").is_err());
        assert!(SlotStart::parse_str("yesterday").is_err());
        // 11:30 at +01:00 is 10:30Z: on the grid.
        assert_eq!(
            SlotStart::parse_str("2026-11-25T11:30:00+01:00")
                .unwrap()
                .at(),
            utc(2026, 11, 25, 10, 30)
        );
    }

    #[test]
    fn opening_hours_in_local_time_and_past_midnight() {
        // 2026-11-25 is a Wednesday. Open 09:00–18:00 at UTC+8.
        let hours = OpeningHours::daily(480, 9 * 60, 18 * 60);
        assert!(hours.is_open_at(utc(2026, 11, 25, 1, 0))); // 09:00 local
        assert!(!hours.is_open_at(utc(2026, 11, 25, 0, 59))); // 08:59 local
        assert!(!hours.is_open_at(utc(2026, 11, 25, 10, 0))); // 18:00 local
                                                              // A bar open Friday 20:00 to Saturday 02:00, UTC.
        let bar = OpeningHours {
            utc_offset_minutes: 0,
            intervals: vec![OpeningInterval {
                day: Weekday::Fri,
                open: 20 * 60,
                close: 26 * 60,
            }],
        };
        assert!(bar.is_open_at(utc(2026, 11, 27, 23, 0))); // Friday 23:00
        assert!(bar.is_open_at(utc(2026, 11, 28, 1, 30))); // Saturday 01:30
        assert!(!bar.is_open_at(utc(2026, 11, 28, 2, 0)));
        assert!(bar.covers(utc(2026, 11, 27, 23, 0), 120));
        assert!(!bar.covers(utc(2026, 11, 28, 1, 0), 120));
    }

    #[test]
    fn validation() {
        assert!(OpeningHours::daily(0, 600, 600).validate().is_err());
        assert!(OpeningHours::daily(900, 600, 700).validate().is_err());
        assert!(OpeningHours::daily(-300, 600, 1500).validate().is_ok());
    }
}
