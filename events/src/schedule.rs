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
    /// The weekday `index` days after Monday (0..7).
    fn from_index(index: u16) -> Self {
        use Weekday::*;
        [Mon, Tue, Wed, Thu, Fri, Sat, Sun][usize::from(index % 7)]
    }
}

/// Minutes in a week.
const WEEK_MINUTES: u16 = 7 * 1440;

/// Hours in a week: the hours an [`OpeningMask`] summarises.
pub const WEEK_HOURS: usize = 7 * 24;

/// A minute of the week, Monday 00:00 = 0, in some fixed offset from UTC;
/// seconds dropped. Shifting it by an offset is the same as shifting the
/// instant and reading its weekday and minute again, without a calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WeekMinute(u16);

impl WeekMinute {
    /// The UTC minute of the week of `at`.
    pub fn of(at: DateTime<Utc>) -> Self {
        let day = at.weekday().num_days_from_monday() as u16;
        WeekMinute(day * 1440 + (at.hour() * 60 + at.minute()) as u16)
    }

    /// The same instant in a zone `minutes` ahead (negative: behind).
    pub fn shifted(self, minutes: i16) -> Self {
        let week = i32::from(WEEK_MINUTES);
        WeekMinute((i32::from(self.0) + i32::from(minutes)).rem_euclid(week) as u16)
    }

    /// The hour of the week it falls in (0..168).
    pub fn hour(self) -> usize {
        usize::from(self.0 / 60)
    }
}

/// Opening hours summarised per hour of the (local) week: which hours are
/// open throughout, and which are open at some minute. Most checks end on
/// one bit; only an hour in which the merchant opens or closes needs the
/// intervals. A search tests many candidates per query and keeps this next
/// to each merchant rather than reading its intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpeningMask {
    /// Bit `h`: open at every minute of hour `h` (by one interval).
    throughout: [u64; 3],
    /// Bit `h`: open at some minute of hour `h`.
    some: [u64; 3],
}

impl OpeningMask {
    /// The summary of `hours`; [`OpeningMask::is_open_in`] with it answers as
    /// [`OpeningHours::is_open_in`] does.
    pub fn of(hours: &OpeningHours) -> Self {
        let mut mask = OpeningMask::default();
        for i in &hours.intervals {
            let day = i.day as u16;
            // Exactly the two clauses of `is_open_in`, as minute ranges of
            // one day each: the opening day, and the next one's early hours.
            let today = (i.open.min(1440), i.close.min(1440));
            let next = (0, i.close.saturating_sub(1440).min(1440));
            mask.mark(day, today);
            mask.mark((day + 1) % 7, next);
        }
        mask
    }

    /// Marks the minutes [from, to) of `day`.
    fn mark(&mut self, day: u16, (from, to): (u16, u16)) {
        if from >= to {
            return;
        }
        let (start, end) = (usize::from(day * 1440 + from), usize::from(day * 1440 + to));
        for hour in start / 60..end.div_ceil(60) {
            let bit = 1u64 << (hour % 64);
            self.some[hour / 64] |= bit;
            if start <= hour * 60 && hour * 60 + 60 <= end {
                self.throughout[hour / 64] |= bit;
            }
        }
    }

    /// What hour `hour` of the summarised week (0..168) says of its minutes.
    pub fn hour(&self, hour: usize) -> HourOpen {
        let (word, bit) = (hour / 64, 1u64 << (hour % 64));
        if self.throughout[word] & bit != 0 {
            HourOpen::Throughout
        } else if self.some[word] & bit == 0 {
            HourOpen::Closed
        } else {
            HourOpen::Partly
        }
    }

    /// The same summary per hour of the UTC week, for hours kept
    /// `utc_offset_minutes` ahead of UTC. With an offset of whole hours that
    /// is the local summary turned; otherwise each UTC hour straddles two
    /// local hours and is open throughout only if both are, and open at some
    /// minute if either is — never a wrong `Throughout` or `Closed`, at worst
    /// a `Partly` that sends the caller to the intervals.
    pub fn in_utc(&self, utc_offset_minutes: i16) -> OpeningMask {
        let mut utc = OpeningMask::default();
        for hour in 0..WEEK_HOURS {
            let start = WeekMinute((hour * 60) as u16).shifted(utc_offset_minutes);
            let first = self.hour(start.hour());
            let state = if start.0.is_multiple_of(60) {
                first
            } else {
                match (first, self.hour((start.hour() + 1) % WEEK_HOURS)) {
                    (HourOpen::Throughout, HourOpen::Throughout) => HourOpen::Throughout,
                    (HourOpen::Closed, HourOpen::Closed) => HourOpen::Closed,
                    _ => HourOpen::Partly,
                }
            };
            let bit = 1u64 << (hour % 64);
            if state != HourOpen::Closed {
                utc.some[hour / 64] |= bit;
            }
            if state == HourOpen::Throughout {
                utc.throughout[hour / 64] |= bit;
            }
        }
        utc
    }

    /// Whether `hours` (the ones summarised) are open at minute `local` of
    /// their week.
    pub fn is_open_in(&self, local: WeekMinute, hours: &OpeningHours) -> bool {
        match self.hour(local.hour()) {
            HourOpen::Throughout => true,
            HourOpen::Closed => false,
            HourOpen::Partly => hours.is_open_in(local),
        }
    }
}

/// What one hour of an [`OpeningMask`] says of the minutes in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HourOpen {
    /// Open at every minute of it.
    Throughout,
    /// Closed at every minute of it.
    Closed,
    /// Open at some minutes: the intervals decide.
    Partly,
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
        self.is_open_in(WeekMinute::of(at).shifted(self.utc_offset_minutes))
    }

    /// Whether the merchant is open at minute `local` of its own week.
    pub fn is_open_in(&self, local: WeekMinute) -> bool {
        let (day, minute) = (local.0 / 1440, local.0 % 1440);
        let today = Weekday::from_index(day);
        let yesterday = Weekday::from_index((day + 6) % 7);
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
    use proptest::prelude::*;

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

    /// The calendar reading of "open at", as it was before week minutes:
    /// shift the instant, read its weekday and minute.
    fn open_by_calendar(hours: &OpeningHours, at: DateTime<Utc>) -> bool {
        let local = at + Duration::minutes(i64::from(hours.utc_offset_minutes));
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let today = local.weekday().num_days_from_monday() as u16;
        let (today, yesterday) = (Weekday::from_index(today), Weekday::from_index(today + 6));
        hours.intervals.iter().any(|i| {
            (i.day == today && i.open <= minute && minute < i.close)
                || (i.day == yesterday && i.close > 1440 && minute + 1440 < i.close)
        })
    }

    fn any_hours() -> impl Strategy<Value = OpeningHours> {
        // Out-of-range intervals and offsets too: the read side folds
        // whatever the log holds.
        let interval =
            (0u16..7, 0u16..1600, 0u16..3100).prop_map(|(d, open, close)| OpeningInterval {
                day: Weekday::from_index(d),
                open,
                close,
            });
        (-900i16..=900, proptest::collection::vec(interval, 0..6)).prop_map(
            |(utc_offset_minutes, intervals)| OpeningHours {
                utc_offset_minutes,
                intervals,
            },
        )
    }

    proptest! {
        #[test]
        fn week_minutes_and_the_mask_answer_as_the_calendar_does(
            hours in any_hours(),
            seconds in 1_700_000_000i64..1_900_000_000,
        ) {
            let at = DateTime::from_timestamp(seconds, 0).unwrap();
            let expected = open_by_calendar(&hours, at);
            prop_assert_eq!(hours.is_open_at(at), expected);
            let local = WeekMinute::of(at).shifted(hours.utc_offset_minutes);
            prop_assert_eq!(OpeningMask::of(&hours).is_open_in(local, &hours), expected);
        }

        #[test]
        fn every_minute_of_a_week_agrees_with_the_mask(hours in any_hours()) {
            let mask = OpeningMask::of(&hours);
            for minute in 0..WEEK_MINUTES {
                let local = WeekMinute(minute);
                prop_assert_eq!(mask.is_open_in(local, &hours), hours.is_open_in(local), "minute {}", minute);
            }
        }

        #[test]
        fn the_utc_summary_never_claims_a_wrong_hour(hours in any_hours()) {
            let utc = OpeningMask::of(&hours).in_utc(hours.utc_offset_minutes);
            let (mut throughout, mut closed) = (0, 0);
            for minute in 0..WEEK_MINUTES {
                let at = WeekMinute(minute);
                let open = hours.is_open_in(at.shifted(hours.utc_offset_minutes));
                match utc.hour(at.hour()) {
                    HourOpen::Throughout => { prop_assert!(open, "UTC minute {}", minute); throughout += 1 }
                    HourOpen::Closed => { prop_assert!(!open, "UTC minute {}", minute); closed += 1 }
                    HourOpen::Partly => {}
                }
            }
            // With whole-hour offsets nothing is lost: an hour is partly
            // open only where the local hour is.
            if hours.utc_offset_minutes % 60 == 0 {
                let local = OpeningMask::of(&hours);
                let partly = (0..WEEK_HOURS).filter(|&h| local.hour(h) == HourOpen::Partly).count();
                prop_assert_eq!(throughout + closed, (WEEK_HOURS - partly) * 60);
            }
        }
    }
}
