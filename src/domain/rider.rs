//! The `Rider` aggregate: registration, shifts and sampled positions.

use chrono::{DateTime, Duration, Utc};
use o2ohub_events::{
    Event, LatLng, PositionReported, RiderEvent, RiderId, RiderRegistered, ShiftEnded,
    ShiftStarted, VehicleType,
};

use super::{Aggregate, DomainError};

/// What is known of a registered rider.
#[derive(Debug, Clone, PartialEq)]
pub struct RiderState {
    /// Its id.
    pub id: RiderId,
    /// How it moves.
    pub vehicle: VehicleType,
    /// Orders it can carry at once.
    pub capacity: u32,
    /// Last known position (from the shift start or a report).
    pub position: Option<LatLng>,
}

/// A rider's life: unregistered, off shift or on shift.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Rider {
    /// No such rider yet.
    #[default]
    Unregistered,
    /// Registered, not working.
    OffShift(RiderState),
    /// Working: receives offers.
    OnShift(RiderState),
}

/// Commands about a rider.
#[derive(Debug, Clone)]
pub enum RiderCommand {
    /// Register (operators).
    Register {
        /// The id.
        rider_id: RiderId,
        /// Display name.
        name: String,
        /// How the rider moves.
        vehicle: VehicleType,
        /// Orders carried at once, 1..=10.
        capacity: u32,
    },
    /// Go on shift at a position.
    StartShift {
        /// Where.
        position: LatLng,
    },
    /// Go off shift.
    EndShift,
    /// Report a position (sampled by the API before it becomes a command).
    ReportPosition {
        /// Where.
        position: LatLng,
        /// When the device took the fix.
        fixed_at: DateTime<Utc>,
    },
}

/// Decides a rider command.
pub fn decide(
    state: &Rider,
    command: &RiderCommand,
    now: DateTime<Utc>,
) -> Result<Vec<RiderEvent>, DomainError> {
    use Rider::*;
    use RiderCommand as C;
    let illegal = |c| DomainError::illegal(Rider::NAME, state.state_name(), c);
    match (state, command) {
        (
            Unregistered,
            C::Register {
                rider_id,
                name,
                vehicle,
                capacity,
            },
        ) => {
            if name.trim().is_empty() || name.len() > 200 {
                return Err(DomainError::invalid(
                    "name",
                    "a name has 1 to 200 characters",
                ));
            }
            if !(1..=10).contains(capacity) {
                return Err(DomainError::invalid(
                    "capacity",
                    "a rider carries 1 to 10 orders",
                ));
            }
            Ok(vec![RiderEvent::Registered(RiderRegistered {
                rider_id: *rider_id,
                name: name.clone(),
                vehicle: *vehicle,
                capacity: *capacity,
            })])
        }
        (_, C::Register { .. }) => Err(DomainError::AlreadyExists {
            aggregate: Rider::NAME,
        }),
        (Unregistered, _) => Err(DomainError::NotFound {
            aggregate: Rider::NAME,
        }),
        (OffShift(_), C::StartShift { position }) => {
            Ok(vec![RiderEvent::ShiftStarted(ShiftStarted {
                position: *position,
            })])
        }
        (OnShift(_), C::StartShift { .. }) => Err(illegal("start a shift of")),
        (OnShift(_), C::EndShift) => Ok(vec![RiderEvent::ShiftEnded(ShiftEnded {})]),
        (OffShift(_), C::EndShift) => Err(illegal("end the shift of")),
        (OnShift(_), C::ReportPosition { position, fixed_at }) => {
            if *fixed_at > now + Duration::minutes(1) {
                return Err(DomainError::invalid(
                    "fixed_at",
                    "a position fix cannot be in the future",
                ));
            }
            Ok(vec![RiderEvent::PositionReported(PositionReported {
                position: *position,
                fixed_at: *fixed_at,
            })])
        }
        (OffShift(_), C::ReportPosition { .. }) => Err(illegal("report the position of")),
    }
}

/// Folds a rider event.
pub fn evolve(state: Rider, event: &RiderEvent) -> Rider {
    use Rider::*;
    match (state, event) {
        (Unregistered, RiderEvent::Registered(r)) => OffShift(RiderState {
            id: r.rider_id,
            vehicle: r.vehicle,
            capacity: r.capacity,
            position: None,
        }),
        (OffShift(mut r), RiderEvent::ShiftStarted(s)) => {
            r.position = Some(s.position);
            OnShift(r)
        }
        (OnShift(r), RiderEvent::ShiftEnded(_)) => OffShift(r),
        (OnShift(mut r), RiderEvent::PositionReported(p)) => {
            r.position = Some(p.position);
            OnShift(r)
        }
        (state, _) => state,
    }
}

impl Aggregate for Rider {
    type Event = RiderEvent;
    type Command = RiderCommand;
    const NAME: &'static str = "rider";
    const SHARED: bool = true;

    fn decide(
        &self,
        command: &RiderCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<RiderEvent>, DomainError> {
        decide(self, command, now)
    }

    fn evolve(self, event: &RiderEvent) -> Self {
        evolve(self, event)
    }

    fn select(event: Event) -> Option<RiderEvent> {
        match event {
            Event::Rider(e) => Some(e),
            _ => None,
        }
    }

    fn state_name(&self) -> &'static str {
        match self {
            Rider::Unregistered => "unregistered",
            Rider::OffShift(_) => "off shift",
            Rider::OnShift(_) => "on shift",
        }
    }
}
