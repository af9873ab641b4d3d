//! Route minimisation by guided ejection search (after Nagata & Kobayashi
//! 2010): take a route out, push its tasks on an ejection pool (EP) and
//! insert them one by one; a task that fits nowhere raises its penalty and is
//! forced in by ejecting up to `max_eject` tasks whose penalty sum is least,
//! which go back on the pool. Random relocations after each ejection keep the
//! search from cycling. A route is only given up once the pool is empty, so
//! the state is always complete and feasible between attempts.

use super::insertion::{self, Pos};
use super::model::Model;
use super::solution::{Route, State};
use super::{Meter, Params, Rng};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::RngExt as _;

/// Repeatedly removes a route until an attempt fails (runs out of its
/// `route_stall` share of the budget) or the route share is used. Unassigned
/// tasks on entry are pushed through the pool first (they may come from a
/// fleet too small for the construction).
pub(crate) fn minimize(
    m: &Model,
    st: &mut State,
    meter: &mut Meter,
    rng: &mut Rng,
    params: &Params,
) {
    let stop_at = params.route_share;
    let mut penalty = vec![1u32; m.n_tasks];
    if !st.unassigned.is_empty() {
        let mut ep = std::mem::take(&mut st.unassigned);
        if !run(m, st, &mut ep, &mut penalty, meter, rng, params, stop_at) {
            st.unassigned = ep;
            return;
        }
    }
    while meter.progress() < stop_at {
        let cands: Vec<usize> = (0..st.routes.len())
            .filter(|&r| {
                let route = &st.routes[r];
                !route.is_empty()
                    && !route
                        .nodes
                        .iter()
                        .any(|&x| !m.is_terminal(x) && m.onboard[x / 2].is_some())
            })
            .collect();
        if cands.len() <= 1 {
            break;
        }
        let backup = st.clone();
        let r = *cands.choose(rng).expect("non-empty");
        let mut ep = st.tasks_of(m, r);
        st.remove(m, &ep);
        ep.shuffle(rng);
        penalty.iter_mut().for_each(|p| *p = 1);
        // A removal that has not succeeded within `route_stall` of the budget
        // rarely does later (on the Li & Lim sets successes come within a few
        // per cent of the budget or not at all, the slowest seen after 45%),
        // so the rest goes to distance search instead.
        let attempt_end = stop_at.min(meter.progress() + params.route_stall);
        if !run(
            m,
            st,
            &mut ep,
            &mut penalty,
            meter,
            rng,
            params,
            attempt_end,
        ) {
            *st = backup;
            break;
        }
    }
}

/// Empties the pool into the routes; false if the budget ran out first.
#[allow(clippy::too_many_arguments)]
fn run(
    m: &Model,
    st: &mut State,
    ep: &mut Vec<usize>,
    penalty: &mut [u32],
    meter: &mut Meter,
    rng: &mut Rng,
    params: &Params,
    stop_at: f64,
) -> bool {
    while let Some(h) = ep.pop() {
        meter.tick();
        if meter.progress() >= stop_at {
            ep.push(h);
            return false;
        }
        if let Some((r, pos)) = best_feasible(m, st, h) {
            st.insert(m, h, r, pos);
            continue;
        }
        penalty[h] += 1;
        match best_ejection(m, st, h, penalty, params.max_eject, rng) {
            Some((r, out, pos)) => {
                st.remove(m, &out);
                st.insert(m, h, r, pos);
                ep.extend(out);
            }
            None => ep.insert(0, h),
        }
        perturb(m, st, rng, params.perturb_moves, params.perturb_best);
    }
    true
}

/// Cheapest feasible insertion of `t` over the used routes.
fn best_feasible(m: &Model, st: &State, t: usize) -> Option<(usize, Pos)> {
    let mut best: Option<(usize, Pos)> = None;
    for (r, route) in st.routes.iter().enumerate() {
        if route.is_empty() {
            continue;
        }
        if let Some(p) = insertion::best(m, route, t) {
            if best.is_none_or(|(_, b)| p.cost < b.cost) {
                best = Some((r, p));
            }
        }
    }
    best
}

/// The ejection of at most `kmax` (1 or 2) tasks from one route that lets `h`
/// in with the least penalty sum. Candidate sets are tried in increasing
/// (penalty sum, size, random) order so the search usually stops after a few
/// evaluations even on long routes; among the first few feasible sets of the
/// least sum the one adding least distance wins.
fn best_ejection(
    m: &Model,
    st: &State,
    h: usize,
    penalty: &[u32],
    kmax: usize,
    rng: &mut Rng,
) -> Option<(usize, Vec<usize>, Pos)> {
    const EXTRA_TIES: usize = 6;
    // Bounds the work of one step on long routes, where a hopeless task
    // would otherwise try every pair of a route.
    const MAX_EVALS: usize = 1500;
    // (penalty sum, size, tie-break, route, a, b) with b == usize::MAX for singletons.
    let mut cands: Vec<(u32, u8, u32, usize, usize, usize)> = Vec::new();
    for r in 0..st.routes.len() {
        if st.routes[r].is_empty() {
            continue;
        }
        let tasks = st.tasks_of(m, r);
        for (i, &a) in tasks.iter().enumerate() {
            cands.push((penalty[a], 1, rng.random(), r, a, usize::MAX));
            if kmax >= 2 {
                for &b in &tasks[i + 1..] {
                    cands.push((penalty[a] + penalty[b], 2, rng.random(), r, a, b));
                }
            }
        }
    }
    cands.sort_unstable();
    let mut scratch = Route::new(m, 0);
    let mut best: Option<(u32, f64, usize, Vec<usize>, Pos)> = None;
    let mut after = 0;
    for &(psum, _, _, r, a, b) in cands.iter().take(MAX_EVALS) {
        if let Some(bst) = &best {
            if psum > bst.0 || after >= EXTRA_TIES {
                break;
            }
            after += 1;
        }
        let set: &[usize] = if b == usize::MAX {
            &[a][..]
        } else {
            &[a, b][..]
        };
        let route = &st.routes[r];
        scratch.vehicle = route.vehicle;
        scratch.nodes.clear();
        scratch.nodes.extend(
            route
                .nodes
                .iter()
                .copied()
                .filter(|&x| m.is_terminal(x) || !set.contains(&(x / 2))),
        );
        scratch.update(m);
        if let Some(p) = insertion::best(m, &scratch, h) {
            let delta = scratch.dist + p.cost - route.dist;
            if best.as_ref().is_none_or(|bst| delta < bst.1) {
                best = Some((psum, delta, r, set.to_vec(), p));
            }
        }
    }
    best.map(|(_, _, r, set, p)| (r, set, p))
}

/// Random feasible relocations of tasks between used routes.
pub(crate) fn perturb(m: &Model, st: &mut State, rng: &mut Rng, moves: usize, cheapest: bool) {
    let used: Vec<usize> = (0..st.routes.len())
        .filter(|&r| !st.routes[r].is_empty())
        .collect();
    if used.len() < 2 {
        return;
    }
    for _ in 0..moves {
        let from = used[rng.random_range(0..used.len())];
        let to = used[rng.random_range(0..used.len())];
        if from == to || st.routes[from].stops() <= 2 {
            continue;
        }
        let tasks = st.tasks_of(m, from);
        let t = tasks[rng.random_range(0..tasks.len())];
        if m.onboard[t].is_some() {
            continue;
        }
        let pos = if cheapest {
            insertion::best(m, &st.routes[to], t)
        } else {
            random_position(m, &st.routes[to], t, rng)
        };
        if let Some(p) = pos {
            st.remove(m, &[t]);
            st.insert(m, t, to, p);
        }
    }
}

/// A uniformly random feasible insertion position (reservoir sampling).
fn random_position(m: &Model, r: &Route, t: usize, rng: &mut Rng) -> Option<Pos> {
    let mut pick = None;
    let mut n = 0u32;
    insertion::each(m, r, t, |p| {
        n += 1;
        if rng.random_range(0..n) == 0 {
            pick = Some(p);
        }
    });
    pick
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::testkit::*;
    use rand::SeedableRng;

    #[test]
    fn ejection_makes_room_by_least_penalty() {
        // Capacity 2: the route already carries tasks 0 and 1 together, task 2
        // needs the same time slot, so one of them must go.
        let t = (10.0, 0.0, 0.0, 15.0, 20.0, 0.0, 0.0, 30.0, 1.0);
        let p = problem(&[t, t, t], 1, 2.0, 100.0);
        let m = Model::new(&p).unwrap();
        let mut st = State::new(&m);
        let r = route(&m, 0, &[0, 2, 1, 3]);
        assert!(r.clone().update(&m));
        st.routes[0] = r;
        st.route_of[0] = 0;
        st.route_of[1] = 0;
        assert!(best_feasible(&m, &st, 2).is_none());
        let mut rng = Rng::seed_from_u64(1);
        let (r, out, _) = best_ejection(&m, &st, 2, &[5, 1, 1], 2, &mut rng).unwrap();
        assert_eq!((r, out), (0, vec![1]));
        let (_, out, _) = best_ejection(&m, &st, 2, &[1, 5, 1], 2, &mut rng).unwrap();
        assert_eq!(out, vec![0]);
    }

    #[test]
    fn hopeless_removal_gives_up_after_its_stall_share() {
        // Both tasks need the same time slot and a vehicle holds one load:
        // no route can go, and the attempt must stop after 5% of the budget
        // instead of using the whole route share.
        let t = (10.0, 0.0, 0.0, 15.0, 20.0, 0.0, 0.0, 30.0, 1.0);
        let p = problem(&[t, t], 2, 1.0, 100.0);
        let m = Model::new(&p).unwrap();
        let mut st = State::new(&m);
        st.routes[0] = route(&m, 0, &[0, 1]);
        st.routes[1] = route(&m, 1, &[2, 3]);
        st.route_of = vec![0, 1];
        let clock = crate::routing::SystemClock::start();
        let mut meter = Meter::new(&crate::routing::Budget::iterations(1000), &clock);
        let params = Params {
            route_share: 1.0,
            route_stall: 0.05,
            ..Params::default()
        };
        minimize(&m, &mut st, &mut meter, &mut Rng::seed_from_u64(2), &params);
        assert_eq!(st.used(), 2);
        assert!(meter.done <= 51, "{}", meter.done);
        assert!(st.routes.iter().all(|r| r.clone().update(&m)));
    }

    #[test]
    fn minimize_merges_two_routes_into_one() {
        let a = (10.0, 0.0, 0.0, 100.0, 20.0, 0.0, 0.0, 100.0, 1.0);
        let b = (12.0, 0.0, 0.0, 100.0, 18.0, 0.0, 0.0, 100.0, 1.0);
        let p = problem(&[a, b], 2, 5.0, 200.0);
        let m = Model::new(&p).unwrap();
        let mut st = State::new(&m);
        st.routes[0] = route(&m, 0, &[0, 1]);
        st.routes[1] = route(&m, 1, &[2, 3]);
        st.route_of = vec![0, 1];
        let clock = crate::routing::SystemClock::start();
        let mut meter = Meter::new(&crate::routing::Budget::iterations(100), &clock);
        minimize(
            &m,
            &mut st,
            &mut meter,
            &mut Rng::seed_from_u64(2),
            &Params {
                route_share: 1.0,
                ..Params::default()
            },
        );
        assert_eq!(st.used(), 1);
        assert!(st.routes.iter().all(|r| r.clone().update(&m)));
    }
}
