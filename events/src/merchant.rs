//! Events of the `Merchant` aggregate (stream `merchant-<id>`).

use serde::{Deserialize, Serialize};

use crate::catalogue::event_family;
use crate::{LatLng, MerchantId, Money, OpeningHours, ServiceArea, StaffId};

/// What a merchant sells: the category consumers search by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Prepared food for delivery.
    FoodDelivery,
    /// Hair and beauty.
    Salon,
    /// Repairs of phones, bikes, appliances.
    Repair,
    /// Home cleaning.
    Cleaning,
    /// Restaurant tables.
    Restaurant,
}

impl Category {
    /// Every category, in a stable order.
    pub const ALL: [Category; 5] = [
        Category::FoodDelivery,
        Category::Salon,
        Category::Repair,
        Category::Cleaning,
        Category::Restaurant,
    ];

    /// The snake_case name used on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Category::FoodDelivery => "food_delivery",
            Category::Salon => "salon",
            Category::Repair => "repair",
            Category::Cleaning => "cleaning",
            Category::Restaurant => "restaurant",
        }
    }

    /// The inverse of [`Category::as_str`].
    pub fn parse(text: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// A bookable service of a merchant (a haircut, a table for two, a repair).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Merchant-local identifier, a short slug such as `haircut`.
    pub service_id: String,
    /// Display name.
    pub name: String,
    /// How long one booking lasts, in minutes (a multiple of the 15-minute grid).
    pub duration_minutes: u32,
    /// Price of one booking.
    pub price: Money,
    /// How many consumers one slot holds (chairs, tables, technicians).
    pub slot_capacity: u32,
}

/// Everything an operator states about a merchant; registration and updates
/// both carry the whole profile, so a fold never merges partial edits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MerchantProfile {
    /// Display name.
    pub name: String,
    /// The category consumers search by.
    pub category: Category,
    /// Where the store is.
    pub location: LatLng,
    /// Weekly opening hours.
    pub opening_hours: OpeningHours,
    /// Bookable services (empty for delivery-only merchants).
    pub services: Vec<Service>,
    /// Where the merchant serves.
    pub service_area: ServiceArea,
    /// Average rating in tenths of a star (0 = unrated, 50 = five stars).
    pub rating_tenths: u8,
}

/// An operator registered a merchant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MerchantRegistered {
    /// The new merchant.
    pub merchant_id: MerchantId,
    /// Its profile.
    pub profile: MerchantProfile,
}

/// An operator replaced a merchant's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MerchantUpdated {
    /// The new profile, whole.
    pub profile: MerchantProfile,
}

/// The merchant stopped taking bookings and orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantPaused {
    /// Why (shown to operators).
    pub reason: String,
}

/// The merchant takes bookings and orders again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantResumed {}

/// A member of staff may now act for this merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffAdded {
    /// The staff member's subject.
    pub staff_id: StaffId,
}

event_family! {
    /// Events of a merchant.
    MerchantEvent {
        /// See [`MerchantRegistered`].
        Registered(MerchantRegistered) = "MerchantRegistered" v 2,
        /// See [`MerchantUpdated`].
        Updated(MerchantUpdated) = "MerchantUpdated" v 1,
        /// See [`MerchantPaused`].
        Paused(MerchantPaused) = "MerchantPaused" v 1,
        /// See [`MerchantResumed`].
        Resumed(MerchantResumed) = "MerchantResumed" v 1,
        /// See [`StaffAdded`].
        StaffAdded(StaffAdded) = "MerchantStaffAdded" v 1,
    }
}
