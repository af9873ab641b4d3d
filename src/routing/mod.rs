//! Route optimiser for pickup-and-delivery with time windows (PDPTW).
//!
//! **Layout**
//! - `mod.rs` — entry points ([`solve`], [`solve_model`]), the [`Budget`] and
//!   the injected [`Clock`].
//! - `problem.rs` — the input model: [`Vehicle`], [`Task`], [`Stop`], [`Problem`].
//! - `travel.rs` — the [`TravelModel`] trait with [`Euclidean`] and [`Haversine`].
//! - `model.rs` — [`Model`]: the problem compiled to nodes and dense matrices.
//! - `solution.rs` — routes with cached schedules (search state), the public
//!   [`Solution`] and its independent feasibility check.
//! - `insertion.rs` — O(1)-per-position pair insertion; the dispatcher's
//!   [`Model::cheapest_insertion`].
//! - `construct.rs` — greedy / regret-k repair with noise, used both to build the
//!   first solution and inside ALNS.
//! - `ejection.rs` — route minimisation by guided ejection search (Nagata &
//!   Kobayashi 2010): empty a route, push its tasks through an ejection pool.
//! - `local_search.rs` — relocate and exchange of pickup-delivery pairs and
//!   tail exchange between routes, descending from each new best ALNS
//!   solution to a local optimum.
//! - `alns.rs` — distance minimisation by adaptive large neighbourhood search
//!   (Ropke & Pisinger 2006) with simulated-annealing acceptance, string
//!   removal among its destroy operators and restarts from the best when the
//!   walk stalls.
//! - `lilim.rs` — Li & Lim instance parser and SINTEF solution writer.
//!
//! The solver is a pure function of the problem, the budget and the seed: it
//! does no IO and reads time only through the [`Clock`] it is given, so runs
//! capped by iterations (and not by time) are reproducible.

pub mod alns;
pub mod construct;
pub mod ejection;
pub mod insertion;
pub mod lilim;
pub mod local_search;
pub mod model;
pub mod problem;
pub mod solution;
pub mod travel;

pub use insertion::{Insertion, InsertionError};
pub use model::{Model, StopKind, StopRef};
pub use problem::{Problem, ProblemError, Stop, Task, Vehicle};
pub use solution::{PlannedStop, RoutePlan, Solution};
pub use travel::{Euclidean, Haversine, Point, TravelModel};

use rand::SeedableRng;
use std::time::{Duration, Instant};

/// How much search to do. The solver stops at whichever limit comes first;
/// with neither set it does [`Budget::DEFAULT_ITERATIONS`] iterations.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    /// Wall-time limit, measured with the injected [`Clock`].
    pub time: Option<Duration>,
    /// Iteration cap (ejection steps plus ALNS iterations).
    pub iterations: Option<u64>,
}

impl Budget {
    /// Iterations done when no limit is given.
    pub const DEFAULT_ITERATIONS: u64 = 20_000;

    /// A pure time limit.
    pub fn time(d: Duration) -> Budget {
        Budget {
            time: Some(d),
            iterations: None,
        }
    }

    /// A pure iteration cap (fully deterministic).
    pub fn iterations(n: u64) -> Budget {
        Budget {
            time: None,
            iterations: Some(n),
        }
    }
}

/// Time source for the budget; injected so tests and replays control it.
pub trait Clock {
    /// Time since the solve started.
    fn elapsed(&self) -> Duration;
}

/// [`Clock`] reading the monotonic system clock from its creation.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock(Instant);

impl SystemClock {
    /// Starts the clock now.
    pub fn start() -> SystemClock {
        SystemClock(Instant::now())
    }
}

impl Clock for SystemClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// Budget bookkeeping shared by the search phases.
pub(crate) struct Meter<'a> {
    clock: &'a dyn Clock,
    time: Option<f64>,
    iterations: Option<u64>,
    pub done: u64,
}

impl<'a> Meter<'a> {
    pub fn new(budget: &Budget, clock: &'a dyn Clock) -> Meter<'a> {
        let iterations = match (budget.time, budget.iterations) {
            (None, None) => Some(Budget::DEFAULT_ITERATIONS),
            (_, it) => it,
        };
        Meter {
            clock,
            time: budget.time.map(|d| d.as_secs_f64()),
            iterations,
            done: 0,
        }
    }

    /// Fraction of the budget used, in [0, 1] (may exceed 1 slightly).
    pub fn progress(&self) -> f64 {
        let mut p: f64 = 0.0;
        if let Some(n) = self.iterations {
            p = p.max(self.done as f64 / n.max(1) as f64);
        }
        if let Some(t) = self.time {
            p = p.max(if t > 0.0 {
                self.clock.elapsed().as_secs_f64() / t
            } else {
                1.0
            });
        }
        p
    }

    pub fn tick(&mut self) {
        self.done += 1;
    }
}

/// The seeded generator every random choice goes through.
pub(crate) type Rng = rand::rngs::Xoshiro256PlusPlus;

/// Tuning knobs; the defaults are the benchmarked settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Share of the budget route minimisation may use before distance search.
    pub route_share: f64,
    /// Share of the budget one route-removal attempt may use before route
    /// minimisation gives up (within `route_share` overall); what it leaves
    /// goes to distance search.
    pub route_stall: f64,
    /// Largest number of tasks ejected at once in route minimisation.
    pub max_eject: usize,
    /// Random relocations after each ejection (diversification).
    pub perturb_moves: usize,
    /// Relocations in the perturbation go to the cheapest position (true) or
    /// a random feasible one (false).
    pub perturb_best: bool,
    /// Most tasks one ALNS destroy removes, as a share of the routed tasks…
    pub destroy_share: f64,
    /// …and in absolute terms.
    pub destroy_cap: usize,
    /// Initial annealing temperature: a solution this much worse (relative)
    /// is accepted with probability one half. High, because at the minimal
    /// vehicle count the walk must cross long detours between good basins.
    pub start_worse: f64,
    /// Cost of leaving a task out during ALNS, in units of the longest arc;
    /// 0 makes every incomplete repair a rejection.
    pub unassigned_penalty: f64,
    /// Exchange partners per task in the local search applied to every new
    /// best ALNS solution; 0 turns the local search off.
    pub local_search: usize,
    /// ALNS iterations without a new best after which the walk restarts from
    /// the best solution; 0 = never. On the long type-2 routes of the
    /// 200-task set a 30 s run does some 20,000–90,000 iterations, so a
    /// stalled walk gets several fresh starts.
    pub restart: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            route_share: 0.5,
            route_stall: 0.15,
            max_eject: 2,
            perturb_moves: 20,
            perturb_best: true,
            destroy_share: 0.4,
            destroy_cap: 30,
            start_worse: 0.3,
            unassigned_penalty: 1.0,
            local_search: 10,
            restart: 3000,
        }
    }
}

/// Solves `problem` within `budget` on the system clock. Deterministic for a
/// given seed when only an iteration cap is set.
pub fn solve(problem: &Problem, budget: &Budget, seed: u64) -> Result<Solution, ProblemError> {
    let clock = SystemClock::start();
    let model = Model::new(problem)?;
    Ok(solve_model(
        &model,
        budget,
        seed,
        &clock,
        &Params::default(),
    ))
}

/// Solves a compiled model; the building block behind [`solve`] for callers
/// that keep a [`Model`] or supply their own [`Clock`].
pub fn solve_model(
    m: &Model,
    budget: &Budget,
    seed: u64,
    clock: &dyn Clock,
    params: &Params,
) -> Solution {
    let mut rng = Rng::seed_from_u64(seed);
    let mut meter = Meter::new(budget, clock);
    let mut st = solution::State::new(m);
    let (servable, never) = construct::servable(m);
    st.unassigned = servable;
    construct::repair(
        m,
        &mut st,
        &mut rng,
        construct::Repair {
            regret: 2,
            noise: 0.0,
            open_routes: true,
        },
    );
    ejection::minimize(m, &mut st, &mut meter, &mut rng, params);
    let best = alns::improve(m, st, &mut meter, &mut rng, params);
    let mut unserved = never;
    unserved.extend(best.unassigned.iter().copied());
    Solution::from_routes(m, &best.routes, unserved, meter.done)
}

/// Small hand-made problems shared by the unit tests of every module.
#[cfg(test)]
pub(crate) mod testkit {
    use super::*;

    /// `(px, py, pe, pl, dx, dy, de, dl, load)` per task; service 1 everywhere;
    /// `nv` identical vehicles at the origin with capacity `cap` and shift [0, horizon].
    pub type T = (f64, f64, f64, f64, f64, f64, f64, f64, f64);

    pub fn problem(tasks: &[T], nv: usize, cap: f64, horizon: f64) -> Problem {
        let stop = |x, y, e, l| Stop {
            location: Point::new(x, y),
            service: 1.0,
            earliest: e,
            latest: l,
        };
        Problem {
            name: "test".into(),
            vehicles: (0..nv)
                .map(|id| Vehicle {
                    id,
                    start: Point::new(0.0, 0.0),
                    end: Some(Point::new(0.0, 0.0)),
                    capacity: cap,
                    shift_start: 0.0,
                    shift_end: horizon,
                })
                .collect(),
            tasks: tasks
                .iter()
                .enumerate()
                .map(|(id, &(px, py, pe, pl, dx, dy, de, dl, load))| Task {
                    id,
                    load,
                    pickup: stop(px, py, pe, pl),
                    delivery: stop(dx, dy, de, dl),
                    onboard: None,
                })
                .collect(),
            travel: Box::new(Euclidean),
        }
    }

    /// A route of vehicle `v` visiting `stops` (node ids) in order.
    pub fn route(m: &Model, v: usize, stops: &[usize]) -> solution::Route {
        let mut r = solution::Route::new(m, v);
        let end = r.nodes.pop().unwrap();
        r.nodes.extend_from_slice(stops);
        r.nodes.push(end);
        r.update(m);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lc101_reaches_ten_vehicles() {
        // A copy of the public instance (../shared/bench/lilim/100/lc101.txt)
        // kept with the tests, so they need nothing outside the repository.
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/lilim/lc101.txt"
        ));
        let inst = lilim::parse_named(text, "lc101").unwrap();
        let m = Model::new(&inst.problem).unwrap();
        let clock = SystemClock::start();
        let sol = solve_model(&m, &Budget::iterations(3000), 7, &clock, &Params::default());
        sol.check(&m).unwrap();
        assert!(sol.unserved.is_empty());
        assert_eq!(sol.vehicles, 10);
        // Determinism for a given seed and iteration cap.
        let again = solve_model(&m, &Budget::iterations(3000), 7, &clock, &Params::default());
        assert_eq!(sol, again);
    }

    #[test]
    fn impossible_task_is_unserved_not_a_panic() {
        // Task 1's pickup window closes before the vehicle can get there.
        let p = problem(
            &[
                (1.0, 0.0, 0.0, 100.0, 2.0, 0.0, 0.0, 100.0, 1.0),
                (50.0, 0.0, 0.0, 10.0, 2.0, 0.0, 0.0, 100.0, 1.0),
            ],
            1,
            10.0,
            200.0,
        );
        let sol = solve(&p, &Budget::iterations(200), 1).unwrap();
        assert_eq!(sol.unserved, vec![1]);
        assert_eq!(sol.vehicles, 1);
        sol.check(&Model::new(&p).unwrap()).unwrap();
    }

    #[test]
    fn too_small_fleet_leaves_tasks_unserved() {
        // Each task fills the only vehicle for the whole horizon.
        let t = (10.0, 0.0, 0.0, 30.0, 20.0, 0.0, 0.0, 40.0, 1.0);
        let p = problem(&[t, t, t], 1, 1.0, 45.0);
        let sol = solve(&p, &Budget::iterations(300), 3).unwrap();
        assert_eq!(sol.unserved.len(), 2);
        sol.check(&Model::new(&p).unwrap()).unwrap();
    }

    #[test]
    fn invalid_problem_is_an_error() {
        let mut p = problem(
            &[(1.0, 0.0, 0.0, 100.0, 2.0, 0.0, 0.0, 100.0, 1.0)],
            1,
            10.0,
            200.0,
        );
        p.tasks[0].load = f64::NAN;
        assert!(matches!(
            solve(&p, &Budget::iterations(10), 1),
            Err(ProblemError::NonFinite(_))
        ));
    }

    fn arb_task() -> impl Strategy<Value = T> {
        (
            0.0..50.0f64,
            0.0..50.0f64,
            0.0..150.0f64,
            0.0..80.0f64,
            0.0..50.0f64,
            0.0..50.0f64,
            0.0..80.0f64,
            1.0..6.0f64,
        )
            .prop_map(|(px, py, pe, pw, dx, dy, dw, load)| {
                let de = pe + 10.0;
                (
                    px,
                    py,
                    pe,
                    pe + pw,
                    dx,
                    dy,
                    de,
                    de + dw + 40.0,
                    load.floor(),
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn every_route_is_feasible(tasks in prop::collection::vec(arb_task(), 1..9), nv in 1usize..4, seed in 0u64..1000) {
            let p = problem(&tasks, nv, 8.0, 300.0);
            let m = Model::new(&p).unwrap();
            let sol = solve_model(&m, &Budget::iterations(150), seed, &SystemClock::start(), &Params::default());
            prop_assert!(sol.check(&m).is_ok(), "{:?}", sol.check(&m));
            // A task no lone vehicle can serve must be reported unserved.
            let (_, never) = construct::servable(&m);
            for t in never {
                prop_assert!(sol.unserved.contains(&t));
            }
            prop_assert_eq!(sol.vehicles, sol.routes.len());
        }
    }
}
