//! Service areas as the index sees them: the exact "does this merchant serve
//! that point" test, and the H3 cells that cover the area.
//!
//! Covers are supersets: a cell is listed when it may touch the area, and the
//! exact test runs on every candidate, so a generous cover costs a few
//! rejected candidates, never a wrong answer.

use geo::{Area as _, BoundingRect as _, Contains as _, Intersects as _, Validation as _};
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, Resolution};
use o2ohub_events::geo::{EARTH_RADIUS_M, MAX_SERVICE_RADIUS_M};
use o2ohub_events::{LatLng, ServiceArea};
use std::collections::{HashSet, VecDeque};

use crate::hashing::{Map, Seeded};

/// Rounding slack, in metres, added wherever a bound must stay conservative.
pub(crate) const SLACK_M: f64 = 0.5;

/// A merchant's service area, ready for point tests.
#[derive(Debug, Clone)]
pub(crate) enum Shape {
    /// Points within `meters` (haversine) of the merchant's location.
    Radius {
        /// 1..=50 000.
        meters: f64,
    },
    /// Points inside or on a simple polygon (planar in degrees, as `geo`
    /// and the H3 tiler both treat it).
    Polygon(Box<PolygonArea>),
    /// A degenerate area (self-intersecting, empty, out of bounds): serves no
    /// one. The write side refuses these; the read side must survive them.
    Nothing,
}

/// A validated polygon and its bounding box (a cheap first test).
#[derive(Debug, Clone)]
pub(crate) struct PolygonArea {
    polygon: geo::Polygon<f64>,
    bbox: geo::Rect<f64>,
    /// Whether it reaches beyond ±60° latitude, where covers use the tiler.
    polar: bool,
    /// A disk around the store, in the polygon's own plane (degrees), that
    /// lies wholly inside it — its centre and squared radius — when the
    /// store is inside: most points a search tests are near the store, and
    /// one comparison settles them without the exact test.
    inner: Option<(geo::Coord<f64>, f64)>,
}

/// Metres per degree of latitude on the mean sphere `LatLng::distance_m` uses.
const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

impl PolygonArea {
    /// Whether `c` lies in the inscribed disk around the store (and so
    /// inside the polygon).
    fn near_store(&self, c: &geo::Coord<f64>) -> bool {
        self.inner.is_some_and(|(centre, r2)| {
            let (dx, dy) = (c.x - centre.x, c.y - centre.y);
            dx * dx + dy * dy < r2
        })
    }

    /// Whether some point of the polygon lies within `reach_m` of `at`.
    /// Distances to the edges are measured on a flat projection around
    /// `at`; below 60° latitude and within the 50 km a polygon may span its
    /// error stays under 2%, so the test allows 3% and stays a superset.
    fn within(&self, at: &LatLng, reach_m: f64) -> bool {
        let reach = reach_m * 1.03 + SLACK_M + 1.0;
        let kx = at.lat.to_radians().cos() * M_PER_DEG;
        let project = |c: &geo::Coord<f64>| ((c.x - at.lng) * kx, (c.y - at.lat) * M_PER_DEG);
        let (min, max) = (project(&self.bbox.min()), project(&self.bbox.max()));
        let dx = (min.0.max(0.0)).max(-max.0);
        let dy = (min.1.max(0.0)).max(-max.1);
        if dx.max(0.0).hypot(dy.max(0.0)) > reach {
            return false;
        }
        if self
            .polygon
            .intersects(&geo::coord! { x: at.lng, y: at.lat })
        {
            return true;
        }
        self.polygon.exterior().lines().any(|line| {
            let (a, b) = (project(&line.start), project(&line.end));
            segment_distance(a, b) <= reach
        })
    }
}

/// Distance from the origin to the segment [a, b] in the plane.
fn segment_distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (vx, vy) = (b.0 - a.0, b.1 - a.1);
    let len2 = vx * vx + vy * vy;
    let t = if len2 > 0.0 {
        (-(a.0 * vx + a.1 * vy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (a.0 + t * vx).hypot(a.1 + t * vy)
}

/// What a cover is computed for.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// Points within `meters` of `location`.
    Disk {
        /// The centre.
        location: &'a LatLng,
        /// The radius.
        meters: f64,
    },
    /// A polygon.
    Polygon(&'a PolygonArea),
}

impl Shape {
    /// Prepares `area` of a merchant at `location`.
    pub fn new(location: &LatLng, area: &ServiceArea) -> Shape {
        match area {
            ServiceArea::Radius { meters } => {
                if *meters == 0 || *meters > MAX_SERVICE_RADIUS_M {
                    Shape::Nothing
                } else {
                    Shape::Radius {
                        meters: f64::from(*meters),
                    }
                }
            }
            ServiceArea::Polygon { ring } => polygon(location, ring)
                .map(|p| Shape::Polygon(Box::new(p)))
                .unwrap_or(Shape::Nothing),
        }
    }

    /// Whether the area contains `point`, which lies `distance_m` from the
    /// merchant's location (the caller has computed it already).
    pub fn contains(&self, point: &LatLng, distance_m: f64) -> bool {
        match self {
            Shape::Radius { meters } => distance_m <= *meters,
            Shape::Polygon(area) => {
                let c = geo::coord! { x: point.lng, y: point.lat };
                area.near_store(&c) || (area.bbox.intersects(&c) && area.polygon.intersects(&c))
            }
            Shape::Nothing => false,
        }
    }
}

/// A polygon the index accepts: at least three distinct points, valid to
/// `geo` (no self-intersection), a positive area, and every vertex within
/// the largest service radius of the store — which bounds its cover the way
/// the radius limit bounds a circle's.
fn polygon(location: &LatLng, ring: &[LatLng]) -> Option<PolygonArea> {
    if ring.len() < 3
        || ring
            .iter()
            .any(|p| p.distance_m(location) > f64::from(MAX_SERVICE_RADIUS_M))
    {
        return None;
    }
    let coords: Vec<geo::Coord<f64>> = ring
        .iter()
        .map(|p| geo::coord! { x: p.lng, y: p.lat })
        .collect();
    let polygon = geo::Polygon::new(geo::LineString::new(coords), vec![]);
    if !polygon.is_valid() || polygon.unsigned_area() <= 0.0 {
        return None;
    }
    let bbox = polygon.bounding_rect()?;
    let polar = bbox.min().y < -60.0 || bbox.max().y > 60.0;
    let inner = inscribed_disk(&polygon, geo::coord! { x: location.lng, y: location.lat });
    Some(PolygonArea {
        polygon,
        bbox,
        polar,
        inner,
    })
}

/// The largest disk around `centre` inside `polygon`, as (centre, squared
/// radius), when `centre` is in its interior: the distance to the nearest
/// edge, less a margin far wider than rounding — relative (1e-9) and
/// absolute (1e-12°, where the edges' coordinates round at ~1e-16°) — so a
/// point the disk admits is inside by any exact test. A store within a
/// centimetre of an edge keeps no disk: it would settle nothing.
fn inscribed_disk(
    polygon: &geo::Polygon<f64>,
    centre: geo::Coord<f64>,
) -> Option<(geo::Coord<f64>, f64)> {
    if !polygon.contains(&centre) {
        return None;
    }
    let relative = |c: &geo::Coord<f64>| (c.x - centre.x, c.y - centre.y);
    let nearest = polygon
        .exterior()
        .lines()
        .map(|line| segment_distance(relative(&line.start), relative(&line.end)))
        .fold(f64::INFINITY, f64::min);
    let radius = nearest * (1.0 - 1e-9) - 1e-12;
    (nearest > 1e-7).then_some((centre, radius * radius))
}

/// What the index needs to know about one cell.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CellGeom {
    /// The cell's centre.
    pub center: LatLng,
    /// Farthest distance from the centre to the cell's boundary (its
    /// circumradius), so "within r of the centre + reach" is a safe test for
    /// "may touch a disk of radius r".
    pub reach_m: f64,
}

/// The cells of one resolution the index has used, with their geometry
/// computed once: a city touches a few thousand cells, and recomputing a
/// boundary costs more than the rest of an insertion.
#[derive(Debug, Clone)]
pub(crate) struct Cells {
    resolution: Resolution,
    geoms: Map<CellIndex, CellGeom>,
}

impl Cells {
    /// An empty cache at `resolution`.
    pub fn new(resolution: Resolution) -> Self {
        Cells {
            resolution,
            geoms: Map::default(),
        }
    }

    /// The resolution covers are computed at.
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// The cell holding `point`.
    pub fn cell_of(&self, point: &LatLng) -> Option<CellIndex> {
        h3o::LatLng::new(point.lat, point.lng)
            .ok()
            .map(|ll| ll.to_cell(self.resolution))
    }

    /// The geometry of a cell the index has used.
    pub fn get(&self, cell: CellIndex) -> Option<&CellGeom> {
        self.geoms.get(&cell)
    }

    /// The geometry of `cell`, computed on first use.
    pub fn geom(&mut self, cell: CellIndex) -> CellGeom {
        *self.geoms.entry(cell).or_insert_with(|| {
            let c = h3o::LatLng::from(cell);
            // h3o centres are valid WGS84 points; the fallback is never taken.
            let center = LatLng::parse(c.lat(), c.lng()).unwrap_or(LatLng { lat: 0.0, lng: 0.0 });
            let reach_m = cell
                .boundary()
                .iter()
                .map(|v| LatLng {
                    lat: v.lat(),
                    lng: v.lng(),
                })
                .map(|v| center.distance_m(&v))
                .fold(0.0, f64::max);
            CellGeom { center, reach_m }
        })
    }

    /// Cells that may touch `shape` (a superset of those that do), each
    /// once, in a deterministic order.
    pub fn cover(&mut self, location: &LatLng, shape: &Shape) -> Vec<CellIndex> {
        let mut cells = match shape {
            Shape::Radius { meters } => match self.cell_of(location) {
                Some(origin) => self.rings(
                    origin,
                    Target::Disk {
                        location,
                        meters: *meters,
                    },
                ),
                None => Vec::new(),
            },
            Shape::Polygon(area) if area.polar => self.cover_polygon(&area.polygon),
            Shape::Polygon(area) => match area.polygon.exterior().0.first() {
                Some(v) => match self.cell_of(&LatLng { lat: v.y, lng: v.x }) {
                    Some(origin) => self.rings(origin, Target::Polygon(area)),
                    None => Vec::new(),
                },
                None => Vec::new(),
            },
            Shape::Nothing => Vec::new(),
        };
        cells.sort_unstable();
        cells.dedup();
        cells
    }

    /// Whether `cell` may touch `target`: whether some point of the target
    /// lies within the cell's reach of its centre (with slack to spare).
    fn may_touch(&mut self, cell: CellIndex, target: Target<'_>) -> bool {
        let g = self.geom(cell);
        match target {
            Target::Disk { location, meters } => {
                g.center.distance_m(location) <= meters + g.reach_m + SLACK_M
            }
            Target::Polygon(area) => area.within(&g.center, g.reach_m),
        }
    }

    /// Ring by ring outward from a cell that touches the target, until a
    /// whole ring misses it. That stop is exact, not a heuristic: the cells
    /// touching a connected shape are connected through neighbours, so once
    /// ring k holds none of them no farther ring can.
    fn rings(&mut self, origin: CellIndex, target: Target<'_>) -> Vec<CellIndex> {
        let mut out = vec![origin];
        for k in 1.. {
            let before = out.len();
            for cell in origin.grid_ring_fast(k) {
                match cell {
                    Some(cell) => {
                        if self.may_touch(cell, target) {
                            out.push(cell);
                        }
                    }
                    // A pentagon distorts the ring: take the slow, safe path.
                    None => return self.flood(origin, target),
                }
            }
            if out.len() == before {
                break;
            }
        }
        out
    }

    /// Breadth-first over neighbours, for rings that meet a pentagon.
    fn flood(&mut self, origin: CellIndex, target: Target<'_>) -> Vec<CellIndex> {
        let mut seen: HashSet<CellIndex, Seeded> = HashSet::default();
        let mut queue = VecDeque::from([origin]);
        let mut out = Vec::new();
        seen.insert(origin);
        while let Some(cell) = queue.pop_front() {
            if cell != origin && !self.may_touch(cell, target) {
                continue;
            }
            out.push(cell);
            for next in cell.grid_disk::<Vec<_>>(1) {
                if seen.insert(next) {
                    queue.push_back(next);
                }
            }
        }
        out
    }

    /// For polygons near the poles, where a flat local projection is too
    /// coarse: the tiler's `Covers` cover, widened by one ring around every cell the
    /// boundary crosses: the tiler tests cells as straight-edged polygons,
    /// H3 assigns points by its own projection, and the two may disagree by
    /// millimetres along an edge — the ring keeps such a point's cell listed.
    fn cover_polygon(&mut self, polygon: &geo::Polygon<f64>) -> Vec<CellIndex> {
        let mut tiler = TilerBuilder::new(self.resolution)
            .containment_mode(ContainmentMode::Covers)
            // Polygons are planar in degrees here, as in the containment test.
            .disable_transmeridian_heuristic()
            .build();
        if tiler.add(polygon.clone()).is_err() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for annotated in tiler.into_annotated_coverage() {
            if annotated.is_fully_contained {
                out.push(annotated.cell);
            } else {
                out.extend(annotated.cell.grid_disk::<Vec<_>>(1));
            }
        }
        for &cell in &out {
            self.geom(cell);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A point `north` and `east` metres from `from` (flat, fine at city scale).
    fn offset(from: LatLng, north: f64, east: f64) -> LatLng {
        let lat = from.lat + north / M_PER_DEG;
        let lng = from.lng + east / (M_PER_DEG * from.lat.to_radians().cos());
        LatLng::parse(lat, lng).unwrap()
    }

    #[test]
    fn the_inscribed_disk_never_admits_a_point_outside_the_polygon() {
        let store = LatLng::parse(31.23, 121.47).unwrap();
        // A star with a deep notch: its nearest edge is 300 m from the store.
        let ring: Vec<LatLng> = [
            (3000.0, 0.0),
            (300.0, 300.0),
            (0.0, 3000.0),
            (-3000.0, 0.0),
            (0.0, -3000.0),
        ]
        .iter()
        .map(|&(n, e)| offset(store, n, e))
        .collect();
        let area = ServiceArea::Polygon { ring };
        let Shape::Polygon(p) = Shape::new(&store, &area) else {
            panic!("a valid polygon");
        };
        assert!(p.inner.is_some(), "the store is inside: a disk is kept");
        let mut admitted = 0;
        for i in -60..=60 {
            for j in -60..=60 {
                let point = offset(store, f64::from(i) * 50.0, f64::from(j) * 50.0);
                let c = geo::coord! { x: point.lng, y: point.lat };
                let exact = p.polygon.intersects(&c);
                let shape = Shape::Polygon(p.clone());
                assert_eq!(shape.contains(&point, 0.0), exact, "{point:?}");
                assert!(!p.near_store(&c) || exact, "{point:?} admitted outside");
                admitted += usize::from(p.near_store(&c));
            }
        }
        // The disk settles the points near the store: a few hundred metres
        // across, up to the notch (225 points of the 50 m grid).
        assert!((100..=400).contains(&admitted), "{admitted}");
    }

    #[test]
    fn a_store_outside_its_polygon_keeps_no_disk() {
        let store = LatLng::parse(31.23, 121.47).unwrap();
        let ring: Vec<LatLng> = [(1000.0, 1000.0), (1000.0, 3000.0), (3000.0, 2000.0)]
            .iter()
            .map(|&(n, e)| offset(store, n, e))
            .collect();
        let Shape::Polygon(p) = Shape::new(&store, &ServiceArea::Polygon { ring }) else {
            panic!("a valid polygon");
        };
        assert!(p.inner.is_none());
    }
}
