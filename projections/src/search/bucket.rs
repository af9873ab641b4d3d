//! One index cell's merchants, kept in order of distance from the cell's
//! centre so a query can walk them nearest-first and stop early; each
//! entry carries its merchant's location, so most candidates are ruled out
//! without reading the merchant.

use o2ohub_events::geo::{UnitPoint, EARTH_RADIUS_M};
use std::cmp::Ordering;

/// A merchant in a cell's bucket. Ordered (and equal) by `key_dm`, then
/// `merchant`; `at` follows the merchant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// Distance from the cell's centre to the merchant's location, in
    /// decimetres rounded down, so `key / 10` never exceeds the true distance
    /// and stays a valid lower bound.
    pub key_dm: u32,
    /// The merchant's slot in `MerchantSearch::merchants`.
    pub merchant: u32,
    /// The merchant's location.
    pub at: UnitVector,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.key_dm, self.merchant).cmp(&(other.key_dm, other.merchant))
    }
}

/// A point as a unit vector from the Earth's centre, in `f32`: twelve bytes
/// that give a lower bound of the great-circle distance with a subtraction,
/// three products and a square root — no trigonometry and no trip to the
/// merchant's profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct UnitVector([f32; 3]);

/// What `f32` rounding may take off a chord, in metres: each coordinate is
/// within 2⁻²⁴ of its true value, so the chord within 2·√3·2⁻²⁴ of the unit
/// sphere, about 1.3 m on the Earth.
const ROUNDING_M: f64 = 2.0;

impl UnitVector {
    /// The point's unit vector.
    pub fn of(point: &UnitPoint) -> Self {
        let [x, y, z] = point.0;
        UnitVector([x as f32, y as f32, z as f32])
    }

    /// A distance in metres that the great-circle distance between the two
    /// points (`LatLng::distance_m`) is never below. The chord `c` of the
    /// unit sphere and the arc `2·asin(c/2)` satisfy `arc ≥ c`, and haversine
    /// computes exactly that arc, so `R·c` less the rounding is a bound.
    pub fn distance_floor_m(&self, other: &UnitVector) -> f64 {
        let [a, b, c] = self.0;
        let [x, y, z] = other.0;
        let (dx, dy, dz) = (a - x, b - y, c - z);
        f64::from((dx * dx + dy * dy + dz * dz).sqrt()) * EARTH_RADIUS_M - ROUNDING_M
    }
}

/// Inserts land in an unsorted tail that is merged into the sorted run once
/// it holds a sixteenth of the bucket (at least `PENDING_MIN`): a sorted
/// insert into a bucket of thousands would move kilobytes per merchant and
/// per cell, where this moves about sixteen entries per insert, amortised.
/// A query reads the whole tail, then the run in order.
const PENDING_MIN: usize = 32;

/// The merchants whose service area may touch one cell.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bucket {
    /// Ascending by (`key_dm`, merchant).
    sorted: Vec<Entry>,
    /// Entries not yet merged into `sorted` (a bounded share of them).
    pending: Vec<Entry>,
}

impl Bucket {
    /// Adds a merchant.
    pub fn insert(&mut self, entry: Entry) {
        self.pending.push(entry);
        if self.pending.len() > PENDING_MIN.max(self.sorted.len() / 16) {
            self.merge_pending();
        }
    }

    /// Merges the sorted tail into the run from the back, in place: no
    /// allocation beyond the run's growth, and only entries greater than
    /// the smallest new one move.
    fn merge_pending(&mut self) {
        self.pending.sort_unstable();
        let (old, new) = (self.sorted.len(), self.pending.len());
        let filler = self.pending[0];
        self.sorted.resize(old + new, filler);
        let (mut i, mut j) = (old, new);
        while j > 0 {
            if i > 0 && self.sorted[i - 1] > self.pending[j - 1] {
                self.sorted[i + j - 1] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[i + j - 1] = self.pending[j - 1];
                j -= 1;
            }
        }
        self.pending.clear();
    }

    /// Removes a merchant; returns whether it was there.
    pub fn remove(&mut self, merchant: u32) -> bool {
        if let Some(i) = self.pending.iter().position(|e| e.merchant == merchant) {
            self.pending.swap_remove(i);
            return true;
        }
        if let Some(i) = self.sorted.iter().position(|e| e.merchant == merchant) {
            self.sorted.remove(i);
            return true;
        }
        false
    }

    /// Whether no merchant is left.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty() && self.pending.is_empty()
    }

    /// The unsorted tail (to be read whole).
    pub fn pending(&self) -> &[Entry] {
        &self.pending
    }

    /// The sorted run, nearest to the cell's centre first.
    pub fn sorted(&self) -> &[Entry] {
        &self.sorted
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use o2ohub_events::LatLng;

    #[test]
    fn stays_sorted_across_merges_and_removals() {
        let mut b = Bucket::default();
        let mut all = Vec::new();
        for i in 0..2000u32 {
            let e = Entry {
                key_dm: (i * 7919) % 1000,
                merchant: i,
                at: UnitVector::of(&LatLng::parse(31.2, 121.4).unwrap().unit()),
            };
            b.insert(e);
            all.push(e);
        }
        assert_eq!(b.len(), 2000);
        assert!(b.sorted().windows(2).all(|w| w[0] <= w[1]));
        let mut held: Vec<Entry> = b.sorted().iter().chain(b.pending()).copied().collect();
        held.sort();
        all.sort();
        assert_eq!(held, all);
        assert!(b.remove(5));
        assert!(!b.remove(5));
        assert_eq!(b.len(), 1999);
        for i in 0..2000 {
            b.remove(i);
        }
        assert!(b.is_empty());
    }

    #[test]
    fn the_distance_floor_never_exceeds_the_great_circle_distance() {
        // Near, far, across the antimeridian, at the poles, on the spot.
        let points = [
            (31.2304, 121.4737),
            (31.2305, 121.4738),
            (31.2404, 121.4937),
            (31.5, 121.9),
            (-33.87, 151.21),
            (0.0, 179.9999),
            (0.0, -179.9999),
            (89.9999, 10.0),
            (-89.9, -170.0),
            (59.33, 18.07),
        ];
        for &(a_lat, a_lng) in &points {
            for &(b_lat, b_lng) in &points {
                let (a, b) = (
                    LatLng::parse(a_lat, a_lng).unwrap(),
                    LatLng::parse(b_lat, b_lng).unwrap(),
                );
                let exact = a.distance_m(&b);
                let floor = UnitVector::of(&a.unit()).distance_floor_m(&UnitVector::of(&b.unit()));
                assert!(floor <= exact, "{a:?} → {b:?}: floor {floor} > {exact}");
                // Tight where the index uses it: within a few metres up to 10 km.
                if exact < 10_000.0 {
                    assert!(exact - floor < 5.0, "{a:?} → {b:?}: {floor} vs {exact}");
                }
            }
        }
    }
}
