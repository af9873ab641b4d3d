//! Travel models: how long and how far between two points. The solver only
//! queries the model while compiling a [`super::model::Model`], so a slow model
//! (road network look-ups) costs O(nodes²) calls once, never during search.

/// A location. Planar coordinates for benchmark instances; for geographic
/// models `x` is longitude and `y` latitude in degrees.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// Abscissa or longitude.
    pub x: f64,
    /// Ordinate or latitude.
    pub y: f64,
}

impl Point {
    /// Builds a point.
    pub fn new(x: f64, y: f64) -> Self {
        Point { x, y }
    }
}

/// Travel time and distance between points. Implementations must return
/// finite, non-negative values; `time(a, a)` should be 0.
pub trait TravelModel: Send + Sync {
    /// Distance counted in the objective.
    fn distance(&self, a: Point, b: Point) -> f64;
    /// Travel time used for the schedule.
    fn time(&self, a: Point, b: Point) -> f64;
}

/// Euclidean distance in double precision, travel time equal to distance
/// (the Li & Lim / Solomon convention).
#[derive(Debug, Clone, Copy, Default)]
pub struct Euclidean;

impl TravelModel for Euclidean {
    fn distance(&self, a: Point, b: Point) -> f64 {
        (a.x - b.x).hypot(a.y - b.y)
    }
    fn time(&self, a: Point, b: Point) -> f64 {
        self.distance(a, b)
    }
}

/// Great-circle distance (metres) times a detour factor; time is that
/// distance divided by a speed (metres per time unit).
#[derive(Debug, Clone, Copy)]
pub struct Haversine {
    /// Road distance ÷ great-circle distance, typically 1.2–1.4.
    pub detour: f64,
    /// Metres per time unit.
    pub speed: f64,
}

impl TravelModel for Haversine {
    fn distance(&self, a: Point, b: Point) -> f64 {
        const R: f64 = 6_371_000.0;
        let (la1, la2) = (a.y.to_radians(), b.y.to_radians());
        let dla = la2 - la1;
        let dlo = (b.x - a.x).to_radians();
        let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
        2.0 * R * h.sqrt().min(1.0).asin() * self.detour
    }
    fn time(&self, a: Point, b: Point) -> f64 {
        self.distance(a, b) / self.speed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euclidean_is_hypot() {
        let d = Euclidean.distance(Point::new(0.0, 0.0), Point::new(3.0, 4.0));
        assert_eq!(d, 5.0);
        assert_eq!(
            Euclidean.time(Point::new(0.0, 0.0), Point::new(3.0, 4.0)),
            5.0
        );
    }

    #[test]
    fn haversine_one_degree_latitude() {
        let h = Haversine {
            detour: 1.0,
            speed: 10.0,
        };
        let d = h.distance(Point::new(0.0, 0.0), Point::new(0.0, 1.0));
        assert!((d - 111_195.0).abs() < 10.0, "{d}");
        assert!((h.time(Point::new(0.0, 0.0), Point::new(0.0, 1.0)) - d / 10.0).abs() < 1e-9);
    }
}
