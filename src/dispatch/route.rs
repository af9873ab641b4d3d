//! A rider's route as the dispatcher plans it: the stops of the deliveries
//! they hold, in the order that keeps the most promises for the least travel,
//! with arrival times; and the cheapest feasible insertion of one more
//! delivery into it.
//!
//! Routes are short (a rider carries at most [`MAX_BATCH`] orders, so at most
//! six stops), so the best order of a route is found by enumerating every
//! order that keeps each pickup before its drop-off (at most 90), and an
//! insertion tries every pickup/drop-off position pair against that order
//! (at most 28). Times are seconds from "now"; distances are metres.

use chrono::{DateTime, Utc};
use o2ohub_events::{DeliveryId, LatLng};
use o2ohub_projections::supply::{Leg, OnShift};

use super::travel::Travel;

/// Most orders a rider carries at once.
pub const MAX_BATCH: usize = 3;
/// Time spent at the store collecting an order.
pub const PICKUP_SERVICE_S: f64 = 120.0;
/// Time spent handing an order over.
pub const DROP_OFF_SERVICE_S: f64 = 60.0;

/// Which end of a delivery a stop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    /// Collect at the store.
    Pickup,
    /// Hand over to the consumer.
    DropOff,
}

/// One stop of a route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stop {
    /// The delivery.
    pub delivery: DeliveryId,
    /// Pickup or drop-off.
    pub kind: StopKind,
    /// Where.
    pub at: LatLng,
    /// Service may not start before this (seconds from now).
    pub earliest: f64,
    /// The promise: drop-off by this (seconds from now); pickups have none.
    pub deadline: f64,
    /// Units loaded (pickup) or unloaded (drop-off).
    pub load: u32,
}

/// A delivery as the planner handles it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Job {
    /// The delivery.
    pub delivery: DeliveryId,
    /// Pickup point.
    pub pickup: LatLng,
    /// Drop-off point.
    pub drop_off: LatLng,
    /// Ready time, seconds from now.
    pub ready: f64,
    /// Deadline, seconds from now.
    pub deadline: f64,
    /// Capacity units.
    pub load: u32,
    /// Already on board (only the drop-off remains).
    pub on_board: bool,
}

impl Job {
    /// A job from a leg of a rider's route, with times relative to `now`.
    pub fn of_leg(leg: &Leg, now: DateTime<Utc>) -> Job {
        Job {
            delivery: leg.delivery_id,
            pickup: leg.pickup,
            drop_off: leg.drop_off,
            ready: seconds(leg.ready_at, now),
            deadline: seconds(leg.deadline, now),
            load: leg.load,
            on_board: leg.picked_up,
        }
    }

    fn stops(&self) -> (Option<Stop>, Stop) {
        let pickup = (!self.on_board).then_some(Stop {
            delivery: self.delivery,
            kind: StopKind::Pickup,
            at: self.pickup,
            earliest: self.ready,
            deadline: f64::INFINITY,
            load: self.load,
        });
        let drop_off = Stop {
            delivery: self.delivery,
            kind: StopKind::DropOff,
            at: self.drop_off,
            earliest: f64::NEG_INFINITY,
            deadline: self.deadline,
            load: self.load,
        };
        (pickup, drop_off)
    }
}

/// Seconds from `now` to `t` (negative if past).
pub fn seconds(t: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    (t - now).num_milliseconds() as f64 / 1000.0
}

/// What driving a stop sequence costs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Metres driven.
    pub distance_m: f64,
    /// Seconds when the last stop is done.
    pub finish: f64,
    /// Seconds of lateness summed over drop-offs.
    pub late_s: f64,
}

/// A rider's position, vehicle and capacity, and their planned stops.
#[derive(Debug, Clone)]
pub struct RiderRoute {
    /// Where the rider is now.
    pub start: LatLng,
    /// How they travel.
    pub travel: Travel,
    /// Units they can carry.
    pub capacity: u32,
    /// Units on board now.
    pub on_board: u32,
    /// Deliveries held.
    pub jobs: usize,
    /// Planned stops in order.
    pub stops: Vec<Stop>,
    /// The schedule of `stops`.
    pub schedule: Schedule,
}

/// The cheapest way to add a job to a route.
#[derive(Debug, Clone, PartialEq)]
pub struct Insertion {
    /// Added metres.
    pub added_m: f64,
    /// Added seconds of lateness (over every drop-off of the route).
    pub added_late_s: f64,
    /// When the new job's drop-off happens (seconds from now).
    pub drop_off_at: f64,
    /// The route with the job in it.
    pub stops: Vec<Stop>,
}

impl RiderRoute {
    /// The route of an on-shift rider, its legs in the best order.
    pub fn of(rider: &OnShift, now: DateTime<Utc>) -> RiderRoute {
        let jobs: Vec<Job> = rider.route.iter().map(|l| Job::of_leg(l, now)).collect();
        let on_board = rider
            .route
            .iter()
            .filter(|l| l.picked_up)
            .map(|l| l.load)
            .sum();
        RiderRoute::best(
            rider.position,
            Travel::of(rider.vehicle),
            rider.capacity,
            on_board,
            &jobs,
        )
    }

    /// The best order of `jobs` from `start`: fewest late seconds, then
    /// fewest metres.
    pub fn best(
        start: LatLng,
        travel: Travel,
        capacity: u32,
        on_board: u32,
        jobs: &[Job],
    ) -> RiderRoute {
        let mut route = RiderRoute {
            start,
            travel,
            capacity,
            on_board,
            jobs: jobs.len(),
            stops: Vec::new(),
            schedule: Schedule {
                distance_m: 0.0,
                finish: 0.0,
                late_s: 0.0,
            },
        };
        if jobs.len() > MAX_BATCH {
            // More than a batch can only come from an operator's manual
            // assignment; keep the acceptance order rather than enumerate.
            for j in jobs {
                let (p, d) = j.stops();
                route.stops.extend(p);
                route.stops.push(d);
            }
            route.schedule = route
                .schedule(&route.stops)
                .unwrap_or(route.unchecked(&route.stops));
            return route;
        }
        let mut pending: Vec<(Option<Stop>, Stop)> = jobs.iter().map(|j| j.stops()).collect();
        let mut seq = Vec::with_capacity(jobs.len() * 2);
        let mut best: Option<(Vec<Stop>, Schedule)> = None;
        route.enumerate(&mut pending, &mut seq, &mut best);
        if let Some((stops, schedule)) = best {
            route.stops = stops;
            route.schedule = schedule;
        }
        route
    }

    fn enumerate(
        &self,
        pending: &mut Vec<(Option<Stop>, Stop)>,
        seq: &mut Vec<Stop>,
        best: &mut Option<(Vec<Stop>, Schedule)>,
    ) {
        if pending.is_empty() {
            if let Some(s) = self.schedule(seq) {
                let better = best
                    .as_ref()
                    .is_none_or(|(_, b)| (s.late_s, s.distance_m) < (b.late_s, b.distance_m));
                if better {
                    *best = Some((seq.clone(), s));
                }
            }
            return;
        }
        for i in 0..pending.len() {
            let (pickup, drop_off) = pending[i];
            match pickup {
                Some(p) => {
                    pending[i].0 = None;
                    seq.push(p);
                    self.enumerate(pending, seq, best);
                    seq.pop();
                    pending[i].0 = Some(p);
                }
                None => {
                    let taken = pending.remove(i);
                    seq.push(drop_off);
                    self.enumerate(pending, seq, best);
                    seq.pop();
                    pending.insert(i, taken);
                }
            }
        }
    }

    /// The schedule of a stop sequence, or `None` if it overloads the rider.
    pub fn schedule(&self, stops: &[Stop]) -> Option<Schedule> {
        let mut load = self.on_board;
        let (mut at, mut t, mut distance_m, mut late_s) = (self.start, 0.0f64, 0.0, 0.0);
        for s in stops {
            let d = self.travel.distance_m(&at, &s.at);
            distance_m += d;
            t = (t + self.travel.seconds(d)).max(s.earliest);
            match s.kind {
                StopKind::Pickup => {
                    load += s.load;
                    if load > self.capacity {
                        return None;
                    }
                    t += PICKUP_SERVICE_S;
                }
                StopKind::DropOff => {
                    load = load.saturating_sub(s.load);
                    late_s += (t - s.deadline).max(0.0);
                    t += DROP_OFF_SERVICE_S;
                }
            }
            at = s.at;
        }
        Some(Schedule {
            distance_m,
            finish: t,
            late_s,
        })
    }

    fn unchecked(&self, stops: &[Stop]) -> Schedule {
        let capacity = RiderRoute {
            capacity: u32::MAX,
            ..self.clone()
        };
        capacity.schedule(stops).unwrap_or(Schedule {
            distance_m: 0.0,
            finish: 0.0,
            late_s: 0.0,
        })
    }

    /// Arrival time at each stop (seconds from now), in order.
    pub fn arrivals(&self) -> Vec<f64> {
        let (mut at, mut t) = (self.start, 0.0f64);
        self.stops
            .iter()
            .map(|s| {
                t = (t + self.travel.seconds(self.travel.distance_m(&at, &s.at))).max(s.earliest);
                let arrival = t;
                t += match s.kind {
                    StopKind::Pickup => PICKUP_SERVICE_S,
                    StopKind::DropOff => DROP_OFF_SERVICE_S,
                };
                at = s.at;
                arrival
            })
            .collect()
    }

    /// The cheapest feasible insertion of `job` (pickup and drop-off) into
    /// this route, or `None` if none fits: the rider is full, or, for a
    /// rider who already holds deliveries, every position breaks a promise
    /// that holds today (batching never makes an order late). An idle rider
    /// may take a job they can only deliver late: nobody can do better.
    pub fn cheapest_insertion(&self, job: &Job) -> Option<Insertion> {
        self.insertion(job, false)
    }

    /// The job appended after the route's last stop (pickup, then drop-off):
    /// how a rider works who does orders in the order given.
    pub fn appended(&self, job: &Job) -> Option<Insertion> {
        self.insertion(job, true)
    }

    fn insertion(&self, job: &Job, at_end: bool) -> Option<Insertion> {
        if self.jobs >= MAX_BATCH || job.load > self.capacity {
            return None;
        }
        let (pickup, drop_off) = job.stops();
        let pickup = pickup?;
        let n = self.stops.len();
        // Every distance an insertion needs, once: the legs of the route as
        // it is, and from each of its points to the new pickup and drop-off.
        let t = &self.travel;
        let point = |k: usize| {
            if k == 0 {
                self.start
            } else {
                self.stops[k - 1].at
            }
        };
        let legs: Vec<f64> = (0..n)
            .map(|k| t.distance_m(&point(k), &point(k + 1)))
            .collect();
        let to_pickup: Vec<f64> = (0..=n)
            .map(|k| t.distance_m(&point(k), &pickup.at))
            .collect();
        let to_drop_off: Vec<f64> = (0..=n)
            .map(|k| t.distance_m(&point(k), &drop_off.at))
            .collect();
        let pickup_to_drop_off = t.distance_m(&pickup.at, &drop_off.at);

        let mut best: Option<(f64, f64, f64, usize, usize)> = None;
        let first = if at_end { n } else { 0 };
        for i in first..=n {
            for j in i..=n {
                // The new sequence: old[..i], P, old[i..j], D, old[j..].
                let Some((distance_m, late_s, drop_off_at)) = self.evaluate(
                    i,
                    j,
                    &pickup,
                    &drop_off,
                    &legs,
                    &to_pickup,
                    &to_drop_off,
                    pickup_to_drop_off,
                ) else {
                    continue;
                };
                let added_late_s = late_s - self.schedule.late_s;
                if n > 0 && added_late_s > 1e-6 {
                    continue;
                }
                let added_m = distance_m - self.schedule.distance_m;
                if best.is_none_or(|(l, m, ..)| (added_late_s, added_m) < (l, m)) {
                    best = Some((added_late_s, added_m, drop_off_at, i, j));
                }
            }
        }
        best.map(|(added_late_s, added_m, drop_off_at, i, j)| {
            let mut stops = Vec::with_capacity(n + 2);
            stops.extend_from_slice(&self.stops[..i]);
            stops.push(pickup);
            stops.extend_from_slice(&self.stops[i..j]);
            stops.push(drop_off);
            stops.extend_from_slice(&self.stops[j..]);
            Insertion {
                added_m,
                added_late_s,
                drop_off_at,
                stops,
            }
        })
    }

    /// Distance, lateness and drop-off time of the route with the pickup
    /// before old stop `i` and the drop-off before old stop `j` (`i ≤ j`);
    /// `None` if it overloads the rider. Mirrors [`RiderRoute::schedule`]
    /// with distances looked up instead of computed.
    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &self,
        i: usize,
        j: usize,
        pickup: &Stop,
        drop_off: &Stop,
        legs: &[f64],
        to_pickup: &[f64],
        to_drop_off: &[f64],
        pickup_to_drop_off: f64,
    ) -> Option<(f64, f64, f64)> {
        let n = self.stops.len();
        let mut load = self.on_board;
        let (mut t, mut distance_m, mut late_s, mut drop_off_at) = (0.0f64, 0.0, 0.0, 0.0);
        // Position in the new sequence, as the index of the point we are at:
        // old points are 0 (start) ..= n, then P and D.
        let mut at = Where::Old(0);
        let mut visit = |stop: &Stop, d: f64, t: &mut f64, distance_m: &mut f64| -> Option<f64> {
            *distance_m += d;
            *t = (*t + self.travel.seconds(d)).max(stop.earliest);
            let arrival = *t;
            match stop.kind {
                StopKind::Pickup => {
                    load += stop.load;
                    if load > self.capacity {
                        return None;
                    }
                    *t += PICKUP_SERVICE_S;
                }
                StopKind::DropOff => {
                    load = load.saturating_sub(stop.load);
                    late_s += (*t - stop.deadline).max(0.0);
                    *t += DROP_OFF_SERVICE_S;
                }
            }
            Some(arrival)
        };
        for k in 0..=n {
            if k == i {
                let d = match at {
                    Where::Old(o) => to_pickup[o],
                    _ => unreachable!("the pickup comes first"),
                };
                visit(pickup, d, &mut t, &mut distance_m)?;
                at = Where::Pickup;
            }
            if k == j {
                let d = match at {
                    Where::Old(o) => to_drop_off[o],
                    Where::Pickup => pickup_to_drop_off,
                    Where::DropOff => unreachable!("one drop-off"),
                };
                drop_off_at = visit(drop_off, d, &mut t, &mut distance_m)?;
                at = Where::DropOff;
            }
            if k == n {
                break;
            }
            let d = match at {
                Where::Old(o) => legs[o],
                Where::Pickup => to_pickup[k + 1],
                Where::DropOff => to_drop_off[k + 1],
            };
            visit(&self.stops[k], d, &mut t, &mut distance_m)?;
            at = Where::Old(k + 1);
        }
        Some((distance_m, late_s, drop_off_at))
    }
}

/// Where the rider is while an insertion is evaluated.
#[derive(Clone, Copy)]
enum Where {
    /// At old point `k` (0 is the start, `k` the k-th stop).
    Old(usize),
    /// At the new pickup.
    Pickup,
    /// At the new drop-off.
    DropOff,
}

#[cfg(test)]
mod tests {
    use super::*;
    use o2ohub_events::VehicleType;

    fn p(lat: f64, lng: f64) -> LatLng {
        LatLng::parse(lat, lng).unwrap()
    }

    fn job(n: u128, pickup: LatLng, drop_off: LatLng, deadline: f64) -> Job {
        Job {
            delivery: DeliveryId(uuid::Uuid::from_u128(n)),
            pickup,
            drop_off,
            ready: 0.0,
            deadline,
            load: 1,
            on_board: false,
        }
    }

    fn idle(at: LatLng) -> RiderRoute {
        RiderRoute::best(at, Travel::of(VehicleType::Scooter), 3, 0, &[])
    }

    #[test]
    fn an_idle_rider_goes_to_the_store_then_the_consumer() {
        let r = idle(p(31.20, 121.40));
        let j = job(1, p(31.21, 121.40), p(31.22, 121.40), 3600.0);
        let ins = r.cheapest_insertion(&j).unwrap();
        assert_eq!(ins.stops.len(), 2);
        assert_eq!(ins.stops[0].kind, StopKind::Pickup);
        assert_eq!(ins.stops[1].kind, StopKind::DropOff);
        let travel = Travel::of(VehicleType::Scooter);
        let expected = travel.distance_m(&p(31.20, 121.40), &p(31.21, 121.40))
            + travel.distance_m(&p(31.21, 121.40), &p(31.22, 121.40));
        assert!((ins.added_m - expected).abs() < 1e-6);
        assert_eq!(ins.added_late_s, 0.0);
    }

    #[test]
    fn a_job_on_the_way_is_batched_between_the_stops() {
        // Rider at the south, holding a delivery going north; a second store
        // and consumer lie on the same line: both pickups, then both drops.
        let south = p(31.20, 121.40);
        let held = job(1, p(31.21, 121.40), p(31.26, 121.40), 7200.0);
        let r = RiderRoute::best(south, Travel::of(VehicleType::Scooter), 3, 0, &[held]);
        let new = job(2, p(31.22, 121.40), p(31.25, 121.40), 7200.0);
        let ins = r.cheapest_insertion(&new).unwrap();
        let kinds: Vec<_> = ins.stops.iter().map(|s| (s.delivery, s.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (held.delivery, StopKind::Pickup),
                (new.delivery, StopKind::Pickup),
                (new.delivery, StopKind::DropOff),
                (held.delivery, StopKind::DropOff),
            ]
        );
        assert!(ins.added_m < 100.0, "on the way: {} m", ins.added_m);
    }

    #[test]
    fn batching_never_makes_a_held_order_late() {
        let south = p(31.20, 121.40);
        // The held order's deadline leaves no slack for a detour east.
        let travel = Travel::of(VehicleType::Scooter);
        let direct = travel.seconds(travel.distance_m(&south, &p(31.21, 121.40)))
            + PICKUP_SERVICE_S
            + travel.seconds(travel.distance_m(&p(31.21, 121.40), &p(31.23, 121.40)));
        let held = job(1, p(31.21, 121.40), p(31.23, 121.40), direct + 30.0);
        let r = RiderRoute::best(south, travel, 3, 0, &[held]);
        assert_eq!(r.schedule.late_s, 0.0);
        // A second order whose own promise cannot be kept on this route.
        let detour = job(2, p(31.21, 121.45), p(31.20, 121.46), direct + 60.0);
        assert_eq!(r.cheapest_insertion(&detour), None);
        // With time to spare it goes after the held order, not before.
        let later = job(3, p(31.21, 121.45), p(31.20, 121.46), 9999.0);
        let ins = r.cheapest_insertion(&later).unwrap();
        assert_eq!(ins.stops[1].delivery, held.delivery);
        assert_eq!(ins.added_late_s, 0.0);
    }

    #[test]
    fn a_full_rider_takes_nothing() {
        let at = p(31.20, 121.40);
        let jobs: Vec<Job> = (1..=3)
            .map(|n| job(n, p(31.21, 121.40), p(31.22, 121.40), 7200.0))
            .collect();
        let r = RiderRoute::best(at, Travel::of(VehicleType::Scooter), 3, 0, &jobs);
        assert_eq!(r.stops.len(), 6);
        assert!(r
            .cheapest_insertion(&job(9, at, p(31.21, 121.41), 7200.0))
            .is_none());
        // Capacity counts units on board: a one-box rider with an order on
        // board can only collect the next after handing that one over.
        let mut held = jobs[0];
        held.on_board = true;
        let small = RiderRoute::best(at, Travel::of(VehicleType::Bicycle), 1, 1, &[held]);
        let ins = small
            .cheapest_insertion(&job(9, at, p(31.21, 121.41), 7200.0))
            .unwrap();
        assert_eq!(ins.stops[0].delivery, held.delivery);
        assert_eq!(ins.stops[1].kind, StopKind::Pickup);
    }

    #[test]
    fn the_best_order_keeps_each_pickup_before_its_drop_off() {
        let at = p(31.20, 121.40);
        let jobs = [
            job(1, p(31.25, 121.40), p(31.20, 121.41), 7200.0),
            job(2, p(31.21, 121.40), p(31.26, 121.40), 7200.0),
            job(3, p(31.22, 121.42), p(31.23, 121.40), 7200.0),
        ];
        let r = RiderRoute::best(at, Travel::of(VehicleType::Car), 3, 0, &jobs);
        assert_eq!(r.stops.len(), 6);
        for j in &jobs {
            let pick = r
                .stops
                .iter()
                .position(|s| s.delivery == j.delivery && s.kind == StopKind::Pickup);
            let drop = r
                .stops
                .iter()
                .position(|s| s.delivery == j.delivery && s.kind == StopKind::DropOff);
            assert!(pick.unwrap() < drop.unwrap());
        }
        // No order of the same stops is shorter.
        let fifo: Vec<Stop> = jobs
            .iter()
            .flat_map(|j| {
                let (p, d) = j.stops();
                [p.unwrap(), d]
            })
            .collect();
        assert!(r.schedule.distance_m <= r.schedule(&fifo).unwrap().distance_m);
    }

    #[test]
    fn insertion_figures_agree_with_a_full_schedule_of_the_new_route() {
        let at = p(31.20, 121.40);
        let jobs = [
            job(1, p(31.25, 121.40), p(31.20, 121.41), 3000.0),
            job(2, p(31.21, 121.40), p(31.26, 121.40), 4000.0),
        ];
        let r = RiderRoute::best(at, Travel::of(VehicleType::Bicycle), 3, 0, &jobs);
        for (n, (pickup, drop_off)) in [
            (p(31.22, 121.41), p(31.24, 121.40)),
            (p(31.19, 121.39), p(31.27, 121.42)),
            (p(31.25, 121.40), p(31.25, 121.40)),
        ]
        .into_iter()
        .enumerate()
        {
            let new = job(10 + n as u128, pickup, drop_off, 9000.0);
            for ins in [r.cheapest_insertion(&new), r.appended(&new)]
                .into_iter()
                .flatten()
            {
                let full = r.schedule(&ins.stops).unwrap();
                assert!((full.distance_m - r.schedule.distance_m - ins.added_m).abs() < 1e-6);
                assert!((full.late_s - r.schedule.late_s - ins.added_late_s).abs() < 1e-6);
                let probe = RiderRoute {
                    stops: ins.stops.clone(),
                    ..r.clone()
                };
                let k = ins
                    .stops
                    .iter()
                    .position(|s| s.delivery == new.delivery && s.kind == StopKind::DropOff)
                    .unwrap();
                assert!((probe.arrivals()[k] - ins.drop_off_at).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn an_order_on_board_needs_only_its_drop_off() {
        let at = p(31.20, 121.40);
        let mut held = job(1, p(31.21, 121.40), p(31.22, 121.40), 7200.0);
        held.on_board = true;
        let r = RiderRoute::best(at, Travel::of(VehicleType::Scooter), 1, 1, &[held]);
        assert_eq!(r.stops.len(), 1);
        assert_eq!(r.stops[0].kind, StopKind::DropOff);
    }
}
