//! One dispatch decision: which open delivery is offered to which rider this
//! tick. A pure function of the supply read model and the time.
//!
//! 1. **Who can take more**: on-shift riders without an unanswered offer
//!    and with room for another order, bucketed by their resolution-8 H3
//!    cell (about 0.7 km², the supply index's resolution).
//! 2. **Candidates**: for each open delivery, riders in rings of cells
//!    around its pickup, nearest first, until [`PlanConfig::candidates`] are
//!    found or the rings pass [`PlanConfig::radius_m`]; riders who already
//!    passed on it are skipped.
//! 3. **Cost**: each candidate pair costs the cheapest feasible insertion of
//!    pickup and drop-off into the rider's current route (added riding
//!    time, plus lateness beyond the least any candidate manages, weighted
//!    [`LATE_WEIGHT`]×; a rider with orders never takes one that breaks a
//!    promise).
//! 4. **Assignment**: [`Policy::Global`] solves the matching on that sparse
//!    graph ([`super::assign`]), maximising the sum of
//!    `BASE_S + waited − cost` in seconds (at least 1: every delivery is
//!    worth serving) — the wait term lets old orders outbid cheap new ones. [`Policy::Greedy`] is the baseline it is measured against:
//!    oldest delivery first, to the nearest rider with room, appended to the
//!    end of their route.
//!
//! A rider gets at most one new offer per tick; batches of up to
//! [`super::route::MAX_BATCH`] orders build up over ticks, each insertion
//! checked against every promise on the route.

use chrono::{DateTime, Duration, Utc};
use h3o::{CellIndex, Resolution};
use o2ohub_events::{DeliveryId, LatLng, RiderId};
use o2ohub_projections::supply::{OnShift, Supply};
use std::collections::{HashMap, HashSet};

use super::assign::{assign, Arc};
use super::route::{seconds, Insertion, Job, RiderRoute};

/// What serving a delivery is worth, in seconds of riding.
pub const BASE_S: f64 = 3600.0;
/// A second late costs this many seconds of riding.
pub const LATE_WEIGHT: f64 = 3.0;

/// Who decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Min-cost matching over cheapest-insertion costs (the default).
    Global,
    /// Nearest rider with room, oldest order first, appended (the baseline).
    Greedy,
}

/// Knobs of the planner.
#[derive(Debug, Clone, Copy)]
pub struct PlanConfig {
    /// The policy.
    pub policy: Policy,
    /// Candidate riders per delivery.
    pub candidates: usize,
    /// How far from the pickup a rider may be.
    pub radius_m: f64,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            policy: Policy::Global,
            candidates: 8,
            radius_m: 5_000.0,
        }
    }
}

/// One offer to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// The delivery.
    pub delivery: DeliveryId,
    /// The rider.
    pub rider: RiderId,
    /// Estimated drop-off if accepted.
    pub eta: DateTime<Utc>,
    /// Metres the rider's route grows by.
    pub added_m: f64,
}

/// A tick's decisions and what they were made from.
#[derive(Debug, Clone, Default)]
pub struct TickPlan {
    /// Offers to make.
    pub offers: Vec<Offer>,
    /// Deliveries waiting without an offer.
    pub open: usize,
    /// Riders able to take one more.
    pub available: usize,
    /// Candidate pairs costed.
    pub pairs: usize,
}

fn cell_of(p: &LatLng) -> Option<CellIndex> {
    h3o::LatLng::new(p.lat, p.lng)
        .ok()
        .map(|ll| ll.to_cell(Resolution::Eight))
}

/// Plans one tick. `route_of` gives a rider's current route (the hub uses
/// [`RiderRoute::of`], the best order of their legs).
pub fn plan(
    supply: &Supply,
    now: DateTime<Utc>,
    config: &PlanConfig,
    route_of: impl Fn(&OnShift) -> RiderRoute,
) -> TickPlan {
    let open = supply.open_deliveries();
    let offered: HashSet<RiderId> = open.iter().filter_map(|d| d.offered_to).collect();
    let mut riders: Vec<(&OnShift, RiderRoute)> = supply
        .on_shift()
        .filter(|r| !offered.contains(&r.rider_id) && r.free() > 0)
        .map(|r| (r, route_of(r)))
        .filter(|(_, route)| route.jobs < super::route::MAX_BATCH)
        .collect();
    riders.sort_by_key(|(r, _)| r.rider_id);
    let mut by_cell: HashMap<CellIndex, Vec<usize>> = HashMap::new();
    for (i, (r, _)) in riders.iter().enumerate() {
        if let Some(c) = cell_of(&r.position) {
            by_cell.entry(c).or_default().push(i);
        }
    }
    let waiting: Vec<_> = open
        .into_iter()
        .filter(|d| d.offered_to.is_none())
        .collect();
    let mut plan = TickPlan {
        open: waiting.len(),
        available: riders.len(),
        ..TickPlan::default()
    };
    let ring_m = Resolution::Eight.edge_length_m() * 1.5;
    // A delivery with nobody within the radius looks up to three times as
    // far rather than wait forever at the edge of the city.
    let reach_m = config.radius_m * 3.0;
    let max_rings = (reach_m / ring_m).ceil() as u32 + 1;

    // Candidates per delivery, nearest first.
    let mut candidates: Vec<Vec<(usize, f64)>> = Vec::with_capacity(waiting.len());
    for d in &waiting {
        let mut found: Vec<(usize, f64)> = Vec::new();
        if let Some(origin) = cell_of(&d.request.pickup) {
            for k in 0..=max_rings {
                let ring: Vec<CellIndex> = match origin.grid_ring_fast(k).collect() {
                    Some(ring) => ring,
                    // Near a pentagon (none lies under a city) the fast ring
                    // fails; take the ring from the safe disk instead.
                    None => origin
                        .grid_disk_distances::<Vec<_>>(k)
                        .into_iter()
                        .filter(|(_, d)| *d == k)
                        .map(|(c, _)| c)
                        .collect(),
                };
                for cell in ring {
                    for &i in by_cell.get(&cell).into_iter().flatten() {
                        let r = riders[i].0;
                        if d.request.load > r.free() || d.passed_by.contains(&r.rider_id) {
                            continue;
                        }
                        let dist = r.position.distance_m(&d.request.pickup);
                        if dist <= reach_m {
                            found.push((i, dist));
                        }
                    }
                }
                // One more ring after the quota: a rider just across a cell
                // edge may be nearer than some already found.
                // Everyone within `covered` of the pickup has been seen.
                let covered = (k as f64 - 1.0).max(0.0) * ring_m;
                let near = found.iter().filter(|(_, dist)| *dist <= covered).count();
                if near >= config.candidates
                    || (covered >= config.radius_m
                        && found.iter().any(|(_, dist)| *dist <= config.radius_m))
                {
                    break;
                }
            }
        }
        if found.is_empty() {
            // Nobody within reach: the nearest riders anywhere, rather than
            // a delivery that waits forever at the edge of the city.
            found = riders
                .iter()
                .enumerate()
                .filter(|(_, (r, _))| {
                    d.request.load <= r.free() && !d.passed_by.contains(&r.rider_id)
                })
                .map(|(i, (r, _))| (i, r.position.distance_m(&d.request.pickup)))
                .collect();
        }
        if found.iter().any(|(_, dist)| *dist <= config.radius_m) {
            found.retain(|(_, dist)| *dist <= config.radius_m);
        }
        found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        found.truncate(config.candidates);
        candidates.push(found);
    }

    let job = |d: &o2ohub_projections::supply::OpenDelivery| Job {
        delivery: d.request.delivery_id,
        pickup: d.request.pickup,
        drop_off: d.request.drop_off,
        ready: seconds(d.request.ready_at, now),
        deadline: seconds(d.request.deadline, now),
        load: d.request.load,
        on_board: false,
    };
    let offer = |d: usize, rider: usize, ins: &Insertion| Offer {
        delivery: waiting[d].request.delivery_id,
        rider: riders[rider].0.rider_id,
        eta: now + Duration::milliseconds((ins.drop_off_at * 1000.0) as i64),
        added_m: ins.added_m,
    };

    match config.policy {
        Policy::Global => {
            let mut arcs: Vec<Vec<Arc>> = Vec::with_capacity(waiting.len());
            let mut insertions: Vec<Vec<(usize, Insertion)>> = Vec::with_capacity(waiting.len());
            for (d, found) in candidates.iter().enumerate() {
                let j = job(waiting[d]);
                let waited = (-j.ready).clamp(0.0, BASE_S);
                let ins: Vec<(usize, Insertion)> = found
                    .iter()
                    .filter_map(|&(i, _)| riders[i].1.cheapest_insertion(&j).map(|x| (i, x)))
                    .collect();
                plan.pairs += found.len();
                // Lateness nobody can avoid is no reason to wait longer:
                // only lateness beyond the least any candidate manages costs.
                let least_late = ins
                    .iter()
                    .map(|(_, x)| x.added_late_s)
                    .fold(f64::INFINITY, f64::min);
                let a = ins
                    .iter()
                    .map(|(i, x)| {
                        let cost = riders[*i].1.travel.seconds(x.added_m)
                            + LATE_WEIGHT * (x.added_late_s - least_late);
                        let benefit = (BASE_S + waited - cost).round().max(1.0) as i64;
                        Arc { rider: *i, benefit }
                    })
                    .collect();
                arcs.push(a);
                insertions.push(ins);
            }
            for (d, rider) in assign(riders.len(), &arcs).into_iter().enumerate() {
                if let Some(r) = rider {
                    if let Some((_, x)) = insertions[d].iter().find(|(i, _)| *i == r) {
                        plan.offers.push(offer(d, r, x));
                    }
                }
            }
        }
        Policy::Greedy => {
            let mut taken = vec![false; riders.len()];
            for (d, found) in candidates.iter().enumerate() {
                let j = job(waiting[d]);
                for &(i, _) in found {
                    plan.pairs += 1;
                    if taken[i] {
                        continue;
                    }
                    if let Some(x) = riders[i].1.appended(&j) {
                        taken[i] = true;
                        plan.offers.push(offer(d, i, &x));
                        break;
                    }
                }
            }
        }
    }
    plan
}
