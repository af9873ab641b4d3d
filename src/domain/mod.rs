//! The domain: each aggregate as a pure decision function and a fold.
//!
//! `decide(state, command, now) -> Result<Vec<Event>, DomainError>` checks a
//! command against the current state and says what happened;
//! `evolve(state, event) -> state` folds one event into the state. Both are
//! pure: no IO, no clock (the time comes in as `now`), no randomness (ids and
//! codes come in with the command), so they are tested without servers.
//!
//! State machines are explicit enums; an illegal transition is a
//! [`DomainError::IllegalTransition`] naming the state and the command.
//!
//! **Architecture Invariant:** nothing under `domain/` performs IO.

pub mod code;
pub mod delivery;
pub mod merchant;
pub mod order;
pub mod phone;
pub mod rider;
pub mod slot;
pub mod visit;

use chrono::{DateTime, Utc};
use o2ohub_events::{Event, ValueError};
use std::fmt::Debug;

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The aggregate does not exist yet.
    #[error("{aggregate} not found")]
    NotFound {
        /// The aggregate kind.
        aggregate: &'static str,
    },
    /// The aggregate exists already.
    #[error("{aggregate} already exists")]
    AlreadyExists {
        /// The aggregate kind.
        aggregate: &'static str,
    },
    /// The command is not allowed in the aggregate's current state.
    #[error("cannot {command} a {aggregate} that is {state}")]
    IllegalTransition {
        /// The aggregate kind.
        aggregate: &'static str,
        /// Its current state.
        state: &'static str,
        /// The refused command.
        command: &'static str,
    },
    /// Every seat of the slot is taken.
    #[error("the slot is fully booked ({capacity} of {capacity} seats taken)")]
    SlotFull {
        /// The slot's capacity.
        capacity: u32,
    },
    /// The merchant cannot take this booking or order now.
    #[error("the merchant is not available: {reason}")]
    MerchantUnavailable {
        /// Why.
        reason: &'static str,
    },
    /// The actor may not act on this aggregate (another store's visit, another rider's offer).
    #[error("{0}")]
    NotYours(&'static str),
    /// Too many wrong redemption codes: the visit is locked.
    #[error("redemption locked after {failures} wrong codes; the consumer must show the code to a manager")]
    RedemptionLocked {
        /// Failures so far.
        failures: u32,
    },
    /// A value in the command is invalid.
    #[error(transparent)]
    Invalid(#[from] ValueError),
}

impl DomainError {
    pub(crate) fn illegal(
        aggregate: &'static str,
        state: &'static str,
        command: &'static str,
    ) -> Self {
        DomainError::IllegalTransition {
            aggregate,
            state,
            command,
        }
    }

    pub(crate) fn invalid(field: &str, reason: &str) -> Self {
        DomainError::Invalid(ValueError::new(field, reason))
    }
}

/// An aggregate: a state folded from its stream and the decisions it makes.
pub trait Aggregate: Default + Clone + PartialEq + Debug + Send + Sync + 'static {
    /// The aggregate's family of events.
    type Event: Clone + Debug + Send + Into<Event>;
    /// The commands it decides.
    type Command: Debug + Send + Sync;
    /// A human name, used in errors.
    const NAME: &'static str;
    /// Whether many commands write one stream of this aggregate (a slot's
    /// seats, a merchant read by every booking, a rider's shifts and
    /// positions), rather than a handful over its life (a visit, an order).
    /// The command layer remembers a shared stream's state from its first
    /// commit on; the others only once something reads them again.
    const SHARED: bool = false;

    /// Checks `command` against the state at `now`; returns what happened.
    fn decide(
        &self,
        command: &Self::Command,
        now: DateTime<Utc>,
    ) -> Result<Vec<Self::Event>, DomainError>;

    /// Folds one event into the state.
    fn evolve(self, event: &Self::Event) -> Self;

    /// Picks this aggregate's events out of the union; `None` for others.
    fn select(event: Event) -> Option<Self::Event>;

    /// The name of the current state, for errors and logs.
    fn state_name(&self) -> &'static str;
}

/// Folds a sequence of events from the initial state.
pub fn replay<A: Aggregate>(events: &[A::Event]) -> A {
    events.iter().fold(A::default(), |s, e| s.evolve(e))
}
