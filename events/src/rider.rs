//! Events of the `Rider` aggregate (stream `rider-<id>`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalogue::event_family;
use crate::{LatLng, RiderId};

/// How a rider moves; sets speed and capacity defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleType {
    /// On foot.
    Foot,
    /// Bicycle.
    Bicycle,
    /// Motor scooter.
    Scooter,
    /// Car.
    Car,
}

/// An operator registered a rider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiderRegistered {
    /// The new rider.
    pub rider_id: RiderId,
    /// Display name (riders are staff of the platform, not consumers: not PII-sealed).
    pub name: String,
    /// How the rider moves.
    pub vehicle: VehicleType,
    /// How many orders the rider can carry at once.
    pub capacity: u32,
}

/// The rider went on shift at a position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftStarted {
    /// Where the shift starts.
    pub position: LatLng,
}

/// The rider went off shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftEnded {}

/// A sampled position report (not every GPS fix becomes an event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionReported {
    /// The reported position.
    pub position: LatLng,
    /// When the device took the fix.
    pub fixed_at: DateTime<Utc>,
}

event_family! {
    /// Events of a rider.
    RiderEvent {
        /// See [`RiderRegistered`].
        Registered(RiderRegistered) = "RiderRegistered" v 1,
        /// See [`ShiftStarted`].
        ShiftStarted(ShiftStarted) = "RiderShiftStarted" v 1,
        /// See [`ShiftEnded`].
        ShiftEnded(ShiftEnded) = "RiderShiftEnded" v 1,
        /// See [`PositionReported`].
        PositionReported(PositionReported) = "RiderPositionReported" v 1,
    }
}
