//! The compiled form of a [`Problem`]: every stop and vehicle terminal becomes
//! a node with its window, service time and load change, and travel is read
//! from dense matrices. Built once per solve (O(nodes²) travel-model calls) so
//! that the search never calls the travel model.
//!
//! Node numbering: task `t` has pickup `2t` and delivery `2t + 1`; vehicle `v`
//! has start `2T + 2v` and end `2T + 2v + 1` (T = number of tasks).

use super::problem::{Problem, ProblemError};

/// Which stop of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum StopKind {
    /// Where the load is collected.
    Pickup,
    /// Where the load is dropped.
    Delivery,
}

/// A stop of an existing route, as the dispatcher knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct StopRef {
    /// Task index in [`Problem::tasks`].
    pub task: usize,
    /// Pickup or delivery.
    pub kind: StopKind,
}

/// Compiled problem (see the module doc for node numbering).
#[derive(Debug, Clone)]
pub struct Model {
    pub(crate) n_tasks: usize,
    pub(crate) n_vehicles: usize,
    n: usize,
    pub(crate) earliest: Vec<f64>,
    pub(crate) latest: Vec<f64>,
    pub(crate) service: Vec<f64>,
    /// Load change at the node (+load at pickups, −load at deliveries).
    pub(crate) demand: Vec<f64>,
    dist: Vec<f64>,
    time: Vec<f64>,
    pub(crate) capacity: Vec<f64>,
    /// Load on board when the vehicle starts (onboard tasks).
    pub(crate) initial_load: Vec<f64>,
    pub(crate) onboard: Vec<Option<usize>>,
    /// Vehicles equal in every respect share a class; the solver only needs to
    /// try one empty vehicle per class.
    pub(crate) class: Vec<usize>,
    /// Largest distance between two nodes (scale for noise and temperatures).
    pub(crate) max_dist: f64,
}

impl Model {
    /// Compiles `problem`, validating it first.
    pub fn new(problem: &Problem) -> Result<Model, ProblemError> {
        problem.validate()?;
        let nt = problem.tasks.len();
        let nv = problem.vehicles.len();
        let n = 2 * nt + 2 * nv;
        let mut earliest = vec![0.0; n];
        let mut latest = vec![0.0; n];
        let mut service = vec![0.0; n];
        let mut demand = vec![0.0; n];
        let mut loc = Vec::with_capacity(n);
        let mut open_end = vec![false; n];
        for (t, task) in problem.tasks.iter().enumerate() {
            for (k, s) in [task.pickup, task.delivery].iter().enumerate() {
                earliest[2 * t + k] = s.earliest;
                latest[2 * t + k] = s.latest;
                service[2 * t + k] = s.service;
                loc.push(s.location);
            }
            demand[2 * t] = task.load;
            demand[2 * t + 1] = -task.load;
        }
        let mut initial_load = vec![0.0; nv];
        for task in &problem.tasks {
            if let Some(v) = task.onboard {
                initial_load[v] += task.load;
            }
        }
        let mut class = Vec::with_capacity(nv);
        for (v, veh) in problem.vehicles.iter().enumerate() {
            let s = 2 * nt + 2 * v;
            for node in [s, s + 1] {
                earliest[node] = veh.shift_start;
                latest[node] = veh.shift_end;
            }
            loc.push(veh.start);
            loc.push(veh.end.unwrap_or(veh.start));
            open_end[s + 1] = veh.end.is_none();
            let same = problem.vehicles[..v].iter().enumerate().find(|(u, o)| {
                o.start == veh.start
                    && o.end == veh.end
                    && o.capacity == veh.capacity
                    && o.shift_start == veh.shift_start
                    && o.shift_end == veh.shift_end
                    && initial_load[*u] == 0.0
                    && initial_load[v] == 0.0
            });
            class.push(same.map(|(u, _)| class[u]).unwrap_or(v));
        }
        let mut dist = vec![0.0; n * n];
        let mut time = vec![0.0; n * n];
        for a in 0..n {
            for b in 0..n {
                if a != b && !open_end[b] {
                    dist[a * n + b] = problem.travel.distance(loc[a], loc[b]);
                    time[a * n + b] = problem.travel.time(loc[a], loc[b]);
                }
            }
        }
        let max_dist = dist.iter().copied().fold(0.0, f64::max);
        Ok(Model {
            max_dist,
            n_tasks: nt,
            n_vehicles: nv,
            n,
            earliest,
            latest,
            service,
            demand,
            dist,
            time,
            capacity: problem.vehicles.iter().map(|v| v.capacity).collect(),
            initial_load,
            onboard: problem.tasks.iter().map(|t| t.onboard).collect(),
            class,
        })
    }

    /// Distance between nodes.
    #[inline(always)]
    pub(crate) fn d(&self, a: usize, b: usize) -> f64 {
        self.dist[a * self.n + b]
    }

    /// Travel time between nodes.
    #[inline(always)]
    pub(crate) fn t(&self, a: usize, b: usize) -> f64 {
        self.time[a * self.n + b]
    }

    /// Start node of vehicle `v`.
    #[inline]
    pub(crate) fn start_node(&self, v: usize) -> usize {
        2 * self.n_tasks + 2 * v
    }

    /// Is `node` a vehicle terminal?
    #[inline]
    pub(crate) fn is_terminal(&self, node: usize) -> bool {
        node >= 2 * self.n_tasks
    }

    /// Node of a stop.
    pub(crate) fn node_of(&self, s: StopRef) -> usize {
        2 * s.task + usize::from(s.kind == StopKind::Delivery)
    }

    /// Stop of a (task) node.
    pub(crate) fn stop_of(&self, node: usize) -> StopRef {
        StopRef {
            task: node / 2,
            kind: if node.is_multiple_of(2) {
                StopKind::Pickup
            } else {
                StopKind::Delivery
            },
        }
    }
}
