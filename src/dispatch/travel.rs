//! Travel between two points for a rider: great-circle distance times a
//! detour factor (streets are not straight lines), divided by the speed of
//! the rider's vehicle. It goes through the optimiser's [`TravelModel`]
//! trait, so a road-network model can replace it in one place.

use o2ohub_events::{LatLng, VehicleType};

use crate::routing::{Haversine, Point, TravelModel};

/// Road metres per great-circle metre in a dense city.
pub const DETOUR: f64 = 1.3;

/// Average speed of a vehicle type in a city, metres per second.
pub fn speed_mps(vehicle: VehicleType) -> f64 {
    match vehicle {
        VehicleType::Foot => 1.3,
        VehicleType::Bicycle => 4.2,
        VehicleType::Scooter => 6.9,
        VehicleType::Car => 6.1,
    }
}

/// Travel for one vehicle type.
#[derive(Debug, Clone, Copy)]
pub struct Travel {
    model: Haversine,
}

impl Travel {
    /// Travel by `vehicle`.
    pub fn of(vehicle: VehicleType) -> Travel {
        Travel {
            model: Haversine {
                detour: DETOUR,
                speed: speed_mps(vehicle),
            },
        }
    }

    /// Road metres between two points.
    pub fn distance_m(&self, a: &LatLng, b: &LatLng) -> f64 {
        self.model.distance(point(a), point(b))
    }

    /// Seconds to ride `metres`.
    pub fn seconds(&self, metres: f64) -> f64 {
        metres / self.model.speed
    }

    /// Metres per second.
    pub fn speed(&self) -> f64 {
        self.model.speed
    }
}

fn point(p: &LatLng) -> Point {
    Point::new(p.lng, p.lat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kilometre_north_is_about_1300_road_metres() {
        let a = LatLng::parse(31.0, 121.0).unwrap();
        let b = LatLng::parse(31.0 + 1.0 / 111.195, 121.0).unwrap();
        let t = Travel::of(VehicleType::Bicycle);
        assert!((t.distance_m(&a, &b) - 1300.0).abs() < 2.0);
        assert!((t.seconds(4200.0) - 1000.0).abs() < 1e-9);
        assert!(speed_mps(VehicleType::Foot) < speed_mps(VehicleType::Car));
    }
}
