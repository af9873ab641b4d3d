//! What a consumer asks the merchant search, validated on construction so
//! nothing unbounded ever reaches the index.

use chrono::{DateTime, Duration, Utc};
use o2ohub_events::geo::UnitPoint;
use o2ohub_events::schedule::{WeekMinute, SLOT_GRID_MINUTES};
use o2ohub_events::{Category, LatLng, SlotStart, ValueError};

/// Most results one query may ask for.
pub const MAX_RESULTS: usize = 100;
/// Largest distance limit a query may set, in metres (the largest service radius).
pub const MAX_QUERY_DISTANCE_M: f64 = 50_000.0;
/// Longest booking window a query may scan, in days.
pub const MAX_WINDOW_DAYS: i64 = 7;

const GRID_SECONDS: i64 = SLOT_GRID_MINUTES as i64 * 60;

/// A span of time in which a slot should start: `from <= to`, at most
/// [`MAX_WINDOW_DAYS`] long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotWindow {
    /// Earliest slot start wanted.
    from: DateTime<Utc>,
    /// Latest slot start wanted (inclusive).
    to: DateTime<Utc>,
}

impl SlotWindow {
    /// Validates a window; the error names `to` when it precedes `from` or
    /// lies more than seven days after it.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, ValueError> {
        if to < from {
            return Err(ValueError::new(
                "to",
                "the window must not end before it starts",
            ));
        }
        if to - from > Duration::days(MAX_WINDOW_DAYS) {
            return Err(ValueError::new("to", "the window may span at most 7 days"));
        }
        Ok(SlotWindow { from, to })
    }

    /// Earliest slot start wanted.
    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    /// Latest slot start wanted (inclusive).
    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }

    /// The window's ends in epoch seconds.
    pub(crate) fn epoch_bounds(&self) -> (i64, i64) {
        (self.from.timestamp(), self.to.timestamp())
    }

    /// Every slot start of the 15-minute grid inside the window, in order.
    pub fn starts(&self) -> impl Iterator<Item = SlotStart> {
        let from = self.from.timestamp() + i64::from(self.from.timestamp_subsec_nanos() > 0);
        let first = from.div_euclid(GRID_SECONDS) * GRID_SECONDS
            + if from.rem_euclid(GRID_SECONDS) > 0 {
                GRID_SECONDS
            } else {
                0
            };
        let last = self.to.timestamp();
        (0..)
            .map(move |i| first + i * GRID_SECONDS)
            .take_while(move |s| *s <= last)
            .filter_map(|s| DateTime::from_timestamp(s, 0))
            .filter_map(|at| SlotStart::parse(at).ok())
    }
}

/// "Merchants of `category` that serve `point`, open at `at`, nearest first":
/// optionally within `max_distance_m` and with a free seat in a slot starting
/// in `window`.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// What the consumer is looking for.
    category: Category,
    /// Where the consumer is (or wants the service).
    point: LatLng,
    /// `point` as a unit vector, measured against every candidate.
    unit: UnitPoint,
    /// When the merchant must be open.
    at: DateTime<Utc>,
    /// `at` as a UTC minute of the week, read once for every candidate.
    at_week: WeekMinute,
    /// How many results, 1..=100.
    k: usize,
    /// Only merchants at most this far from `point` (metres).
    max_distance_m: Option<f64>,
    /// Only merchants with a free seat in a slot starting in this window.
    window: Option<SlotWindow>,
}

impl SearchQuery {
    /// Validates a query: `k` in 1..=100, `max_distance_m` finite, positive
    /// and at most 50 km. (`point` and `window` are validated by their types.)
    pub fn new(
        category: Category,
        point: LatLng,
        at: DateTime<Utc>,
        k: usize,
        max_distance_m: Option<f64>,
        window: Option<SlotWindow>,
    ) -> Result<Self, ValueError> {
        if !(1..=MAX_RESULTS).contains(&k) {
            return Err(ValueError::new("k", "ask for between 1 and 100 results"));
        }
        if let Some(d) = max_distance_m {
            if !d.is_finite() || d <= 0.0 || d > MAX_QUERY_DISTANCE_M {
                return Err(ValueError::new(
                    "max_distance_m",
                    "the distance limit must be more than 0 and at most 50000 metres",
                ));
            }
        }
        Ok(SearchQuery {
            category,
            point,
            unit: point.unit(),
            at,
            at_week: WeekMinute::of(at),
            k,
            max_distance_m,
            window,
        })
    }

    /// The category searched.
    pub fn category(&self) -> Category {
        self.category
    }

    /// The consumer's point.
    pub fn point(&self) -> LatLng {
        self.point
    }

    /// The consumer's point as a unit vector.
    pub fn unit(&self) -> &UnitPoint {
        &self.unit
    }

    /// When the merchant must be open.
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// `at` as a UTC minute of the week.
    pub fn at_week(&self) -> WeekMinute {
        self.at_week
    }

    /// How many results at most.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The distance limit, if any.
    pub fn max_distance_m(&self) -> Option<f64> {
        self.max_distance_m
    }

    /// The booking window, if any.
    pub fn window(&self) -> Option<&SlotWindow> {
        self.window.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use o2ohub_events::schedule::utc;

    #[test]
    fn window_starts_are_the_grid_inside_it() {
        let w = SlotWindow::new(utc(2026, 11, 25, 10, 1), utc(2026, 11, 25, 10, 45)).unwrap();
        let starts: Vec<_> = w.starts().map(|s| s.at()).collect();
        assert_eq!(
            starts,
            vec![
                utc(2026, 11, 25, 10, 15),
                utc(2026, 11, 25, 10, 30),
                utc(2026, 11, 25, 10, 45)
            ]
        );
        let exact = SlotWindow::new(utc(2026, 11, 25, 10, 0), utc(2026, 11, 25, 10, 0)).unwrap();
        assert_eq!(exact.starts().count(), 1);
    }
}
