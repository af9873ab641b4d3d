//! o2ohub read models: pure folds over event envelopes.
//!
//! # Layout
//!
//! - [`Projection`]: what every read model is — a named, versioned fold of
//!   envelopes in global-position order.
//! - [`Checkpointed`]: wraps a projection with the position it has applied,
//!   so applying an event twice has no effect.
//! - [`analytics`]: per merchant and per H3 area — orders, GMV, visits,
//!   no-show and on-time rates, delivery times, a daily sales ranking.
//! - [`search`]: the merchant search — merchants by service area on H3
//!   cells, "who serves P, open at T, with a free slot, nearest first",
//!   and each merchant's free slots.
//! - [`sharded`]: the hash map the models use where they grow with the log,
//!   so that growing never rehashes everything at once.
//! - [`supply`]: on-shift riders and open deliveries on H3 cells, for the
//!   dispatcher and for operators.
//! - [`views`]: what the API lists — a consumer's visits and orders, a
//!   store's day, a rider's offers and route.
//!
//! Each read model is fed `o2ohub_events::Envelope`s by a runner in the hub,
//! from the store's subscription or from Kafka, and never performs IO itself.
//!
//! **Architecture Invariant:** depends on `o2ohub-events` only; no IO, no
//! clock, no randomness.

#![warn(missing_docs)]

pub mod analytics;
pub mod hashing;
pub mod search;
pub mod sharded;
pub mod supply;
pub mod views;

use o2ohub_events::Envelope;

/// A read model: a fold over the event log.
pub trait Projection: Send + Sync + 'static {
    /// Stable name; checkpoints are stored under it.
    fn name(&self) -> &'static str;

    /// Version of the fold; a change replays history from zero.
    fn version(&self) -> u32;

    /// Folds one event. Events arrive in global-position order.
    fn apply(&mut self, envelope: &Envelope);
}

/// A projection with the last global position it has applied.
#[derive(Debug, Clone, Default)]
pub struct Checkpointed<P> {
    /// The read model.
    pub model: P,
    /// Last applied global position (0: nothing yet).
    pub position: u64,
}

impl<P: Projection> Checkpointed<P> {
    /// Wraps a fresh read model.
    pub fn new(model: P) -> Self {
        Checkpointed { model, position: 0 }
    }

    /// Applies an event unless it was applied already; returns whether it was.
    pub fn apply(&mut self, envelope: &Envelope) -> bool {
        if envelope.global_position <= self.position {
            return false;
        }
        self.model.apply(envelope);
        self.position = envelope.global_position;
        true
    }
}
