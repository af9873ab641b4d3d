//! A merchant's card: the facts a query tests on every candidate, in one
//! 32-byte record per merchant position, two to a cache line. The index
//! walk reads a candidate's card instead of its profile (a few hundred
//! bytes across several cache lines and pages, with the area, hours and
//! seats behind further pointers), and goes on to the profile only for
//! what the card cannot settle: a polygon, an hour in which the merchant
//! opens or closes, a booking window, seats already held.

use o2ohub_events::geo::UnitPoint;
use o2ohub_events::Category;

/// How a merchant's service area is tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// No profile yet, or an area that serves no point: never a hit.
    Nowhere,
    /// Points within [`Card::radius_m`] of the merchant.
    Radius,
    /// Points inside a polygon: the exact test needs the profile's shape.
    Polygon,
}

/// One merchant as the walk first sees it (see the module doc).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Card {
    /// The merchant's location as a unit vector: its exact distance from a
    /// query point costs no read of the profile.
    pub unit: UnitPoint,
    /// The service radius in metres when `reach` is [`Reach::Radius`]
    /// (radii are whole metres ≤ 50 km, so exact in an `f32`).
    pub radius_m: f32,
    /// How the area is tested.
    pub reach: Reach,
    /// The category searched by.
    pub category: Category,
    /// Rating in tenths of a star, read for every hit.
    pub rating_tenths: u8,
    /// [`Card::PAUSED`] and [`Card::BOOKED`].
    pub flags: u8,
}

impl Card {
    /// The merchant has stopped taking bookings.
    pub const PAUSED: u8 = 1;
    /// Some seat of the merchant is held, so its load needs the ledger.
    pub const BOOKED: u8 = 2;

    /// The card of a position whose profile is not known yet.
    pub fn unlisted() -> Self {
        Card {
            unit: UnitPoint([0.0; 3]),
            radius_m: 0.0,
            reach: Reach::Nowhere,
            category: Category::FoodDelivery,
            rating_tenths: 0,
            flags: 0,
        }
    }

    /// Sets or clears one of the flags.
    pub fn set(&mut self, flag: u8, on: bool) {
        self.flags = if on {
            self.flags | flag
        } else {
            self.flags & !flag
        };
    }

    /// Whether a flag is set.
    pub fn is(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cards_share_a_cache_line() {
        assert_eq!(std::mem::size_of::<Card>(), 32);
    }

    #[test]
    fn flags_set_and_clear_independently() {
        let mut card = Card::unlisted();
        card.set(Card::PAUSED, true);
        card.set(Card::BOOKED, true);
        card.set(Card::PAUSED, false);
        assert!(!card.is(Card::PAUSED));
        assert!(card.is(Card::BOOKED));
    }
}
