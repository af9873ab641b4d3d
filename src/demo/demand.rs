//! The day's demand: when consumers want a delivery or a visit, drawn from a
//! day curve with lunch and dinner peaks (weekdays and weekends shaped
//! differently) by thinning a Poisson process minute by minute, and how each
//! story is meant to end (a visit redeemed, cancelled or missed; an order
//! cancelled or not). Pure and seeded, so a day can be played again.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use o2ohub_events::Category;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use super::city::{weighted, City, Rng, UTC_OFFSET_MINUTES};

/// How a booked visit is meant to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// The consumer comes; staff redeem the code, then complete the visit.
    Redeemed,
    /// The consumer cancels before the slot.
    Cancelled,
    /// The consumer does not come; staff mark a no-show.
    NoShow,
}

/// What a consumer wants.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Want {
    /// A delivery from a food merchant near home.
    Delivery {
        /// Items (index into the chosen merchant's menu, quantity).
        lines: Vec<(usize, u32)>,
        /// The consumer cancels before the store accepts.
        cancels: bool,
    },
    /// A visit of a category, some minutes ahead.
    Visit {
        /// What kind of merchant.
        category: Category,
        /// Earliest slot, minutes after asking.
        lead_minutes: u32,
        /// How it is meant to end.
        fate: Fate,
    },
}

/// One consumer's request at one moment of the day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Demand {
    /// When (business time).
    pub at: DateTime<Utc>,
    /// Which consumer (index into the city's consumers).
    pub consumer: usize,
    /// What they want.
    pub want: Want,
    /// Seed of this story's own choices (which merchant, which slot).
    pub seed: u64,
}

/// The business hours the demo plays, and its demand (written to
/// `<data dir>/demand.json`, so a replay can play the same requests).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    /// First instant (business time).
    pub start: DateTime<Utc>,
    /// Last instant; nothing new is asked after it.
    pub end: DateTime<Utc>,
    /// Requests in time order.
    pub demands: Vec<Demand>,
}

/// The local hour the demo day starts at.
pub const DAY_START_LOCAL_HOUR: u32 = 11;

/// The business date of a seed's day: a week of dates so the seed picks the
/// weekday (Monday 2026-12-07 plus seed mod 7), at 11:00 local.
pub fn day_start(seed: u64) -> DateTime<Utc> {
    let monday = o2ohub_events::schedule::utc(2026, 12, 7, 0, 0);
    monday + Duration::days((seed % 7) as i64) + Duration::hours(i64::from(DAY_START_LOCAL_HOUR))
        - Duration::minutes(i64::from(UTC_OFFSET_MINUTES))
}

/// Minutes after local midnight of an instant, and whether it is a weekend.
pub fn local_minute(at: DateTime<Utc>) -> (u32, bool) {
    let local = at + Duration::minutes(i64::from(UTC_OFFSET_MINUTES));
    let weekend = local.weekday().number_from_monday() >= 6;
    (local.hour() * 60 + local.minute(), weekend)
}

/// A bump centred on `at` minutes, `width` minutes wide (one sigma).
fn bump(minute: f64, at: f64, width: f64) -> f64 {
    (-0.5 * ((minute - at) / width).powi(2)).exp()
}

/// Relative delivery demand (peak about 1) at a local minute.
pub fn delivery_curve(minute: u32, weekend: bool) -> f64 {
    let m = f64::from(minute % 1440);
    let (lunch, dinner, base) = if weekend {
        (bump(m, 12.75 * 60.0, 70.0), bump(m, 19.0 * 60.0, 90.0), 0.3)
    } else {
        (
            bump(m, 12.25 * 60.0, 45.0),
            bump(m, 18.75 * 60.0, 60.0),
            0.15,
        )
    };
    let night = if !(7 * 60..23 * 60).contains(&minute) {
        0.3
    } else {
        1.0
    };
    (base + lunch + 0.95 * dinner).min(1.0) * night
}

/// Relative visit demand at a local minute: flat through the day, busier on weekends.
pub fn visit_curve(minute: u32, weekend: bool) -> f64 {
    let m = f64::from(minute % 1440);
    let day = bump(m, 15.0 * 60.0, 200.0);
    if weekend {
        0.4 + 0.6 * day
    } else {
        0.25 + 0.5 * day
    }
}

/// A Poisson draw with a small mean (Knuth).
fn poisson(rng: &mut Rng, mean: f64) -> u32 {
    let limit = (-mean).exp();
    let (mut k, mut p) = (0, 1.0);
    loop {
        p *= rng.random::<f64>();
        if p <= limit {
            return k;
        }
        k += 1;
    }
}

/// Draws the demand of `hours` from `start` for `city`. The peak rates scale
/// with the city: deliveries with the riders, visits with the merchants who
/// take bookings.
pub fn draw(city: &City, start: DateTime<Utc>, hours: f64) -> Day {
    let mut rng = Rng::seed_from_u64(city.seed ^ 0x5eed_dea1);
    let end = start + Duration::seconds((hours * 3600.0) as i64);
    let riders = city.riders.len().max(1) as f64;
    let bookable = city
        .merchants
        .iter()
        .filter(|m| !m.profile.services.is_empty())
        .count() as f64;
    let deliveries_per_peak_hour = 1.4 * riders;
    let visits_per_peak_hour = 0.7 * bookable;
    let categories = [
        (Category::Restaurant, 0.35),
        (Category::Salon, 0.3),
        (Category::Repair, 0.15),
        (Category::Cleaning, 0.2),
    ];
    let category_weights: Vec<f64> = categories.iter().map(|c| c.1).collect();
    let home_weights: Vec<f64> = vec![1.0; city.consumers.len()];
    // People book 15 minutes to 2.5 hours ahead; in a short day, sooner.
    let longest_lead = ((hours * 60.0 / 3.0) as u32).clamp(15, 150);
    let mut demands = Vec::new();
    let mut minute_start = start;
    while minute_start < end {
        let (minute, weekend) = local_minute(minute_start);
        let wants_delivery = deliveries_per_peak_hour / 60.0 * delivery_curve(minute, weekend);
        let wants_visit = visits_per_peak_hour / 60.0 * visit_curve(minute, weekend);
        let mut this_minute = Vec::new();
        for _ in 0..poisson(&mut rng, wants_delivery) {
            let lines = (0..rng.random_range(1..=3))
                .map(|_| (rng.random_range(0..16), rng.random_range(1..=2)))
                .collect();
            this_minute.push(Want::Delivery {
                lines,
                cancels: rng.random_bool(0.03),
            });
        }
        for _ in 0..poisson(&mut rng, wants_visit) {
            let fate = [Fate::Redeemed, Fate::Cancelled, Fate::NoShow]
                [weighted(&mut rng, &[0.8, 0.12, 0.08])];
            this_minute.push(Want::Visit {
                category: categories[weighted(&mut rng, &category_weights)].0,
                lead_minutes: rng.random_range(15..=longest_lead),
                fate,
            });
        }
        for want in this_minute {
            let at = minute_start + Duration::seconds(rng.random_range(0..60));
            if at >= end || city.consumers.is_empty() {
                continue;
            }
            demands.push(Demand {
                at,
                consumer: weighted(&mut rng, &home_weights),
                want,
                seed: rng.random(),
            });
        }
        minute_start += Duration::minutes(1);
    }
    demands.sort_by_key(|d| d.at);
    Day {
        start,
        end,
        demands,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::city::{generate, CitySize};

    #[test]
    fn lunch_and_dinner_are_the_peaks() {
        for weekend in [false, true] {
            let lunch = delivery_curve(12 * 60 + 30, weekend);
            let dinner = delivery_curve(19 * 60, weekend);
            let afternoon = delivery_curve(16 * 60, weekend);
            assert!(
                lunch > 2.0 * afternoon && dinner > 2.0 * afternoon,
                "{lunch} {dinner} {afternoon}"
            );
        }
        assert!(visit_curve(15 * 60, true) > visit_curve(15 * 60, false));
    }

    #[test]
    fn a_day_is_reproducible_ordered_and_inside_its_hours() {
        let city = generate(
            5,
            CitySize {
                merchants: 30,
                riders: 10,
                consumers: 100,
            },
        );
        let start = day_start(5);
        let a = draw(&city, start, 12.0);
        assert_eq!(a, draw(&city, start, 12.0));
        assert!(a.demands.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(a.demands.iter().all(|d| d.at >= a.start && d.at < a.end));
        let deliveries = a
            .demands
            .iter()
            .filter(|d| matches!(d.want, Want::Delivery { .. }))
            .count();
        assert!(
            deliveries > 50,
            "{deliveries} deliveries in a day of 10 riders"
        );
        assert_eq!(local_minute(start).0, DAY_START_LOCAL_HOUR * 60);
    }
}
