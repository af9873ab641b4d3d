//! The o2ohub event catalogue: every fact the hub records, as typed events
//! with stable names, schema versions and an upcasting path.
//!
//! # Layout
//!
//! - [`envelope`]: the [`Envelope`] around every recorded event (ids, stream
//!   and global positions, times, correlation/causation, actor).
//! - [`event`]: the [`Event`] union, type-name/version dispatch, decoding.
//! - [`catalogue`]: the `event_family!` mechanism and [`DecodeError`].
//! - [`upcast`] (private): old payload versions rewritten to current ones.
//! - One module per aggregate: [`merchant`], [`rider`], [`order`], [`visit`]
//!   (visits and slot ledgers), [`delivery`].
//! - Value types events carry, each validated on construction and on
//!   deserialisation: [`ids`], [`geo`], [`money`], [`schedule`], [`actor`],
//!   [`secret`].
//!
//! **Architecture Invariant:** this crate depends on no other crate of the
//! project, and performs no IO.

#![warn(missing_docs)]

pub mod actor;
pub mod catalogue;
pub mod delivery;
pub mod envelope;
pub mod event;
pub mod geo;
pub mod ids;
pub mod merchant;
pub mod money;
pub mod order;
pub mod rider;
pub mod schedule;
pub mod secret;
mod upcast;
pub mod visit;

pub use actor::{Actor, Role};
pub use catalogue::{DecodeError, EventFamily};
pub use delivery::*;
pub use envelope::Envelope;
pub use event::{AggregateKind, Event};
pub use geo::{LatLng, ServiceArea};
pub use ids::*;
pub use merchant::*;
pub use money::{Currency, Money};
pub use order::*;
pub use rider::*;
pub use schedule::{OpeningHours, OpeningInterval, SlotStart, Weekday};
pub use secret::{CodeDigest, Sealed};
pub use visit::*;

/// A value that failed validation: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValueError {
    /// The field at fault, as named on the wire (dotted for nested fields).
    pub field: String,
    /// A sentence saying what a valid value looks like.
    pub reason: String,
}

impl ValueError {
    /// Builds an error for `field`.
    pub fn new(field: &str, reason: &str) -> Self {
        Self {
            field: field.to_owned(),
            reason: reason.to_owned(),
        }
    }
}
