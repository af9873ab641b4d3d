//! Distance minimisation by adaptive large neighbourhood search (Ropke &
//! Pisinger 2006): destroy with random, worst, Shaw, route or string removal
//! (strings of consecutive stops near a seed, after SISR), repair
//! with greedy or regret-k insertion (optionally noised), accept by simulated
//! annealing, and adapt operator weights every segment. Repair never starts
//! an idle vehicle, and an incomplete repair is rejected, so the vehicle count
//! can only go down (a destroy that empties a route removes that vehicle).
//! After `Params::restart` iterations without a new best the walk goes back
//! to the best solution.
//! Each new best solution is taken to a local optimum of the pair moves in
//! `local_search.rs` before the walk continues from it.

use super::construct::{self, Repair};
use super::local_search::LocalSearch;
use super::model::Model;
use super::solution::State;
use super::{Meter, Params, Rng};
use rand::RngExt as _;

/// Removal heuristics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Destroy {
    Random,
    Worst,
    Shaw,
    Route,
    String,
}

const DESTROYS: [Destroy; 5] = [
    Destroy::Random,
    Destroy::Worst,
    Destroy::Shaw,
    Destroy::Route,
    Destroy::String,
];
/// Nearest stops kept per stop for string removal.
const NEAR_STOPS: usize = 40;
/// Longest string (in stops) string removal cuts out of a route.
const MAX_STRING: usize = 10;
const REGRETS: [usize; 4] = [1, 2, 3, usize::MAX];
const SEGMENT: u64 = 100;
const MAX_INCOMPLETE: u32 = 200;
const REACTION: f64 = 0.1;
const SIGMA_BEST: f64 = 33.0;
const SIGMA_BETTER: f64 = 9.0;
const SIGMA_ACCEPTED: f64 = 13.0;

struct Wheel {
    w: Vec<f64>,
    score: Vec<f64>,
    uses: Vec<u32>,
}

impl Wheel {
    fn new(n: usize) -> Wheel {
        Wheel {
            w: vec![1.0; n],
            score: vec![0.0; n],
            uses: vec![0; n],
        }
    }
    fn spin(&mut self, rng: &mut Rng) -> usize {
        let total: f64 = self.w.iter().sum();
        let mut x = rng.random_range(0.0..total);
        for (i, &w) in self.w.iter().enumerate() {
            if x < w {
                self.uses[i] += 1;
                return i;
            }
            x -= w;
        }
        self.uses[self.w.len() - 1] += 1;
        self.w.len() - 1
    }
    fn reward(&mut self, i: usize, s: f64) {
        self.score[i] += s;
    }
    fn adapt(&mut self) {
        for i in 0..self.w.len() {
            if self.uses[i] > 0 {
                self.w[i] =
                    (1.0 - REACTION) * self.w[i] + REACTION * self.score[i] / self.uses[i] as f64;
                self.w[i] = self.w[i].max(0.05);
            }
            self.score[i] = 0.0;
            self.uses[i] = 0;
        }
    }
}

/// For each stop node, the other stop nodes nearest to it, nearest first:
/// where string removal looks for the next route to cut.
pub(crate) struct NearStops(Vec<Vec<usize>>);

impl NearStops {
    /// The `NEAR_STOPS` nearest stops of every stop (ties by node id).
    pub fn new(m: &Model) -> NearStops {
        let n = 2 * m.n_tasks;
        NearStops(
            (0..n)
                .map(|a| {
                    let by_distance =
                        |x: &usize, y: &usize| m.d(a, *x).total_cmp(&m.d(a, *y)).then(x.cmp(y));
                    let mut others: Vec<usize> = (0..n).filter(|&b| b != a).collect();
                    let k = NEAR_STOPS.min(others.len());
                    if k > 0 {
                        others.select_nth_unstable_by(k - 1, by_distance);
                        others.truncate(k);
                        others.sort_unstable_by(by_distance);
                    }
                    others
                })
                .collect(),
        )
    }
}

/// Is `a` better than `b` (fewer unassigned, fewer vehicles, less distance)?
fn better(a: &State, b: &State) -> bool {
    let (ra, rb) = (a.rank(), b.rank());
    ra < rb || (ra == rb && a.distance() < b.distance() - 1e-9)
}

/// Runs ALNS until the budget is used; returns the best state found.
pub(crate) fn improve(
    m: &Model,
    start: State,
    meter: &mut Meter,
    rng: &mut Rng,
    params: &Params,
) -> State {
    let mut cur = start;
    let n_assigned = m.n_tasks - cur.unassigned.len();
    if n_assigned == 0 || cur.used() == 0 {
        return cur;
    }
    let mut ls = (params.local_search > 0).then(|| LocalSearch::new(m, params.local_search));
    if let Some(ls) = ls.as_mut() {
        ls.descend(m, &mut cur);
    }
    let mut best = cur.clone();
    let p0 = meter.progress().min(1.0);
    let t0 = params.start_worse * cur.distance() / std::f64::consts::LN_2;
    let t_end = t0 * 0.002;
    let pen = params.unassigned_penalty * m.max_dist;
    let mut destroys = Wheel::new(DESTROYS.len());
    let mut repairs = Wheel::new(REGRETS.len());
    let mut noises = Wheel::new(2);
    let mut it = 0u64;
    let mut incomplete_for = 0u32;
    let mut since_best = 0u64;
    let mut cand = cur.clone();
    let near = NearStops::new(m);
    while meter.progress() < 1.0 {
        meter.tick();
        it += 1;
        let frac = ((meter.progress() - p0) / (1.0 - p0).max(1e-9)).clamp(0.0, 1.0);
        let temp = t0 * (t_end / t0).powf(frac);
        cand.clone_from(&cur);
        let routed = m.n_tasks - cand.unassigned.len();
        let qmax = ((routed as f64 * params.destroy_share) as usize)
            .clamp(1, params.destroy_cap.max(1))
            .max(4.min(routed));
        let q = rng.random_range(4.min(qmax)..=qmax);
        let di = destroys.spin(rng);
        let removed = destroy(m, &cand, &near, DESTROYS[di], q, rng);
        cand.remove(m, &removed);
        cand.unassigned.extend(removed);
        let ri = repairs.spin(rng);
        let ni = noises.spin(rng);
        construct::repair(
            m,
            &mut cand,
            rng,
            Repair {
                regret: REGRETS[ri],
                noise: if ni == 1 { 0.025 } else { 0.0 },
                open_routes: false,
            },
        );
        let mut score = 0.0;
        if better(&cand, &best) {
            // Polishing only new bests keeps the local search rare (and its
            // cost small) while every reported solution is a local optimum
            // of its neighbourhoods.
            if let Some(ls) = ls.as_mut() {
                ls.descend(m, &mut cand);
            }
            best.clone_from(&cand);
            cur.clone_from(&cand);
            score = SIGMA_BEST;
            since_best = 0;
        } else if pen > 0.0 || cand.rank() <= cur.rank() {
            // With a finite penalty the walk may pass through incomplete
            // solutions, which packed, vehicle-minimal routes otherwise
            // almost never allow; only complete ones can become `best`.
            let cost = |s: &State| s.distance() + pen * s.unassigned.len() as f64;
            let (dc, dn) = (cost(&cur), cost(&cand));
            if cand.rank() < cur.rank() || dn < dc - 1e-9 {
                cur.clone_from(&cand);
                score = SIGMA_BETTER;
            } else if dn > dc + 1e-9 && rng.random::<f64>() < (-(dn - dc) / temp).exp() {
                cur.clone_from(&cand);
                score = SIGMA_ACCEPTED;
            }
        }
        // An incomplete walk that stays incomplete is drifting away from
        // anything usable: go back to the best complete solution.
        incomplete_for = if cur.unassigned.len() > best.unassigned.len() {
            incomplete_for + 1
        } else {
            0
        };
        if incomplete_for > MAX_INCOMPLETE {
            cur.clone_from(&best);
            incomplete_for = 0;
        }
        // A walk that has found nothing better for a long time is most
        // likely circling in a poorer basin than the best one: start over
        // from the best, at the temperature the schedule has reached.
        since_best += 1;
        if params.restart > 0 && since_best > params.restart {
            cur.clone_from(&best);
            since_best = 0;
        }
        destroys.reward(di, score);
        repairs.reward(ri, score);
        noises.reward(ni, score);
        if it.is_multiple_of(SEGMENT) {
            destroys.adapt();
            repairs.adapt();
            noises.adapt();
        }
    }
    best
}

/// Chooses `q` routed tasks to take out.
pub(crate) fn destroy(
    m: &Model,
    st: &State,
    near: &NearStops,
    kind: Destroy,
    q: usize,
    rng: &mut Rng,
) -> Vec<usize> {
    let routed: Vec<usize> = (0..m.n_tasks)
        .filter(|&t| st.route_of[t] != usize::MAX)
        .collect();
    let q = q.min(routed.len());
    if q == 0 {
        return vec![];
    }
    match kind {
        Destroy::Random => {
            let mut v = routed;
            let (head, _) = rand::seq::SliceRandom::partial_shuffle(&mut v[..], rng, q);
            head.to_vec()
        }
        Destroy::Worst => {
            let mut gains: Vec<(f64, usize)> = routed
                .iter()
                .map(|&t| (removal_gain(m, st, t), t))
                .collect();
            gains.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
            pick_biased(gains.into_iter().map(|g| g.1).collect(), q, 3.0, rng)
        }
        Destroy::Shaw => shaw(m, st, &routed, q, rng),
        Destroy::String => strings(m, st, near, &routed, q, rng),
        Destroy::Route => {
            let used: Vec<usize> = (0..st.routes.len())
                .filter(|&r| !st.routes[r].is_empty())
                .collect();
            // Smaller routes are likelier picks: they are the ones worth dissolving.
            let r = *used
                .iter()
                .min_by_key(|&&r| (st.routes[r].stops(), rng.random::<u32>()))
                .expect("some route is used");
            let r = if rng.random_bool(0.5) {
                r
            } else {
                used[rng.random_range(0..used.len())]
            };
            let mut out = st.tasks_of(m, r);
            out.retain(|&t| m.onboard[t].is_none());
            out
        }
    }
}

/// Repeatedly takes element `floor(y^p · len)` of a ranked list (y uniform).
fn pick_biased(mut ranked: Vec<usize>, q: usize, p: f64, rng: &mut Rng) -> Vec<usize> {
    let mut out = Vec::with_capacity(q);
    while out.len() < q && !ranked.is_empty() {
        let y: f64 = rng.random();
        let i = ((y.powf(p) * ranked.len() as f64) as usize).min(ranked.len() - 1);
        out.push(ranked.remove(i));
    }
    out
}

/// Distance saved by taking task `t` out of its route.
pub(crate) fn removal_gain(m: &Model, st: &State, t: usize) -> f64 {
    let r = &st.routes[st.route_of[t]];
    let nodes = &r.nodes;
    let (p, d) = (2 * t, 2 * t + 1);
    let ip = nodes.iter().position(|&x| x == p);
    let id = nodes.iter().position(|&x| x == d).expect("delivery routed");
    match ip {
        Some(ip) if ip + 1 == id => {
            m.d(nodes[ip - 1], p) + m.d(p, d) + m.d(d, nodes[id + 1])
                - m.d(nodes[ip - 1], nodes[id + 1])
        }
        Some(ip) => {
            m.d(nodes[ip - 1], p) + m.d(p, nodes[ip + 1]) - m.d(nodes[ip - 1], nodes[ip + 1])
                + m.d(nodes[id - 1], d)
                + m.d(d, nodes[id + 1])
                - m.d(nodes[id - 1], nodes[id + 1])
        }
        None => m.d(nodes[id - 1], d) + m.d(d, nodes[id + 1]) - m.d(nodes[id - 1], nodes[id + 1]),
    }
}

/// String removal (after Christiaens & Vanden Berghe's SISR, 2020): from a
/// random stop, walk its nearest stops and cut out of each one's route a
/// string of consecutive stops around it (random length up to
/// `MAX_STRING`), taking every task with a stop in the string, until `q`
/// tasks are out. Freeing consecutive stops opens a stretch of the route's
/// schedule, which a repair can refill in a different order.
fn strings(
    m: &Model,
    st: &State,
    near: &NearStops,
    routed: &[usize],
    q: usize,
    rng: &mut Rng,
) -> Vec<usize> {
    let t0 = routed[rng.random_range(0..routed.len())];
    let seed = if m.onboard[t0].is_some() || rng.random_bool(0.5) {
        2 * t0 + 1
    } else {
        2 * t0
    };
    let mut taken = vec![false; m.n_tasks];
    let mut out = Vec::with_capacity(q + MAX_STRING);
    for &c in std::iter::once(&seed).chain(&near.0[seed]) {
        if out.len() >= q {
            break;
        }
        let r = st.route_of[c / 2];
        if r == usize::MAX || taken[c / 2] {
            continue;
        }
        let nodes = &st.routes[r].nodes;
        let Some(k) = nodes.iter().position(|&x| x == c) else {
            continue; // the pickup of an onboard task
        };
        let n = nodes.len() - 2;
        let l = rng.random_range(1..=n.min(MAX_STRING));
        // First stop of the string: it must contain position `k` and stay
        // within the stops 1..=n.
        let lo = (k + 1).saturating_sub(l).max(1);
        let hi = k.min(n + 1 - l);
        let s = rng.random_range(lo..=hi);
        for &x in &nodes[s..s + l] {
            let t = x / 2;
            if !taken[t] && m.onboard[t].is_none() {
                taken[t] = true;
                out.push(t);
            }
        }
    }
    out
}

/// Shaw removal: tasks related by place, time and load.
fn shaw(m: &Model, st: &State, routed: &[usize], q: usize, rng: &mut Rng) -> Vec<usize> {
    // Service-start times of every routed node, for the time term.
    let mut when = vec![0.0; 2 * m.n_tasks];
    for r in &st.routes {
        for (k, &x) in r.nodes.iter().enumerate() {
            if !m.is_terminal(x) {
                when[x] = r.start[k];
            }
        }
    }
    let dmax = m.max_dist.max(1e-9);
    let tmax = routed.iter().map(|&t| when[2 * t + 1]).fold(1e-9, f64::max);
    let lmax = routed
        .iter()
        .map(|&t| m.demand[2 * t].abs())
        .fold(1e-9, f64::max);
    let rel = |a: usize, b: usize| {
        9.0 * (m.d(2 * a, 2 * b) + m.d(2 * a + 1, 2 * b + 1)) / dmax
            + 3.0 * ((when[2 * a] - when[2 * b]).abs() + (when[2 * a + 1] - when[2 * b + 1]).abs())
                / tmax
            + 2.0 * (m.demand[2 * a] - m.demand[2 * b]).abs() / lmax
            + 5.0 * f64::from(u8::from(st.route_of[a] != st.route_of[b]))
    };
    let mut out = vec![routed[rng.random_range(0..routed.len())]];
    let mut rest: Vec<usize> = routed.iter().copied().filter(|&t| t != out[0]).collect();
    while out.len() < q && !rest.is_empty() {
        let r = out[rng.random_range(0..out.len())];
        rest.sort_unstable_by(|&a, &b| rel(r, a).total_cmp(&rel(r, b)));
        let y: f64 = rng.random();
        let i = ((y.powf(6.0) * rest.len() as f64) as usize).min(rest.len() - 1);
        out.push(rest.remove(i));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::construct::Repair;
    use crate::routing::testkit::*;
    use crate::routing::Params;
    use rand::SeedableRng;

    fn solved(n: usize) -> (Model, State) {
        let tasks: Vec<T> = (0..n)
            .map(|k| {
                let a = k as f64 * 0.7;
                (
                    10.0 * a.cos(),
                    10.0 * a.sin(),
                    0.0,
                    400.0,
                    15.0 * a.cos(),
                    15.0 * a.sin(),
                    0.0,
                    400.0,
                    1.0,
                )
            })
            .collect();
        let p = problem(&tasks, 4, 3.0, 500.0);
        let m = Model::new(&p).unwrap();
        let mut st = State::new(&m);
        st.unassigned = (0..n).collect();
        construct::repair(
            &m,
            &mut st,
            &mut Rng::seed_from_u64(3),
            Repair {
                regret: 1,
                noise: 0.0,
                open_routes: true,
            },
        );
        assert!(st.unassigned.is_empty());
        (m, st)
    }

    #[test]
    fn every_destroy_returns_distinct_routed_tasks() {
        let (m, st) = solved(10);
        let near = NearStops::new(&m);
        let mut rng = Rng::seed_from_u64(5);
        for kind in DESTROYS {
            for q in [1, 4, 10] {
                let mut out = destroy(&m, &st, &near, kind, q, &mut rng);
                assert!(!out.is_empty(), "{kind:?}");
                match kind {
                    Destroy::Route => {}
                    // Whole strings go, so a little more than asked.
                    Destroy::String => assert!(out.len() >= q, "{kind:?}"),
                    _ => assert_eq!(out.len(), q, "{kind:?}"),
                }
                assert!(out.iter().all(|&t| st.route_of[t] != usize::MAX));
                out.sort_unstable();
                out.dedup();
                let mut c = st.clone();
                c.remove(&m, &out);
                assert!(c.routes.iter().all(|r| r.clone().update(&m)));
            }
        }
        // Route removal empties exactly one route.
        let out = destroy(&m, &st, &near, Destroy::Route, 1, &mut rng);
        let mut c = st.clone();
        c.remove(&m, &out);
        assert_eq!(c.used() + 1, st.used());
    }

    #[test]
    fn string_removal_cuts_consecutive_stops() {
        // With q = 1 only the first string is cut: the tasks taken are
        // exactly those with a stop in some run of consecutive positions of
        // one route.
        let (m, st) = solved(12);
        let near = NearStops::new(&m);
        for seed in 0..40u64 {
            let mut out = destroy(
                &m,
                &st,
                &near,
                Destroy::String,
                1,
                &mut Rng::seed_from_u64(seed),
            );
            out.sort_unstable();
            let is_run = st.routes.iter().any(|r| {
                let stops = &r.nodes[1..r.nodes.len() - 1];
                (0..stops.len()).any(|a| {
                    (a + 1..=stops.len()).any(|b| {
                        let mut ts: Vec<usize> = stops[a..b].iter().map(|&x| x / 2).collect();
                        ts.sort_unstable();
                        ts.dedup();
                        ts == out
                    })
                })
            });
            assert!(is_run, "seed {seed}: {out:?}");
        }
    }

    #[test]
    fn removal_gain_is_the_distance_saved() {
        let (m, st) = solved(8);
        for t in 0..8 {
            let mut c = st.clone();
            c.remove(&m, &[t]);
            assert!((st.distance() - c.distance() - removal_gain(&m, &st, t)).abs() < 1e-9);
        }
    }

    #[test]
    fn worst_removal_prefers_the_detour() {
        // Three tasks on a line and one far off: the outlier is the worst.
        let mut tasks: Vec<T> = (0..3)
            .map(|k| {
                (
                    k as f64 + 1.0,
                    0.0,
                    0.0,
                    900.0,
                    k as f64 + 1.5,
                    0.0,
                    0.0,
                    900.0,
                    1.0,
                )
            })
            .collect();
        tasks.push((2.0, 40.0, 0.0, 900.0, 2.5, 40.0, 0.0, 900.0, 1.0));
        let p = problem(&tasks, 1, 10.0, 1000.0);
        let m = Model::new(&p).unwrap();
        let mut st = State::new(&m);
        st.unassigned = (0..4).collect();
        construct::repair(
            &m,
            &mut st,
            &mut Rng::seed_from_u64(1),
            Repair {
                regret: 1,
                noise: 0.0,
                open_routes: true,
            },
        );
        let near = NearStops::new(&m);
        let hits = (0..50u64)
            .filter(|&s| {
                destroy(
                    &m,
                    &st,
                    &near,
                    Destroy::Worst,
                    1,
                    &mut Rng::seed_from_u64(s),
                ) == vec![3]
            })
            .count();
        assert!(hits > 25, "{hits}");
    }

    #[test]
    fn improve_never_worsens_and_stays_feasible() {
        let (m, st) = solved(12);
        let before = (st.used(), st.distance());
        let clock = crate::routing::SystemClock::start();
        let mut meter = Meter::new(&crate::routing::Budget::iterations(300), &clock);
        let best = improve(
            &m,
            st,
            &mut meter,
            &mut Rng::seed_from_u64(9),
            &Params::default(),
        );
        assert!(best.unassigned.is_empty());
        assert!((best.used(), best.distance()) <= before);
        let sol = crate::routing::Solution::from_routes(&m, &best.routes, vec![], 0);
        sol.check(&m).unwrap();
    }
}
