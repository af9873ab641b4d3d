//! Insertion of a pickup/delivery pair (or a lone delivery of an onboard task)
//! into one route, with O(1) feasibility per position pair from the route's
//! cached start/latest/load arrays. This is the primitive every construction,
//! repair and ejection step is built on, and the one the dispatcher calls.

use super::model::{Model, StopKind, StopRef};
use super::solution::{Route, EPS};

/// Where to put a task in a route: the pickup goes right after position `i`
/// and the delivery right after position `j` (positions of the route *before*
/// insertion, `j >= i`; `j == i` means the delivery directly follows the
/// pickup). `i == usize::MAX` for delivery-only (onboard) insertions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Pos {
    pub cost: f64,
    pub i: usize,
    pub j: usize,
}

/// Cheapest feasible insertion of task `t` into `r`, or `None`.
///
/// Positions whose pickup detour alone already costs more than the best found
/// are skipped; that is exact when a detour never saves distance (triangle
/// inequality, true of every metric travel model).
pub(crate) fn best(m: &Model, r: &Route, t: usize) -> Option<Pos> {
    best_below(m, r, t, f64::INFINITY)
}

/// Like [`best`], but only insertions costing less than `bound` count; the
/// bound prunes the scan from the start, which is what makes improvement
/// checks (is there a position cheaper than the saving?) fast on long routes.
pub(crate) fn best_below(m: &Model, r: &Route, t: usize, bound: f64) -> Option<Pos> {
    let mut best: Option<Pos> = None;
    scan(m, r, t, bound, |p| {
        if best.is_none_or(|b| p.cost < b.cost) {
            best = Some(p);
        }
        best.map_or(bound, |b| b.cost.min(bound))
    });
    best
}

/// Calls `f` for every feasible insertion of task `t` into `r`.
pub(crate) fn each(m: &Model, r: &Route, t: usize, mut f: impl FnMut(Pos)) {
    scan(m, r, t, f64::INFINITY, |p| {
        f(p);
        f64::INFINITY
    });
}

/// Feasible insertions of `t` into `r` costing less than `bound`; `f` returns
/// the new bound above which further positions are of no interest.
fn scan(m: &Model, r: &Route, t: usize, bound: f64, mut f: impl FnMut(Pos) -> f64) {
    if let Some(v) = m.onboard[t] {
        if v == r.vehicle {
            each_delivery(m, r, t, |p| {
                if p.cost < bound {
                    f(p);
                }
            });
        }
        return;
    }
    let mut bound = bound;
    let (p, d) = (2 * t, 2 * t + 1);
    let q = m.demand[p];
    let cap = m.capacity[r.vehicle];
    let n = r.nodes.len();
    let nodes = &r.nodes;
    let (ep, lp, sp) = (m.earliest[p], m.latest[p], m.service[p]);
    let (ed, ld, sd) = (m.earliest[d], m.latest[d], m.service[d]);
    let tpd = m.t(p, d);
    let dpd = m.d(p, d);
    for i in 0..n - 1 {
        if r.start[i] > lp {
            break;
        }
        if r.load[i] + q > cap + EPS {
            continue;
        }
        let (a, b) = (nodes[i], nodes[i + 1]);
        let tp = (r.start[i] + m.service[a] + m.t(a, p)).max(ep);
        if tp > lp + EPS {
            continue;
        }
        // Delivery straight after the pickup.
        let td = (tp + sp + tpd).max(ed);
        let cost_pd = m.d(a, p) + dpd + m.d(d, b) - m.d(a, b);
        if cost_pd < bound && td <= ld + EPS && td + sd + m.t(d, b) <= r.latest[i + 1] + EPS {
            bound = f(Pos {
                cost: cost_pd,
                i,
                j: i,
            });
        }
        // Delivery later: push the pickup's delay forward node by node.
        let cost_p = m.d(a, p) + m.d(p, b) - m.d(a, b);
        if cost_p >= bound {
            continue;
        }
        let mut prev = p;
        let mut t_prev = tp;
        for j in i + 1..n - 1 {
            let k = nodes[j];
            let tk = (t_prev + m.service[prev] + m.t(prev, k)).max(m.earliest[k]);
            if tk > r.latest[j] + EPS || r.load[j] + q > cap + EPS || tk > ld {
                break;
            }
            let nx = nodes[j + 1];
            let cost = cost_p + m.d(k, d) + m.d(d, nx) - m.d(k, nx);
            if cost < bound {
                let td = (tk + m.service[k] + m.t(k, d)).max(ed);
                if td <= ld + EPS && td + sd + m.t(d, nx) <= r.latest[j + 1] + EPS {
                    bound = f(Pos { cost, i, j });
                }
            }
            prev = k;
            t_prev = tk;
        }
    }
}

fn each_delivery(m: &Model, r: &Route, t: usize, mut f: impl FnMut(Pos)) {
    let d = 2 * t + 1;
    let (ed, ld, sd) = (m.earliest[d], m.latest[d], m.service[d]);
    let cap = m.capacity[r.vehicle];
    for j in 0..r.nodes.len() - 1 {
        // The load counts this task from the start until its delivery: every
        // position up to `j` must have room for it (after `j` the load only
        // drops). A route the delivery was just taken out of may carry too
        // much later on, which is what stops the scan there.
        if r.start[j] > ld || r.load[j] > cap + EPS {
            break;
        }
        let (k, nx) = (r.nodes[j], r.nodes[j + 1]);
        let td = (r.start[j] + m.service[k] + m.t(k, d)).max(ed);
        if td <= ld + EPS && td + sd + m.t(d, nx) <= r.latest[j + 1] + EPS {
            f(Pos {
                cost: m.d(k, d) + m.d(d, nx) - m.d(k, nx),
                i: usize::MAX,
                j,
            });
        }
    }
}

/// Applies an insertion found by [`best`] or [`each`].
pub(crate) fn apply(m: &Model, r: &mut Route, t: usize, pos: Pos) {
    r.nodes.insert(pos.j + 1, 2 * t + 1);
    if pos.i != usize::MAX {
        r.nodes.insert(pos.i + 1, 2 * t);
    }
    let ok = r.update(m);
    debug_assert!(ok, "insertion produced an infeasible route");
}

/// The cheapest feasible way to add one task to an existing route, as
/// returned by [`Model::cheapest_insertion`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Insertion {
    /// Added distance.
    pub cost: f64,
    /// Index of the new pickup in the stop list after insertion (`None` for an
    /// onboard task, which only needs its delivery).
    pub pickup_index: Option<usize>,
    /// Index of the new delivery in the stop list after insertion.
    pub delivery_index: usize,
}

/// Why [`Model::cheapest_insertion`] cannot even evaluate the request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InsertionError {
    /// Vehicle or task index out of range, or the task already in the route.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The given route violates a constraint already.
    #[error("existing route is infeasible")]
    InfeasibleRoute,
}

impl Model {
    /// Cheapest feasible insertion of `task` into the existing route `stops` of
    /// `vehicle` (stops in visiting order, without terminals; for a partially
    /// executed route give the vehicle's current position and time as its
    /// start and shift start, and mark picked-up tasks `onboard`). `Ok(None)`
    /// when no feasible position exists.
    pub fn cheapest_insertion(
        &self,
        vehicle: usize,
        stops: &[StopRef],
        task: usize,
    ) -> Result<Option<Insertion>, InsertionError> {
        if vehicle >= self.n_vehicles || task >= self.n_tasks {
            return Err(InsertionError::BadRequest("index out of range".into()));
        }
        if stops
            .iter()
            .any(|s| s.task == task || s.task >= self.n_tasks)
        {
            return Err(InsertionError::BadRequest(format!(
                "task {task} already routed or bad stop"
            )));
        }
        // The caches assume pickups precede their deliveries on the same
        // vehicle; check it here since callers build `stops` themselves.
        let mut state = vec![0u8; self.n_tasks];
        for s in stops {
            let want = match (s.kind, self.onboard[s.task]) {
                (StopKind::Pickup, None) => 0,
                (StopKind::Delivery, None) => 1,
                (StopKind::Delivery, Some(v)) if v == vehicle => 0,
                _ => return Err(InsertionError::InfeasibleRoute),
            };
            if state[s.task] != want {
                return Err(InsertionError::InfeasibleRoute);
            }
            state[s.task] =
                2 - u8::from(s.kind == StopKind::Pickup && self.onboard[s.task].is_none());
        }
        if state.contains(&1) {
            return Err(InsertionError::InfeasibleRoute);
        }
        let mut r = Route::new(self, vehicle);
        let end = r.nodes.pop().unwrap_or_default();
        r.nodes.extend(stops.iter().map(|&s| self.node_of(s)));
        r.nodes.push(end);
        if !r.update(self) {
            return Err(InsertionError::InfeasibleRoute);
        }
        Ok(best(self, &r, task).map(|p| {
            if p.i == usize::MAX {
                Insertion {
                    cost: p.cost,
                    pickup_index: None,
                    delivery_index: p.j,
                }
            } else {
                // Position i in the terminal-including route is stop index i
                // in the new stop list (the start terminal shifts it by one).
                Insertion {
                    cost: p.cost,
                    pickup_index: Some(p.i),
                    delivery_index: p.j + 1,
                }
            }
        }))
    }
}

/// The stop list of a route (without terminals), for tests and the public API.
#[allow(dead_code)]
pub(crate) fn stop_refs(m: &Model, r: &Route) -> Vec<StopRef> {
    r.nodes[1..r.nodes.len() - 1]
        .iter()
        .map(|&x| m.stop_of(x))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::testkit::*;
    use proptest::prelude::*;

    /// Every (i, j) whose insertion yields a feasible route, by brute force.
    fn brute(m: &Model, r: &Route, t: usize) -> Vec<(usize, usize, f64)> {
        let n = r.nodes.len();
        let mut out = vec![];
        for i in 0..n - 1 {
            for j in i..n - 1 {
                let mut c = r.clone();
                c.nodes.insert(j + 1, 2 * t + 1);
                c.nodes.insert(i + 1, 2 * t);
                if c.update(m) {
                    out.push((i, j, c.dist - r.dist));
                }
            }
        }
        out
    }

    #[test]
    fn empty_route_cost_is_round_trip() {
        let p = problem(
            &[(3.0, 4.0, 0.0, 100.0, 3.0, 0.0, 0.0, 100.0, 1.0)],
            1,
            10.0,
            100.0,
        );
        let m = Model::new(&p).unwrap();
        let b = best(&m, &Route::new(&m, 0), 0).unwrap();
        assert_eq!((b.i, b.j), (0, 0));
        assert!((b.cost - 12.0).abs() < 1e-12);
    }

    #[test]
    fn table_of_small_cases() {
        // (tasks, capacity, route of task 0's nodes, expected (i, j) for task 1 or None)
        type Case = (Vec<T>, f64, Vec<usize>, Option<(usize, usize)>);
        let a = (10.0, 0.0, 0.0, 100.0, 20.0, 0.0, 0.0, 100.0, 5.0);
        let cases: Vec<Case> = vec![
            // Same line, room for both: nest B inside A's ride (pickup then delivery right after A's pickup).
            (
                vec![a, (12.0, 0.0, 0.0, 100.0, 18.0, 0.0, 0.0, 100.0, 5.0)],
                10.0,
                vec![0, 1],
                Some((1, 1)),
            ),
            // Capacity 6: B cannot ride with A, so it goes after A's delivery.
            (
                vec![a, (12.0, 0.0, 0.0, 100.0, 18.0, 0.0, 0.0, 100.0, 5.0)],
                6.0,
                vec![0, 1],
                Some((2, 2)),
            ),
            // B's delivery must happen before A's pickup time window opens late.
            (
                vec![
                    (10.0, 0.0, 50.0, 100.0, 20.0, 0.0, 0.0, 100.0, 5.0),
                    (5.0, 0.0, 0.0, 100.0, 8.0, 0.0, 0.0, 20.0, 1.0),
                ],
                10.0,
                vec![0, 1],
                Some((0, 0)),
            ),
            // B's pickup window closed before anyone can reach it.
            (
                vec![a, (90.0, 0.0, 0.0, 50.0, 18.0, 0.0, 0.0, 100.0, 1.0)],
                10.0,
                vec![0, 1],
                None,
            ),
            // B heavier than the vehicle.
            (
                vec![a, (12.0, 0.0, 0.0, 100.0, 18.0, 0.0, 0.0, 100.0, 11.0)],
                10.0,
                vec![0, 1],
                None,
            ),
        ];
        for (k, (tasks, cap, stops, want)) in cases.into_iter().enumerate() {
            let p = problem(&tasks, 1, cap, 200.0);
            let m = Model::new(&p).unwrap();
            let r = route(&m, 0, &stops);
            let got = best(&m, &r, 1);
            assert_eq!(got.map(|b| (b.i, b.j)), want, "case {k}");
            let brute_best = brute(&m, &r, 1)
                .into_iter()
                .min_by(|a, b| a.2.total_cmp(&b.2));
            assert_eq!(
                got.map(|b| b.cost.to_bits()).is_some(),
                brute_best.is_some(),
                "case {k}"
            );
            if let (Some(g), Some(b)) = (got, brute_best) {
                assert!((g.cost - b.2).abs() < 1e-9, "case {k}");
            }
        }
    }

    #[test]
    fn public_primitive_reports_stop_indices_and_onboard() {
        let a = (10.0, 0.0, 0.0, 100.0, 20.0, 0.0, 0.0, 100.0, 5.0);
        let b = (12.0, 0.0, 0.0, 100.0, 18.0, 0.0, 0.0, 100.0, 5.0);
        let mut p = problem(&[a, b, b], 1, 10.0, 200.0);
        let m = Model::new(&p).unwrap();
        let stops = [
            StopRef {
                task: 0,
                kind: StopKind::Pickup,
            },
            StopRef {
                task: 0,
                kind: StopKind::Delivery,
            },
        ];
        let ins = m.cheapest_insertion(0, &stops, 1).unwrap().unwrap();
        assert_eq!((ins.pickup_index, ins.delivery_index), (Some(1), 2));
        assert!(ins.cost.abs() < 1e-9);
        assert!(m.cheapest_insertion(0, &stops, 0).is_err());
        // Vehicle mid-route at x=15 with task 2 on board: only its delivery remains.
        p.vehicles[0].start = crate::routing::Point::new(15.0, 0.0);
        p.tasks[2].onboard = Some(0);
        let m = Model::new(&p).unwrap();
        let ins = m.cheapest_insertion(0, &stops, 2).unwrap().unwrap();
        assert_eq!(ins.pickup_index, None);
        assert_eq!(ins.delivery_index, 1);
        // An infeasible existing route is reported, not silently used.
        let late = [
            StopRef {
                task: 1,
                kind: StopKind::Delivery,
            },
            StopRef {
                task: 1,
                kind: StopKind::Pickup,
            },
        ];
        assert_eq!(
            m.cheapest_insertion(0, &late, 0),
            Err(InsertionError::InfeasibleRoute)
        );
    }

    #[test]
    fn onboard_delivery_cannot_pass_a_pickup_that_fills_the_vehicle() {
        // Task 0 (load 1) is on board vehicle 0 (capacity 6); task 1 (load 6)
        // is picked up at x=10. Taken out of [d0, p1, d1], task 0's delivery
        // may only go back before p1, however cheap a later slot would be.
        let far = (30.0, 0.0, 0.0, 500.0, 10.0, 0.0, 0.0, 500.0, 1.0);
        let full = (10.0, 0.0, 0.0, 500.0, 20.0, 0.0, 0.0, 500.0, 6.0);
        let mut p = problem(&[far, full], 1, 6.0, 1000.0);
        p.tasks[0].onboard = Some(0);
        let m = Model::new(&p).unwrap();
        let without = route(&m, 0, &[2, 3]);
        let mut js = vec![];
        each(&m, &without, 0, |p| js.push(p.j));
        assert_eq!(js, vec![0]);
        let b = best(&m, &without, 0).unwrap();
        let mut r = without.clone();
        apply(&m, &mut r, 0, b);
        assert!(r.clone().update(&m));
        assert_eq!(r.nodes[1..4], [1, 2, 3]);
    }

    fn arb_task() -> impl Strategy<Value = T> {
        (
            0.0..30.0f64,
            0.0..30.0f64,
            0.0..60.0f64,
            0.0..60.0f64,
            0.0..30.0f64,
            0.0..30.0f64,
            0.0..60.0f64,
            1.0..5.0f64,
        )
            .prop_map(|(px, py, pe, pw, dx, dy, dw, l)| {
                (
                    px,
                    py,
                    pe,
                    pe + pw,
                    dx,
                    dy,
                    pe,
                    pe + pw + dw + 30.0,
                    l.floor(),
                )
            })
    }

    proptest! {
        /// The O(1) checks agree with rebuilding the route for every position.
        #[test]
        fn insertion_matches_brute_force(tasks in prop::collection::vec(arb_task(), 2..7), cap in 3.0..10.0f64) {
            let p = problem(&tasks, 1, cap.floor(), 250.0);
            let m = Model::new(&p).unwrap();
            // Build some feasible route greedily from all but the last task.
            let mut r = Route::new(&m, 0);
            for t in 0..tasks.len() - 1 {
                if let Some(b) = best(&m, &r, t) {
                    apply(&m, &mut r, t, b);
                }
            }
            let t = tasks.len() - 1;
            let mut fast = vec![];
            each(&m, &r, t, |p| fast.push((p.i, p.j, p.cost)));
            let slow = brute(&m, &r, t);
            prop_assert_eq!(fast.len(), slow.len());
            for (f, s) in fast.iter().zip(&slow) {
                prop_assert_eq!((f.0, f.1), (s.0, s.1));
                prop_assert!((f.2 - s.2).abs() < 1e-9);
            }
            // The pruned search finds the cheapest of them.
            let want = slow.iter().map(|s| s.2).fold(f64::INFINITY, f64::min);
            match best(&m, &r, t) {
                Some(b) => prop_assert!((b.cost - want).abs() < 1e-9),
                None => prop_assert!(slow.is_empty()),
            }
        }
    }
}
