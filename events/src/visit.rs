//! Events of the `Visit` aggregate: a booked service slot at a store
//! (stream `visit-<id>`), and of the `Slot` aggregate that guards a slot's
//! capacity (stream `slot-<merchant>-<service>-<epoch seconds>`).

use serde::{Deserialize, Serialize};

use crate::catalogue::event_family;
use crate::{CodeDigest, ConsumerId, MerchantId, Money, Role, SlotStart, StaffId, VisitId};

/// A consumer booked a slot and received a one-time redemption code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitBooked {
    /// The new visit.
    pub visit_id: VisitId,
    /// Who booked.
    pub consumer_id: ConsumerId,
    /// The store.
    pub merchant_id: MerchantId,
    /// The booked service.
    pub service_id: String,
    /// The booked slot.
    pub slot: SlotStart,
    /// How long the service lasts, in minutes.
    pub duration_minutes: u32,
    /// The price at booking time.
    pub price: Money,
    /// Digest of the code the consumer shows at the counter.
    pub code: CodeDigest,
}

/// The visit moved to another slot of the same service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitRescheduled {
    /// The slot given up.
    pub from: SlotStart,
    /// The slot taken.
    pub to: SlotStart,
}

/// The visit was cancelled; its seat is free again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitCancelled {
    /// Why.
    pub reason: String,
    /// Who cancelled.
    pub by: Role,
}

/// Staff redeemed the consumer's code: the consumer is at the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitRedeemed {
    /// Who redeemed it.
    pub staff_id: StaffId,
}

/// Staff entered a wrong code for this visit (recorded for rate limiting and audit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedemptionFailed {
    /// Who tried.
    pub staff_id: StaffId,
    /// Consecutive failures so far, this one included.
    pub failures: u32,
}

/// The consumer did not come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitNoShow {
    /// Who marked it.
    pub staff_id: StaffId,
}

/// The service was delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitCompleted {
    /// Who marked it.
    pub staff_id: StaffId,
}

event_family! {
    /// Events of a visit.
    VisitEvent {
        /// See [`VisitBooked`].
        Booked(VisitBooked) = "VisitBooked" v 1,
        /// See [`VisitRescheduled`].
        Rescheduled(VisitRescheduled) = "VisitRescheduled" v 1,
        /// See [`VisitCancelled`].
        Cancelled(VisitCancelled) = "VisitCancelled" v 1,
        /// See [`VisitRedeemed`].
        Redeemed(VisitRedeemed) = "VisitRedeemed" v 1,
        /// See [`RedemptionFailed`].
        RedemptionFailed(RedemptionFailed) = "VisitRedemptionFailed" v 1,
        /// See [`VisitNoShow`].
        NoShow(VisitNoShow) = "VisitNoShow" v 1,
        /// See [`VisitCompleted`].
        Completed(VisitCompleted) = "VisitCompleted" v 1,
    }
}

/// A seat of a slot was taken by a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatTaken {
    /// The visit holding the seat.
    pub visit_id: VisitId,
    /// The slot's capacity when the seat was taken (the merchant may change it later).
    pub capacity: u32,
}

/// A seat was given back (cancellation or reschedule away).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatReleased {
    /// The visit that held it.
    pub visit_id: VisitId,
}

event_family! {
    /// Events of a slot's capacity ledger.
    SlotEvent {
        /// See [`SeatTaken`].
        SeatTaken(SeatTaken) = "SlotSeatTaken" v 1,
        /// See [`SeatReleased`].
        SeatReleased(SeatReleased) = "SlotSeatReleased" v 1,
    }
}

/// The stream of the slot (merchant, service, start).
pub fn slot_stream(merchant: MerchantId, service_id: &str, start: SlotStart) -> String {
    format!("slot-{}-{}-{}", merchant, service_id, start.epoch_seconds())
}
