//! The `Delivery` aggregate: one order's dispatch — in the pool, offered to a
//! rider, assigned, picked up, delivered with proof, or failed.

use chrono::{DateTime, Utc};
use o2ohub_events::{
    CodeDigest, DeliveryDelivered, DeliveryEvent, DeliveryFailed, DeliveryOffered,
    DeliveryPickedUp, DeliveryProof, DeliveryReleased, DeliveryRequested, Event, OfferAccepted,
    OfferDeclined, OfferExpired, OfferId, RiderId,
};

use super::{Aggregate, DomainError};

/// A delivery's life.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Delivery {
    /// Not requested.
    #[default]
    NotRequested,
    /// In the pool, waiting for the dispatcher.
    Open(DeliveryRequested),
    /// Offered to one rider, waiting for an answer.
    Offered(DeliveryRequested, DeliveryOffered),
    /// A rider accepted; on the way to the store.
    Assigned(DeliveryRequested, RiderId),
    /// Collected; on the way to the consumer.
    PickedUp(DeliveryRequested, RiderId),
    /// Handed over.
    Delivered(DeliveryRequested, RiderId),
    /// Could not be completed.
    Failed(DeliveryRequested),
}

/// Commands about a delivery.
#[derive(Debug, Clone)]
pub enum DeliveryCommand {
    /// Put a ready order in the pool.
    Request(Box<DeliveryRequested>),
    /// The dispatcher offers it to a rider.
    Offer(DeliveryOffered),
    /// The rider accepts.
    Accept {
        /// The offer answered.
        offer_id: OfferId,
        /// Who answers.
        rider_id: RiderId,
    },
    /// The rider declines.
    Decline {
        /// The offer answered.
        offer_id: OfferId,
        /// Who answers.
        rider_id: RiderId,
        /// Optional reason.
        reason: String,
    },
    /// The offer's time ran out.
    Expire {
        /// The offer.
        offer_id: OfferId,
    },
    /// The rider collected it.
    PickUp {
        /// Who.
        rider_id: RiderId,
    },
    /// The rider handed it over; `entered` is the digest of the code the
    /// consumer gave, `expected` the order's.
    Deliver {
        /// Who.
        rider_id: RiderId,
        /// Digest of the code the rider entered.
        entered: CodeDigest,
        /// Digest recorded on the order.
        expected: CodeDigest,
        /// Optional photo reference.
        photo_ref: Option<String>,
    },
    /// The rider holding it went off shift before collecting it: back to
    /// the pool.
    Release {
        /// The rider who held it.
        rider_id: RiderId,
        /// Why.
        reason: String,
    },
    /// Give up.
    Fail {
        /// Why.
        reason: String,
    },
}

fn rider_matches(expected: &RiderId, actual: &RiderId) -> Result<(), DomainError> {
    if expected == actual {
        Ok(())
    } else {
        Err(DomainError::NotYours(
            "this delivery is assigned to another rider",
        ))
    }
}

/// Decides a delivery command.
pub fn decide(
    state: &Delivery,
    command: &DeliveryCommand,
    now: DateTime<Utc>,
) -> Result<Vec<DeliveryEvent>, DomainError> {
    use Delivery::*;
    use DeliveryCommand as C;
    let illegal = |c| DomainError::illegal(Delivery::NAME, state.state_name(), c);
    match (state, command) {
        (NotRequested, C::Request(r)) => {
            if r.deadline <= r.ready_at {
                return Err(DomainError::invalid(
                    "deadline",
                    "the deadline must come after the ready time",
                ));
            }
            if r.load == 0 {
                return Err(DomainError::invalid(
                    "load",
                    "a delivery takes at least one unit of capacity",
                ));
            }
            Ok(vec![DeliveryEvent::Requested((**r).clone())])
        }
        (_, C::Request(_)) => Err(DomainError::AlreadyExists {
            aggregate: Delivery::NAME,
        }),
        (NotRequested, _) => Err(DomainError::NotFound {
            aggregate: Delivery::NAME,
        }),
        (Open(_), C::Offer(o)) => {
            if o.expires_at <= now {
                return Err(DomainError::invalid(
                    "expires_at",
                    "an offer must expire in the future",
                ));
            }
            Ok(vec![DeliveryEvent::Offered(o.clone())])
        }
        (Offered(_, o), C::Accept { offer_id, rider_id }) => {
            if o.offer_id != *offer_id {
                return Err(DomainError::invalid(
                    "offer_id",
                    "this offer is no longer open",
                ));
            }
            rider_matches(&o.rider_id, rider_id)?;
            if now >= o.expires_at {
                return Err(DomainError::invalid("offer_id", "this offer has expired"));
            }
            Ok(vec![DeliveryEvent::OfferAccepted(OfferAccepted {
                offer_id: *offer_id,
                rider_id: *rider_id,
            })])
        }
        (
            Offered(_, o),
            C::Decline {
                offer_id,
                rider_id,
                reason,
            },
        ) => {
            if o.offer_id != *offer_id {
                return Err(DomainError::invalid(
                    "offer_id",
                    "this offer is no longer open",
                ));
            }
            rider_matches(&o.rider_id, rider_id)?;
            Ok(vec![DeliveryEvent::OfferDeclined(OfferDeclined {
                offer_id: *offer_id,
                rider_id: *rider_id,
                reason: reason.clone(),
            })])
        }
        (Offered(_, o), C::Expire { offer_id }) => {
            if o.offer_id != *offer_id || now < o.expires_at {
                return Err(illegal("expire the offer of"));
            }
            Ok(vec![DeliveryEvent::OfferExpired(OfferExpired {
                offer_id: *offer_id,
                rider_id: o.rider_id,
            })])
        }
        (Assigned(_, r), C::PickUp { rider_id }) => {
            rider_matches(r, rider_id)?;
            Ok(vec![DeliveryEvent::PickedUp(DeliveryPickedUp {
                rider_id: *rider_id,
            })])
        }
        (
            PickedUp(_, r),
            C::Deliver {
                rider_id,
                entered,
                expected,
                photo_ref,
            },
        ) => {
            rider_matches(r, rider_id)?;
            if entered != expected {
                return Err(DomainError::invalid(
                    "code",
                    "the hand-over code does not match this order",
                ));
            }
            Ok(vec![DeliveryEvent::Delivered(DeliveryDelivered {
                rider_id: *rider_id,
                proof: DeliveryProof {
                    handover_code_verified: true,
                    photo_ref: photo_ref.clone(),
                },
            })])
        }
        (Assigned(_, holder), C::Release { rider_id, reason }) => {
            rider_matches(holder, rider_id)?;
            Ok(vec![DeliveryEvent::Released(DeliveryReleased {
                rider_id: *rider_id,
                reason: reason.clone(),
            })])
        }
        (Open(_) | Offered(..) | Assigned(..) | PickedUp(..), C::Fail { reason }) => {
            Ok(vec![DeliveryEvent::Failed(DeliveryFailed {
                reason: reason.clone(),
            })])
        }
        (_, C::Offer(_)) => Err(illegal("offer")),
        (_, C::Accept { .. }) => Err(illegal("accept")),
        (_, C::Decline { .. }) => Err(illegal("decline")),
        (_, C::Expire { .. }) => Err(illegal("expire the offer of")),
        (_, C::PickUp { .. }) => Err(illegal("pick up")),
        (_, C::Deliver { .. }) => Err(illegal("deliver")),
        (_, C::Release { .. }) => Err(illegal("release")),
        (_, C::Fail { .. }) => Err(illegal("fail")),
    }
}

/// Folds a delivery event.
pub fn evolve(state: Delivery, event: &DeliveryEvent) -> Delivery {
    use Delivery::*;
    match (state, event) {
        (NotRequested, DeliveryEvent::Requested(r)) => Open(r.clone()),
        (Open(r), DeliveryEvent::Offered(o)) => Offered(r, o.clone()),
        (Offered(r, o), DeliveryEvent::OfferAccepted(_)) => Assigned(r, o.rider_id),
        (Offered(r, _), DeliveryEvent::OfferDeclined(_) | DeliveryEvent::OfferExpired(_)) => {
            Open(r)
        }
        (Assigned(r, rider), DeliveryEvent::PickedUp(_)) => PickedUp(r, rider),
        (Assigned(r, _), DeliveryEvent::Released(_)) => Open(r),
        (PickedUp(r, rider), DeliveryEvent::Delivered(_)) => Delivered(r, rider),
        (Open(r) | Offered(r, _) | Assigned(r, _) | PickedUp(r, _), DeliveryEvent::Failed(_)) => {
            Failed(r)
        }
        (state, _) => state,
    }
}

impl Aggregate for Delivery {
    type Event = DeliveryEvent;
    type Command = DeliveryCommand;
    const NAME: &'static str = "delivery";

    fn decide(
        &self,
        command: &DeliveryCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<DeliveryEvent>, DomainError> {
        decide(self, command, now)
    }

    fn evolve(self, event: &DeliveryEvent) -> Self {
        evolve(self, event)
    }

    fn select(event: Event) -> Option<DeliveryEvent> {
        match event {
            Event::Delivery(e) => Some(e),
            _ => None,
        }
    }

    fn state_name(&self) -> &'static str {
        match self {
            Delivery::NotRequested => "not requested",
            Delivery::Open(_) => "open",
            Delivery::Offered(..) => "offered",
            Delivery::Assigned(..) => "assigned",
            Delivery::PickedUp(..) => "picked up",
            Delivery::Delivered(..) => "delivered",
            Delivery::Failed(_) => "failed",
        }
    }
}
