//! Coordinates and service areas. Values are validated when parsed, so a
//! `LatLng` in an event is always a finite WGS84 point.

use serde::{Deserialize, Serialize};

use crate::ValueError;

/// The mean Earth radius (IUGG) that distances are measured on, in metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A WGS84 point: latitude in [-90, 90], longitude in [-180, 180], finite.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatLng {
    /// Degrees north of the equator.
    pub lat: f64,
    /// Degrees east of Greenwich.
    pub lng: f64,
}

impl LatLng {
    /// Validates and builds a point; `field` names the input for the error.
    pub fn parse(lat: f64, lng: f64) -> Result<Self, ValueError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(ValueError::new(
                "lat",
                "latitude must be a finite number in [-90, 90]",
            ));
        }
        if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
            return Err(ValueError::new(
                "lng",
                "longitude must be a finite number in [-180, 180]",
            ));
        }
        Ok(Self { lat, lng })
    }

    /// Great-circle distance in metres (haversine on a sphere of
    /// [`EARTH_RADIUS_M`]).
    pub fn distance_m(&self, other: &LatLng) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lng - self.lng).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }

    /// The point as a unit vector from the Earth's centre.
    pub fn unit(&self) -> UnitPoint {
        let (lat, lng) = (self.lat.to_radians(), self.lng.to_radians());
        UnitPoint([lat.cos() * lng.cos(), lat.cos() * lng.sin(), lat.sin()])
    }
}

/// A point as a unit vector from the Earth's centre, for measuring one point
/// against many: the haversine's `sin²(Δφ/2) + cos φ₁ cos φ₂ sin²(Δλ/2)` is
/// `(c/2)²` for the chord `c` between the two unit vectors, so
/// [`UnitPoint::distance_m`] is [`LatLng::distance_m`] with each point's
/// trigonometry paid once instead of per pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitPoint(pub [f64; 3]);

impl UnitPoint {
    /// Great-circle distance in metres, as [`LatLng::distance_m`] measures it.
    pub fn distance_m(&self, other: &UnitPoint) -> f64 {
        let [a, b, c] = self.0;
        let [x, y, z] = other.0;
        let (dx, dy, dz) = (a - x, b - y, c - z);
        let half_chord = (dx * dx + dy * dy + dz * dz).sqrt() / 2.0;
        2.0 * EARTH_RADIUS_M * half_chord.min(1.0).asin()
    }
}

// Deserialising goes through `parse`, so an event or request can never carry
// an out-of-range point.
impl<'de> Deserialize<'de> for LatLng {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            lat: f64,
            lng: f64,
        }
        let raw = Raw::deserialize(d)?;
        LatLng::parse(raw.lat, raw.lng).map_err(serde::de::Error::custom)
    }
}

/// Largest service radius accepted: a city, not a country.
pub const MAX_SERVICE_RADIUS_M: u32 = 50_000;

/// Where a merchant serves consumers (delivers to, or accepts bookings from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServiceArea {
    /// Everything within `meters` of the merchant's location.
    Radius {
        /// Radius in metres, 1..=50 000.
        meters: u32,
    },
    /// A simple polygon; the ring is implicitly closed.
    Polygon {
        /// The exterior ring, at least three distinct points.
        ring: Vec<LatLng>,
    },
}

impl ServiceArea {
    /// Checks the shape: a positive, bounded radius or a ring of at least
    /// three distinct points. (Self-intersection is checked where the `geo`
    /// crate is at hand, in the hub's command validation.)
    pub fn validate(&self) -> Result<(), ValueError> {
        match self {
            ServiceArea::Radius { meters } => {
                if *meters == 0 || *meters > MAX_SERVICE_RADIUS_M {
                    return Err(ValueError::new(
                        "service_area.meters",
                        "radius must be between 1 and 50000 metres",
                    ));
                }
            }
            ServiceArea::Polygon { ring } => {
                let mut distinct: Vec<&LatLng> = Vec::new();
                for p in ring {
                    if !distinct.contains(&p) {
                        distinct.push(p);
                    }
                }
                if distinct.len() < 3 {
                    return Err(ValueError::new(
                        "service_area.ring",
                        "a polygon needs at least three distinct points",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The chord form measures what the haversine does, from centimetres
        /// to most of the way round the planet.
        #[test]
        fn unit_points_measure_as_the_haversine(
            lat in -89.9f64..89.9, lng in -180.0f64..180.0,
            bearing in 0.0f64..std::f64::consts::TAU, step in -7.0f64..2.2,
        ) {
            let a = LatLng::parse(lat, lng).unwrap();
            let d = 10f64.powf(step); // degrees: ~1 cm to ~160°
            let b = LatLng::parse(
                (lat + d * bearing.sin()).clamp(-90.0, 90.0),
                ((lng + d * bearing.cos() + 540.0) % 360.0) - 180.0,
            ).unwrap();
            let (haversine, chord) = (a.distance_m(&b), a.unit().distance_m(&b.unit()));
            prop_assert!(
                (haversine - chord).abs() <= 1e-6 + haversine * 1e-9,
                "haversine {haversine} m, chord form {chord} m"
            );
        }
    }

    #[test]
    fn rejects_out_of_range_and_non_finite() {
        assert!(LatLng::parse(91.0, 0.0).is_err());
        assert!(LatLng::parse(0.0, -180.5).is_err());
        assert!(LatLng::parse(f64::NAN, 0.0).is_err());
        assert!(LatLng::parse(0.0, f64::INFINITY).is_err());
        assert!(LatLng::parse(-90.0, 180.0).is_ok());
        let err = serde_json::from_str::<LatLng>(r#"{"lat":100,"lng":0}"#).unwrap_err();
        assert!(err.to_string().contains("latitude"), "{err}");
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        // Paris (Notre-Dame) to London (Trafalgar Square): about 343.5 km.
        let paris = LatLng::parse(48.8530, 2.3499).unwrap();
        let london = LatLng::parse(51.5080, -0.1281).unwrap();
        let d = paris.distance_m(&london);
        assert!((d - 343_500.0).abs() < 1_500.0, "{d}");
    }

    #[test]
    fn service_area_shapes() {
        assert!(ServiceArea::Radius { meters: 0 }.validate().is_err());
        assert!(ServiceArea::Radius { meters: 50_001 }.validate().is_err());
        assert!(ServiceArea::Radius { meters: 3_000 }.validate().is_ok());
        let p = |a, b| LatLng::parse(a, b).unwrap();
        let degenerate = ServiceArea::Polygon {
            ring: vec![p(1.0, 1.0), p(1.0, 1.0), p(2.0, 2.0)],
        };
        assert!(degenerate.validate().is_err());
        let tri = ServiceArea::Polygon {
            ring: vec![p(1.0, 1.0), p(1.0, 2.0), p(2.0, 2.0)],
        };
        assert!(tri.validate().is_ok());
    }
}
