//! The `Slot` aggregate: the capacity ledger of one (merchant, service, start).
//! Booking takes a seat here and writes the visit in the same commit, so the
//! capacity check and the booking are one atomic decision per slot stream.

use chrono::{DateTime, Utc};
use o2ohub_events::{Event, SeatReleased, SeatTaken, SlotEvent, VisitId};
use std::collections::BTreeSet;

use super::{Aggregate, DomainError};

/// Seats currently held in a slot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Slot {
    /// Visits holding a seat.
    pub holders: BTreeSet<VisitId>,
    /// The capacity stated by the last seat taken.
    pub capacity: u32,
}

/// Commands on a slot ledger.
#[derive(Debug, Clone)]
pub enum SlotCommand {
    /// Take a seat for a visit, given the service's current capacity.
    Take {
        /// The visit.
        visit_id: VisitId,
        /// The service's slot capacity now.
        capacity: u32,
    },
    /// Give a seat back.
    Release {
        /// The visit that holds it.
        visit_id: VisitId,
    },
}

/// Decides a slot command.
pub fn decide(
    state: &Slot,
    command: &SlotCommand,
    _now: DateTime<Utc>,
) -> Result<Vec<SlotEvent>, DomainError> {
    match command {
        SlotCommand::Take { visit_id, capacity } => {
            if state.holders.contains(visit_id) {
                return Err(DomainError::AlreadyExists { aggregate: "seat" });
            }
            if state.holders.len() as u32 >= *capacity {
                return Err(DomainError::SlotFull {
                    capacity: *capacity,
                });
            }
            Ok(vec![SlotEvent::SeatTaken(SeatTaken {
                visit_id: *visit_id,
                capacity: *capacity,
            })])
        }
        SlotCommand::Release { visit_id } => {
            if !state.holders.contains(visit_id) {
                return Err(DomainError::NotFound { aggregate: "seat" });
            }
            Ok(vec![SlotEvent::SeatReleased(SeatReleased {
                visit_id: *visit_id,
            })])
        }
    }
}

/// Folds a slot event.
pub fn evolve(mut state: Slot, event: &SlotEvent) -> Slot {
    match event {
        SlotEvent::SeatTaken(t) => {
            state.holders.insert(t.visit_id);
            state.capacity = t.capacity;
        }
        SlotEvent::SeatReleased(r) => {
            state.holders.remove(&r.visit_id);
        }
    }
    state
}

impl Slot {
    /// Seats still free under the last known capacity.
    pub fn free(&self) -> u32 {
        self.capacity.saturating_sub(self.holders.len() as u32)
    }
}

impl Aggregate for Slot {
    type Event = SlotEvent;
    type Command = SlotCommand;
    const NAME: &'static str = "slot";
    const SHARED: bool = true;

    fn decide(
        &self,
        command: &SlotCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<SlotEvent>, DomainError> {
        decide(self, command, now)
    }

    fn evolve(self, event: &SlotEvent) -> Self {
        evolve(self, event)
    }

    fn select(event: Event) -> Option<SlotEvent> {
        match event {
            Event::Slot(e) => Some(e),
            _ => None,
        }
    }

    fn state_name(&self) -> &'static str {
        if self.holders.is_empty() {
            "empty"
        } else {
            "holding seats"
        }
    }
}
