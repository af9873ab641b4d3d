//! Greedy and regret-k insertion (Ropke & Pisinger 2006) over the unassigned
//! tasks, optionally opening idle vehicles; builds the first solution and is
//! the repair step of ALNS. Best insertions are cached per (task, route) and
//! only the column of the route that changed is re-evaluated.

use super::insertion::{self, Pos};
use super::model::Model;
use super::solution::{Route, State};
use super::Rng;
use rand::RngExt as _;

/// Repair settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Repair {
    /// 1 = greedy (cheapest first); k ≥ 2 = regret-k; `usize::MAX` = regret over all routes.
    pub regret: usize,
    /// Noise amplitude as a fraction of the largest distance (0 = none).
    pub noise: f64,
    /// May idle vehicles be started?
    pub open_routes: bool,
}

/// Splits tasks into those some vehicle could serve alone and those none can
/// (impossible windows or loads), which are reported unserved.
pub(crate) fn servable(m: &Model) -> (Vec<usize>, Vec<usize>) {
    let empties: Vec<Route> = (0..m.n_vehicles)
        .filter(|&v| m.class[v] == v || m.initial_load[v] > 0.0)
        .map(|v| Route::new(m, v))
        .collect();
    let mut ok = vec![];
    let mut never = vec![];
    for t in 0..m.n_tasks {
        let fits = match m.onboard[t] {
            Some(v) => insertion::best(m, &Route::new(m, v), t).is_some(),
            None => empties.iter().any(|r| insertion::best(m, r, t).is_some()),
        };
        if fits {
            ok.push(t);
        } else {
            never.push(t);
        }
    }
    (ok, never)
}

/// A regret large enough to dominate any real cost difference.
const MISSING: f64 = 1e15;

/// Inserts as many of `st.unassigned` as possible; the rest stay unassigned.
pub(crate) fn repair(m: &Model, st: &mut State, rng: &mut Rng, cfg: Repair) {
    let mut pend = std::mem::take(&mut st.unassigned);
    if pend.is_empty() {
        return;
    }
    let nr = st.routes.len();
    let amp = cfg.noise * m.max_dist;
    // Idle vehicles cost this much extra, so existing routes are filled first.
    let fixed = 1e3 * (m.max_dist + 1.0);
    let mut active: Vec<bool> = vec![false; nr];
    let mut rep_taken = vec![false; m.n_vehicles];
    for (r, route) in st.routes.iter().enumerate() {
        if !route.is_empty() {
            active[r] = true;
        } else if cfg.open_routes && !rep_taken[m.class[route.vehicle]] {
            rep_taken[m.class[route.vehicle]] = true;
            active[r] = true;
        }
    }
    let eval = |route: &Route, t: usize, rng: &mut Rng| -> Option<Pos> {
        insertion::best(m, route, t).map(|mut p| {
            if route.is_empty() {
                p.cost += fixed;
            }
            if amp > 0.0 {
                p.cost = (p.cost + rng.random_range(-amp..amp)).max(0.0);
            }
            p
        })
    };
    let mut cache: Vec<Vec<Option<Pos>>> = pend
        .iter()
        .map(|&t| {
            (0..nr)
                .map(|r| {
                    if active[r] {
                        eval(&st.routes[r], t, rng)
                    } else {
                        None
                    }
                })
                .collect()
        })
        .collect();
    let mut costs: Vec<f64> = Vec::with_capacity(nr);
    while !pend.is_empty() {
        let n_active = active.iter().filter(|&&a| a).count();
        let mut pick: Option<(usize, f64, f64)> = None; // (index, regret, best cost)
        for (i, row) in cache.iter().enumerate() {
            costs.clear();
            costs.extend(row.iter().flatten().map(|p| p.cost));
            if costs.is_empty() {
                continue;
            }
            let c0 = costs.iter().copied().fold(f64::INFINITY, f64::min);
            let score = if cfg.regret <= 1 {
                -c0
            } else {
                let k = cfg.regret.min(n_active).max(2);
                costs.sort_unstable_by(|a, b| a.total_cmp(b));
                (1..k)
                    .map(|h| costs.get(h).map_or(MISSING, |c| c - c0))
                    .sum()
            };
            let better = match pick {
                None => true,
                Some((_, s, c)) => score > s || (score == s && c0 < c),
            };
            if better {
                pick = Some((i, score, c0));
            }
        }
        let Some((i, _, _)) = pick else { break };
        let (r, pos) = cache[i]
            .iter()
            .enumerate()
            .filter_map(|(r, p)| p.map(|p| (r, p)))
            .min_by(|a, b| a.1.cost.total_cmp(&b.1.cost))
            .expect("picked task has an option");
        let t = pend.swap_remove(i);
        cache.swap_remove(i);
        let was_empty = st.routes[r].is_empty();
        st.insert(m, t, r, pos);
        for (j, &u) in pend.iter().enumerate() {
            cache[j][r] = eval(&st.routes[r], u, rng);
        }
        if was_empty && cfg.open_routes {
            let c = m.class[st.routes[r].vehicle];
            if let Some(nx) = (0..nr).find(|&x| {
                !active[x] && st.routes[x].is_empty() && m.class[st.routes[x].vehicle] == c
            }) {
                active[nx] = true;
                for (j, &u) in pend.iter().enumerate() {
                    cache[j][nx] = eval(&st.routes[nx], u, rng);
                }
            }
        }
    }
    st.unassigned = pend;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::testkit::*;
    use rand::SeedableRng;

    fn along_x(n: usize) -> Vec<T> {
        (0..n)
            .map(|k| {
                (
                    k as f64 * 2.0 + 1.0,
                    0.0,
                    0.0,
                    500.0,
                    k as f64 * 2.0 + 2.0,
                    0.0,
                    0.0,
                    500.0,
                    1.0,
                )
            })
            .collect()
    }

    #[test]
    fn greedy_and_regret_insert_everything_into_one_vehicle() {
        for regret in [1, 2, 3, usize::MAX] {
            let p = problem(&along_x(5), 3, 10.0, 1000.0);
            let m = Model::new(&p).unwrap();
            let mut st = State::new(&m);
            st.unassigned = (0..5).collect();
            let mut rng = Rng::seed_from_u64(1);
            repair(
                &m,
                &mut st,
                &mut rng,
                Repair {
                    regret,
                    noise: 0.0,
                    open_routes: true,
                },
            );
            assert!(st.unassigned.is_empty());
            // Idle vehicles carry a fixed cost, so one route suffices.
            assert_eq!(st.used(), 1, "regret {regret}");
            assert!(
                (st.distance() - 20.0).abs() < 1e-9,
                "regret {regret}: {}",
                st.distance()
            );
        }
    }

    #[test]
    fn closed_fleet_leaves_the_rest_unassigned() {
        // Capacity 1 and disjoint windows: each vehicle can take only one task.
        let t = (10.0, 0.0, 0.0, 30.0, 20.0, 0.0, 0.0, 40.0, 1.0);
        let p = problem(&[t, t, t], 2, 1.0, 45.0);
        let m = Model::new(&p).unwrap();
        let mut st = State::new(&m);
        st.unassigned = vec![0, 1, 2];
        let mut rng = Rng::seed_from_u64(1);
        repair(
            &m,
            &mut st,
            &mut rng,
            Repair {
                regret: 2,
                noise: 0.02,
                open_routes: true,
            },
        );
        assert_eq!(st.unassigned.len(), 1);
        assert_eq!(st.used(), 2);
        // Without opening routes nothing can be placed in an empty fleet.
        let mut st = State::new(&m);
        st.unassigned = vec![0];
        repair(
            &m,
            &mut st,
            &mut rng,
            Repair {
                regret: 1,
                noise: 0.0,
                open_routes: false,
            },
        );
        assert_eq!(st.unassigned, vec![0]);
    }

    #[test]
    fn servable_splits_impossible_tasks() {
        let ok = (1.0, 0.0, 0.0, 100.0, 2.0, 0.0, 0.0, 100.0, 1.0);
        let late = (90.0, 0.0, 0.0, 5.0, 2.0, 0.0, 0.0, 100.0, 1.0);
        let heavy = (1.0, 0.0, 0.0, 100.0, 2.0, 0.0, 0.0, 100.0, 99.0);
        let p = problem(&[ok, late, heavy], 2, 10.0, 200.0);
        let m = Model::new(&p).unwrap();
        assert_eq!(servable(&m), (vec![0], vec![1, 2]));
    }
}
