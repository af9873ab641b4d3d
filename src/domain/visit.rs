//! The `Visit` aggregate: a consumer's booked slot at a store, from booking to
//! redemption and completion, or cancellation, or no-show.

use chrono::{DateTime, Duration, Utc};
use o2ohub_events::{
    CodeDigest, ConsumerId, Event, MerchantId, Money, RedemptionFailed, Role, SlotStart, StaffId,
    VisitBooked, VisitCancelled, VisitCompleted, VisitEvent, VisitId, VisitNoShow, VisitRedeemed,
    VisitRescheduled,
};

use super::{Aggregate, DomainError};

/// Wrong codes accepted for one visit before redemption locks.
pub const MAX_REDEMPTION_FAILURES: u32 = 5;
/// How early before its slot a visit may be redeemed.
pub const EARLY_REDEMPTION: Duration = Duration::hours(2);

/// What is known of a booked visit.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitState {
    /// Its id.
    pub id: VisitId,
    /// Who booked.
    pub consumer_id: ConsumerId,
    /// The store.
    pub merchant_id: MerchantId,
    /// The service.
    pub service_id: String,
    /// The slot currently held.
    pub slot: SlotStart,
    /// Minutes the service lasts.
    pub duration_minutes: u32,
    /// The price at booking.
    pub price: Money,
    /// Digest of the redemption code.
    pub code: CodeDigest,
    /// Consecutive wrong codes entered.
    pub failures: u32,
}

/// A visit's life.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Visit {
    /// Not booked.
    #[default]
    NotBooked,
    /// Booked, waiting for the consumer.
    Booked(VisitState),
    /// The consumer arrived; code redeemed.
    Redeemed(VisitState),
    /// Service delivered.
    Completed(VisitState),
    /// Cancelled before it happened.
    Cancelled(VisitState),
    /// The consumer did not come.
    NoShow(VisitState),
}

/// Commands about a visit. Staff commands carry the staff member's merchant
/// so the visit can refuse another store's staff.
#[derive(Debug, Clone)]
pub enum VisitCommand {
    /// Book (the seat is taken in the same commit by the command layer).
    Book {
        /// The new visit's id.
        visit_id: VisitId,
        /// Who books.
        consumer_id: ConsumerId,
        /// The store.
        merchant_id: MerchantId,
        /// The service.
        service_id: String,
        /// The slot.
        slot: SlotStart,
        /// Minutes the service lasts.
        duration_minutes: u32,
        /// Price.
        price: Money,
        /// Digest of the freshly generated code.
        code: CodeDigest,
    },
    /// Move to another slot.
    Reschedule {
        /// The new slot.
        to: SlotStart,
    },
    /// Cancel.
    Cancel {
        /// Why.
        reason: String,
        /// Who.
        by: Role,
    },
    /// Staff redeem the consumer's code.
    Redeem {
        /// Who.
        staff_id: StaffId,
        /// The staff member's store.
        staff_merchant: MerchantId,
        /// Digest of the code entered.
        entered: CodeDigest,
    },
    /// Staff mark a no-show.
    MarkNoShow {
        /// Who.
        staff_id: StaffId,
        /// The staff member's store.
        staff_merchant: MerchantId,
    },
    /// Staff mark the service done.
    Complete {
        /// Who.
        staff_id: StaffId,
        /// The staff member's store.
        staff_merchant: MerchantId,
    },
}

fn same_store(v: &VisitState, staff_merchant: &MerchantId) -> Result<(), DomainError> {
    if v.merchant_id == *staff_merchant {
        Ok(())
    } else {
        Err(DomainError::NotYours("this visit belongs to another store"))
    }
}

/// Decides a visit command.
pub fn decide(
    state: &Visit,
    command: &VisitCommand,
    now: DateTime<Utc>,
) -> Result<Vec<VisitEvent>, DomainError> {
    use Visit::*;
    use VisitCommand as C;
    let illegal = |c| DomainError::illegal(Visit::NAME, state.state_name(), c);
    match (state, command) {
        (
            NotBooked,
            C::Book {
                visit_id,
                consumer_id,
                merchant_id,
                service_id,
                slot,
                duration_minutes,
                price,
                code,
            },
        ) => {
            if slot.at() <= now {
                return Err(DomainError::invalid(
                    "slot_start",
                    "the slot has already started",
                ));
            }
            Ok(vec![VisitEvent::Booked(VisitBooked {
                visit_id: *visit_id,
                consumer_id: *consumer_id,
                merchant_id: *merchant_id,
                service_id: service_id.clone(),
                slot: *slot,
                duration_minutes: *duration_minutes,
                price: *price,
                code: code.clone(),
            })])
        }
        (_, C::Book { .. }) => Err(DomainError::AlreadyExists {
            aggregate: Visit::NAME,
        }),
        (NotBooked, _) => Err(DomainError::NotFound {
            aggregate: Visit::NAME,
        }),
        (Booked(v), C::Reschedule { to }) => {
            if to.at() <= now {
                return Err(DomainError::invalid(
                    "slot_start",
                    "the new slot has already started",
                ));
            }
            if *to == v.slot {
                return Err(DomainError::invalid(
                    "slot_start",
                    "the visit is already in that slot",
                ));
            }
            Ok(vec![VisitEvent::Rescheduled(VisitRescheduled {
                from: v.slot,
                to: *to,
            })])
        }
        (Booked(v), C::Cancel { reason, by }) => {
            if *by == Role::Consumer && v.slot.at() <= now {
                return Err(DomainError::invalid(
                    "visit",
                    "a consumer can cancel only before the slot starts",
                ));
            }
            Ok(vec![VisitEvent::Cancelled(VisitCancelled {
                reason: reason.clone(),
                by: *by,
            })])
        }
        (
            Booked(v),
            C::Redeem {
                staff_id,
                staff_merchant,
                entered,
            },
        ) => {
            same_store(v, staff_merchant)?;
            if v.failures >= MAX_REDEMPTION_FAILURES {
                return Err(DomainError::RedemptionLocked {
                    failures: v.failures,
                });
            }
            if *entered != v.code {
                return Ok(vec![VisitEvent::RedemptionFailed(RedemptionFailed {
                    staff_id: *staff_id,
                    failures: v.failures + 1,
                })]);
            }
            if now < v.slot.at() - EARLY_REDEMPTION {
                return Err(DomainError::invalid(
                    "visit",
                    "too early: a visit is redeemed from two hours before its slot",
                ));
            }
            Ok(vec![VisitEvent::Redeemed(VisitRedeemed {
                staff_id: *staff_id,
            })])
        }
        (
            Booked(v),
            C::MarkNoShow {
                staff_id,
                staff_merchant,
            },
        ) => {
            same_store(v, staff_merchant)?;
            if now < v.slot.at() {
                return Err(DomainError::invalid(
                    "visit",
                    "a no-show is marked only after the slot has started",
                ));
            }
            Ok(vec![VisitEvent::NoShow(VisitNoShow {
                staff_id: *staff_id,
            })])
        }
        (
            Redeemed(v),
            C::Complete {
                staff_id,
                staff_merchant,
            },
        ) => {
            same_store(v, staff_merchant)?;
            Ok(vec![VisitEvent::Completed(VisitCompleted {
                staff_id: *staff_id,
            })])
        }
        (_, C::Reschedule { .. }) => Err(illegal("reschedule")),
        (_, C::Cancel { .. }) => Err(illegal("cancel")),
        (_, C::Redeem { .. }) => Err(illegal("redeem")),
        (_, C::MarkNoShow { .. }) => Err(illegal("mark as no-show")),
        (_, C::Complete { .. }) => Err(illegal("complete")),
    }
}

/// Folds a visit event.
pub fn evolve(state: Visit, event: &VisitEvent) -> Visit {
    use Visit::*;
    match (state, event) {
        (NotBooked, VisitEvent::Booked(b)) => Booked(VisitState {
            id: b.visit_id,
            consumer_id: b.consumer_id,
            merchant_id: b.merchant_id,
            service_id: b.service_id.clone(),
            slot: b.slot,
            duration_minutes: b.duration_minutes,
            price: b.price,
            code: b.code.clone(),
            failures: 0,
        }),
        (Booked(mut v), VisitEvent::Rescheduled(r)) => {
            v.slot = r.to;
            Booked(v)
        }
        (Booked(v), VisitEvent::Cancelled(_)) => Cancelled(v),
        (Booked(mut v), VisitEvent::RedemptionFailed(f)) => {
            v.failures = f.failures;
            Booked(v)
        }
        (Booked(v), VisitEvent::Redeemed(_)) => Redeemed(v),
        (Booked(v), VisitEvent::NoShow(_)) => NoShow(v),
        (Redeemed(v), VisitEvent::Completed(_)) => Completed(v),
        (state, _) => state,
    }
}

impl Visit {
    /// The visit's details, in any state but `NotBooked`.
    pub fn details(&self) -> Option<&VisitState> {
        match self {
            Visit::NotBooked => None,
            Visit::Booked(v)
            | Visit::Redeemed(v)
            | Visit::Completed(v)
            | Visit::Cancelled(v)
            | Visit::NoShow(v) => Some(v),
        }
    }
}

impl Aggregate for Visit {
    type Event = VisitEvent;
    type Command = VisitCommand;
    const NAME: &'static str = "visit";

    fn decide(
        &self,
        command: &VisitCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<VisitEvent>, DomainError> {
        decide(self, command, now)
    }

    fn evolve(self, event: &VisitEvent) -> Self {
        evolve(self, event)
    }

    fn select(event: Event) -> Option<VisitEvent> {
        match event {
            Event::Visit(e) => Some(e),
            _ => None,
        }
    }

    fn state_name(&self) -> &'static str {
        match self {
            Visit::NotBooked => "not booked",
            Visit::Booked(_) => "booked",
            Visit::Redeemed(_) => "redeemed",
            Visit::Completed(_) => "completed",
            Visit::Cancelled(_) => "cancelled",
            Visit::NoShow(_) => "a no-show",
        }
    }
}
