//! Routes with their cached schedules (the search state) and the public
//! [`Solution`] the solver hands back, plus an independent feasibility check.

use super::model::{Model, StopKind, StopRef};
use serde::Serialize;

/// Slack allowed on time and load comparisons, far below the 1e-6 the
/// benchmark verifier tolerates, so accumulated rounding never fails it.
pub(crate) const EPS: f64 = 1e-9;

/// One vehicle's route with the arrays that make insertion checks O(1):
/// forward service-start times, backward latest service starts, and the load
/// after each node.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub vehicle: usize,
    /// Start terminal, stops, end terminal.
    pub nodes: Vec<usize>,
    /// Earliest service start at each position.
    pub start: Vec<f64>,
    /// Latest service start at each position that keeps the rest feasible.
    pub latest: Vec<f64>,
    /// Load on board after serving each position.
    pub load: Vec<f64>,
    pub dist: f64,
}

impl Route {
    /// Empty route of vehicle `v`.
    pub fn new(m: &Model, v: usize) -> Route {
        let s = m.start_node(v);
        let mut r = Route {
            vehicle: v,
            nodes: vec![s, s + 1],
            start: vec![],
            latest: vec![],
            load: vec![],
            dist: 0.0,
        };
        r.update(m);
        r
    }

    /// Number of stops (excluding terminals).
    #[inline]
    pub fn stops(&self) -> usize {
        self.nodes.len() - 2
    }

    /// True when the route serves nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 2
    }

    /// Recomputes the cached arrays; returns whether the route is feasible.
    pub fn update(&mut self, m: &Model) -> bool {
        let n = self.nodes.len();
        self.start.resize(n, 0.0);
        self.latest.resize(n, 0.0);
        self.load.resize(n, 0.0);
        let mut ok = true;
        let first = self.nodes[0];
        self.start[0] = m.earliest[first];
        self.load[0] = m.initial_load[self.vehicle];
        let cap = m.capacity[self.vehicle];
        ok &= self.load[0] <= cap + EPS;
        let mut dist = 0.0;
        for k in 1..n {
            let (a, b) = (self.nodes[k - 1], self.nodes[k]);
            dist += m.d(a, b);
            let arr = self.start[k - 1] + m.service[a] + m.t(a, b);
            self.start[k] = arr.max(m.earliest[b]);
            ok &= self.start[k] <= m.latest[b] + EPS;
            self.load[k] = self.load[k - 1] + m.demand[b];
            ok &= self.load[k] <= cap + EPS && self.load[k] >= -EPS;
        }
        self.dist = dist;
        self.latest[n - 1] = m.latest[self.nodes[n - 1]];
        for k in (0..n - 1).rev() {
            let (a, b) = (self.nodes[k], self.nodes[k + 1]);
            self.latest[k] = m.latest[a].min(self.latest[k + 1] - m.service[a] - m.t(a, b));
        }
        ok
    }

    /// Removes every node of the given tasks (both stops) and refreshes.
    pub fn remove_tasks(&mut self, m: &Model, tasks: &[usize]) {
        self.nodes
            .retain(|&x| m.is_terminal(x) || !tasks.contains(&(x / 2)));
        self.update(m);
    }
}

/// One stop of a planned route.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStop {
    /// Task index in [`super::Problem::tasks`].
    pub task: usize,
    /// Pickup or delivery.
    pub kind: StopKind,
    /// Arrival time at the stop.
    pub arrival: f64,
    /// Service start, `max(arrival, earliest)`.
    pub start: f64,
}

/// A vehicle's planned route.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutePlan {
    /// Vehicle index in [`super::Problem::vehicles`].
    pub vehicle: usize,
    /// Stops in visiting order.
    pub stops: Vec<PlannedStop>,
    /// Distance from start terminal to end terminal.
    pub distance: f64,
    /// Departure (shift start) and arrival at the end terminal.
    pub departure: f64,
    /// Arrival at the end terminal (completion of the last stop for open routes).
    pub arrival: f64,
}

/// The solver's answer. Only non-empty routes are listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Solution {
    /// Non-empty routes.
    pub routes: Vec<RoutePlan>,
    /// Tasks no vehicle serves (impossible windows or capacity, or out of time).
    pub unserved: Vec<usize>,
    /// Number of non-empty routes.
    pub vehicles: usize,
    /// Total distance.
    pub distance: f64,
    /// Sum over routes of arrival minus departure.
    pub duration: f64,
    /// Search iterations done (both phases).
    pub iterations: u64,
}

impl Solution {
    /// Builds the public view of a set of internal routes.
    pub(crate) fn from_routes(
        m: &Model,
        routes: &[Route],
        unserved: Vec<usize>,
        iterations: u64,
    ) -> Solution {
        let mut out = Vec::new();
        for r in routes.iter().filter(|r| !r.is_empty()) {
            let mut stops = Vec::with_capacity(r.stops());
            for k in 1..r.nodes.len() - 1 {
                let (a, b) = (r.nodes[k - 1], r.nodes[k]);
                let s = m.stop_of(b);
                stops.push(PlannedStop {
                    task: s.task,
                    kind: s.kind,
                    arrival: r.start[k - 1] + m.service[a] + m.t(a, b),
                    start: r.start[k],
                });
            }
            let last = r.nodes.len() - 1;
            out.push(RoutePlan {
                vehicle: r.vehicle,
                stops,
                distance: r.dist,
                departure: r.start[0],
                arrival: r.start[last - 1]
                    + m.service[r.nodes[last - 1]]
                    + m.t(r.nodes[last - 1], r.nodes[last]),
            });
        }
        let mut unserved = unserved;
        unserved.sort_unstable();
        Solution {
            vehicles: out.len(),
            distance: out.iter().map(|r| r.distance).sum(),
            duration: out.iter().map(|r| r.arrival - r.departure).sum(),
            routes: out,
            unserved,
            iterations,
        }
    }

    /// Checks every constraint from scratch (independently of the search
    /// caches): each task served once or listed unserved, pickup before
    /// delivery on the same vehicle, onboard tasks on their vehicle, capacity,
    /// windows and shift end. Returns the first violation found.
    pub fn check(&self, m: &Model) -> Result<(), String> {
        let mut seen = vec![[false; 2]; m.n_tasks];
        for &t in &self.unserved {
            if t >= m.n_tasks {
                return Err(format!("unserved task {t} out of range"));
            }
            seen[t] = [true, true];
        }
        let mut used = vec![false; m.n_vehicles];
        for rp in &self.routes {
            let v = rp.vehicle;
            if std::mem::replace(&mut used[v], true) {
                return Err(format!("vehicle {v} has two routes"));
            }
            let mut nodes = vec![m.start_node(v)];
            for s in &rp.stops {
                if s.task >= m.n_tasks {
                    return Err(format!("task {} out of range", s.task));
                }
                let k = usize::from(s.kind == StopKind::Delivery);
                if std::mem::replace(&mut seen[s.task][k], true) {
                    return Err(format!("stop {:?} served twice", s));
                }
                nodes.push(m.node_of(StopRef {
                    task: s.task,
                    kind: s.kind,
                }));
            }
            nodes.push(m.start_node(v) + 1);
            let pos = |x: usize| nodes.iter().position(|&y| y == x);
            for s in &rp.stops {
                let t = s.task;
                match (m.onboard[t], s.kind) {
                    (Some(o), _) if o != v => return Err(format!("onboard task {t} moved")),
                    (Some(_), StopKind::Pickup) => {
                        return Err(format!("onboard task {t} picked up"))
                    }
                    (None, _) => match (pos(2 * t), pos(2 * t + 1)) {
                        (Some(p), Some(d)) if p < d => {}
                        _ => return Err(format!("task {t} pickup/delivery broken on vehicle {v}")),
                    },
                    _ => {}
                }
            }
            let (mut time, mut load) = (m.earliest[nodes[0]], m.initial_load[v]);
            if load > m.capacity[v] + EPS {
                return Err(format!("vehicle {v} overloaded at start"));
            }
            for k in 1..nodes.len() {
                let (a, b) = (nodes[k - 1], nodes[k]);
                time = (time + m.service[a] + m.t(a, b)).max(m.earliest[b]);
                if time > m.latest[b] + 1e-7 {
                    return Err(format!(
                        "vehicle {v} late at position {k}: {time} > {}",
                        m.latest[b]
                    ));
                }
                load += m.demand[b];
                if load > m.capacity[v] + EPS || load < -EPS {
                    return Err(format!("vehicle {v} load {load} at position {k}"));
                }
            }
        }
        for (t, s) in seen.iter().enumerate() {
            let need_pickup = m.onboard[t].is_none();
            if !s[1] || (need_pickup && !s[0]) {
                return Err(format!("task {t} neither served nor unserved"));
            }
        }
        Ok(())
    }
}

/// Search state: one route per vehicle (empty ones included) and the tasks
/// not in any route.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub routes: Vec<Route>,
    pub unassigned: Vec<usize>,
    /// Route index of each task, `usize::MAX` when unassigned or unservable.
    pub route_of: Vec<usize>,
}

impl State {
    /// All vehicles idle, nothing assigned.
    pub fn new(m: &Model) -> State {
        State {
            routes: (0..m.n_vehicles).map(|v| Route::new(m, v)).collect(),
            unassigned: vec![],
            route_of: vec![usize::MAX; m.n_tasks],
        }
    }

    /// Total distance.
    pub fn distance(&self) -> f64 {
        self.routes.iter().map(|r| r.dist).sum()
    }

    /// Non-empty routes.
    pub fn used(&self) -> usize {
        self.routes.iter().filter(|r| !r.is_empty()).count()
    }

    /// Lexicographic rank: fewer unassigned, then fewer vehicles.
    pub fn rank(&self) -> (usize, usize) {
        (self.unassigned.len(), self.used())
    }

    /// Tasks in route `r` (one entry per task, onboard ones included).
    pub fn tasks_of(&self, m: &Model, r: usize) -> Vec<usize> {
        let route = &self.routes[r];
        route.nodes[1..route.nodes.len() - 1]
            .iter()
            .filter(|&&x| x.is_multiple_of(2) || m.onboard[x / 2].is_some())
            .map(|&x| x / 2)
            .collect()
    }

    /// Takes `tasks` out of their routes (they are *not* added to `unassigned`).
    pub fn remove(&mut self, m: &Model, tasks: &[usize]) {
        let mut touched: Vec<usize> = tasks
            .iter()
            .map(|&t| self.route_of[t])
            .filter(|&r| r != usize::MAX)
            .collect();
        touched.sort_unstable();
        touched.dedup();
        for &t in tasks {
            self.route_of[t] = usize::MAX;
        }
        for r in touched {
            self.routes[r].remove_tasks(m, tasks);
        }
    }

    /// Inserts task `t` into route `r` at `pos`.
    pub fn insert(&mut self, m: &Model, t: usize, r: usize, pos: super::insertion::Pos) {
        super::insertion::apply(m, &mut self.routes[r], t, pos);
        self.route_of[t] = r;
    }
}
