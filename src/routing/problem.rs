//! Problem model: vehicles, pickup/drop-off tasks and the travel model they
//! are measured with. Plain data; validation lives here so every solver entry
//! point can rely on finite, ordered windows.

use super::travel::{Point, TravelModel};
use thiserror::Error;

/// One stop of a task (the pickup or the drop-off).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stop {
    /// Where the stop is.
    pub location: Point,
    /// Time spent at the stop once service starts.
    pub service: f64,
    /// Service may not start before this.
    pub earliest: f64,
    /// Service must start no later than this.
    pub latest: f64,
}

/// A pickup/drop-off pair carrying `load` units.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Caller's identifier (the Li & Lim pickup node id, an order id, ...).
    pub id: usize,
    /// Units picked up at `pickup` and dropped at `delivery`.
    pub load: f64,
    /// Where the load is collected.
    pub pickup: Stop,
    /// Where the load is dropped.
    pub delivery: Stop,
    /// `Some(v)`: the pickup was already done by vehicle `v` (partially
    /// executed plan), so only the delivery remains and it must stay on `v`.
    pub onboard: Option<usize>,
}

/// A vehicle with its shift.
#[derive(Debug, Clone, PartialEq)]
pub struct Vehicle {
    /// Caller's identifier.
    pub id: usize,
    /// Where the vehicle is at `shift_start`.
    pub start: Point,
    /// Where the route must end; `None` for an open route (ends at its last stop).
    pub end: Option<Point>,
    /// Maximum load on board at any time.
    pub capacity: f64,
    /// Earliest departure.
    pub shift_start: f64,
    /// Latest arrival at `end`; for open routes, latest completion of the last stop.
    pub shift_end: f64,
}

/// A complete instance: fleet, tasks and travel model.
pub struct Problem {
    /// Instance name (for reports).
    pub name: String,
    /// Available vehicles; not all need to be used.
    pub vehicles: Vec<Vehicle>,
    /// Tasks to serve.
    pub tasks: Vec<Task>,
    /// Travel time and distance between points.
    pub travel: Box<dyn TravelModel>,
}

impl std::fmt::Debug for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Problem")
            .field("name", &self.name)
            .field("vehicles", &self.vehicles.len())
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

/// Why a [`Problem`] cannot be solved at all (as opposed to a task being unservable).
#[derive(Debug, Error, PartialEq)]
pub enum ProblemError {
    /// A number that must be finite is NaN or infinite.
    #[error("non-finite value in {0}")]
    NonFinite(String),
    /// Negative capacity, load or service time.
    #[error("negative value in {0}")]
    Negative(String),
    /// A task is on board a vehicle that does not exist.
    #[error("task {task} is on board unknown vehicle {vehicle}")]
    UnknownVehicle {
        /// Task index.
        task: usize,
        /// Vehicle index given.
        vehicle: usize,
    },
}

impl Problem {
    /// Checks the numbers the solver relies on. Impossible windows are *not*
    /// errors: such tasks are reported unserved by the solver.
    pub fn validate(&self) -> Result<(), ProblemError> {
        let fin = |x: f64, what: &dyn Fn() -> String| {
            if x.is_finite() {
                Ok(())
            } else {
                Err(ProblemError::NonFinite(what()))
            }
        };
        for (i, v) in self.vehicles.iter().enumerate() {
            let w = || format!("vehicle {i}");
            for x in [v.start.x, v.start.y, v.capacity, v.shift_start, v.shift_end] {
                fin(x, &w)?;
            }
            if let Some(e) = v.end {
                fin(e.x, &w)?;
                fin(e.y, &w)?;
            }
            if v.capacity < 0.0 {
                return Err(ProblemError::Negative(w()));
            }
        }
        for (i, t) in self.tasks.iter().enumerate() {
            let w = || format!("task {i}");
            fin(t.load, &w)?;
            for s in [&t.pickup, &t.delivery] {
                for x in [s.location.x, s.location.y, s.service, s.earliest, s.latest] {
                    fin(x, &w)?;
                }
                if s.service < 0.0 {
                    return Err(ProblemError::Negative(w()));
                }
            }
            if t.load < 0.0 {
                return Err(ProblemError::Negative(w()));
            }
            if let Some(v) = t.onboard {
                if v >= self.vehicles.len() {
                    return Err(ProblemError::UnknownVehicle {
                        task: i,
                        vehicle: v,
                    });
                }
            }
        }
        Ok(())
    }
}
