//! Which merchants can be found in each hour of the UTC week: two bits per
//! merchant and hour (open at some minute of it, open throughout it), one
//! bitset per hour. The index walk asks it before reading a candidate: in
//! a city at a given hour most candidates are closed (or paused), and this
//! rules them out on a bitset of a few kilobytes instead of a cache miss on
//! each merchant's profile.

use o2ohub_events::schedule::{HourOpen, OpeningMask, WEEK_HOURS};

/// Per hour of the UTC week, for 64 merchants at a time: the word of those
/// open at some minute, then the word of those open throughout.
#[derive(Debug, Clone)]
pub(crate) struct OpenByHour {
    hours: Vec<Vec<u64>>,
}

impl Default for OpenByHour {
    fn default() -> Self {
        OpenByHour {
            hours: vec![Vec::new(); WEEK_HOURS],
        }
    }
}

impl OpenByHour {
    /// Sets what `merchant` is in every hour: its opening hours summarised
    /// per UTC hour ([`OpeningMask::in_utc`]), or `None` for a merchant no
    /// query may find (no profile, paused).
    pub fn set(&mut self, merchant: u32, utc: Option<&OpeningMask>) {
        let (word, bit) = (2 * (merchant as usize / 64), 1u64 << (merchant % 64));
        for (hour, words) in self.hours.iter_mut().enumerate() {
            if words.len() <= word {
                if utc.is_none() {
                    continue; // already clear
                }
                words.resize(word + 2, 0);
            }
            let state = utc.map_or(HourOpen::Closed, |m| m.hour(hour));
            let (some, throughout) = (state != HourOpen::Closed, state == HourOpen::Throughout);
            words[word] = (words[word] & !bit) | if some { bit } else { 0 };
            words[word + 1] = (words[word + 1] & !bit) | if throughout { bit } else { 0 };
        }
    }

    /// What `merchant` is in UTC hour `hour` of the week (0..168).
    pub fn at(&self, hour: usize, merchant: u32) -> HourOpen {
        let words = &self.hours[hour];
        let (word, bit) = (2 * (merchant as usize / 64), 1u64 << (merchant % 64));
        let Some(&[some, throughout]) = words.get(word..word + 2) else {
            return HourOpen::Closed;
        };
        if throughout & bit != 0 {
            HourOpen::Throughout
        } else if some & bit != 0 {
            HourOpen::Partly
        } else {
            HourOpen::Closed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use o2ohub_events::schedule::OpeningHours;

    #[test]
    fn bits_follow_each_merchant_and_hour() {
        let mut open = OpenByHour::default();
        // 09:00-17:30 local at UTC+8: 01:00-09:30 UTC every day.
        let hours = OpeningHours::daily(480, 9 * 60, 17 * 60 + 30);
        let utc = OpeningMask::of(&hours).in_utc(480);
        open.set(130, Some(&utc));
        assert_eq!(open.at(0, 130), HourOpen::Closed);
        assert_eq!(open.at(1, 130), HourOpen::Throughout);
        assert_eq!(open.at(8, 130), HourOpen::Throughout);
        assert_eq!(open.at(9, 130), HourOpen::Partly);
        assert_eq!(open.at(24 + 5, 130), HourOpen::Throughout);
        // Its neighbours and merchants beyond the bitsets are untouched.
        assert_eq!(open.at(5, 129), HourOpen::Closed);
        assert_eq!(open.at(5, 131), HourOpen::Closed);
        assert_eq!(open.at(5, 100_000), HourOpen::Closed);
        open.set(129, Some(&utc));
        open.set(130, None);
        assert_eq!(open.at(5, 130), HourOpen::Closed);
        assert_eq!(open.at(5, 129), HourOpen::Throughout);
    }
}
