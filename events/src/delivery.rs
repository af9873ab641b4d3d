//! Events of the `Delivery` aggregate: the dispatch of one order to riders
//! (stream `delivery-<id>`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalogue::event_family;
use crate::{DeliveryId, LatLng, MerchantId, OfferId, OrderId, RiderId};

/// A ready-to-dispatch delivery entered the pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRequested {
    /// The new delivery.
    pub delivery_id: DeliveryId,
    /// The order it carries.
    pub order_id: OrderId,
    /// Where to pick up.
    pub merchant_id: MerchantId,
    /// Pickup point.
    pub pickup: LatLng,
    /// Drop-off point.
    pub drop_off: LatLng,
    /// Earliest pickup (the order's ready time).
    pub ready_at: DateTime<Utc>,
    /// Latest drop-off that keeps the promise to the consumer.
    pub deadline: DateTime<Utc>,
    /// Capacity units the order takes in a rider's box.
    pub load: u32,
}

/// The dispatcher offered the delivery to a rider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryOffered {
    /// This offer.
    pub offer_id: OfferId,
    /// The rider offered to.
    pub rider_id: RiderId,
    /// When the offer lapses if not answered.
    pub expires_at: DateTime<Utc>,
    /// The estimated drop-off time if accepted.
    pub eta: DateTime<Utc>,
}

/// The rider accepted the offer; the delivery is theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferAccepted {
    /// The offer accepted.
    pub offer_id: OfferId,
    /// The rider.
    pub rider_id: RiderId,
}

/// The rider declined the offer; the delivery returns to the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferDeclined {
    /// The offer declined.
    pub offer_id: OfferId,
    /// The rider.
    pub rider_id: RiderId,
    /// Optional reason given by the rider.
    pub reason: String,
}

/// Nobody answered the offer in time; the delivery returns to the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferExpired {
    /// The offer that lapsed.
    pub offer_id: OfferId,
    /// The rider who did not answer.
    pub rider_id: RiderId,
}

/// The rider collected the order at the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPickedUp {
    /// The rider.
    pub rider_id: RiderId,
}

/// Evidence of hand-over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryProof {
    /// The consumer's hand-over code matched the order's digest.
    pub handover_code_verified: bool,
    /// Optional reference to a photo kept outside the log.
    pub photo_ref: Option<String>,
}

/// The order reached the consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryDelivered {
    /// The rider.
    pub rider_id: RiderId,
    /// The proof of hand-over.
    pub proof: DeliveryProof,
}

/// The delivery could not be completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryFailed {
    /// Why.
    pub reason: String,
}

/// The rider went off shift before collecting the order; it returns to the
/// pool (the dispatcher releases it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReleased {
    /// The rider who held it.
    pub rider_id: RiderId,
    /// Why it was released.
    pub reason: String,
}

event_family! {
    /// Events of a delivery.
    DeliveryEvent {
        /// See [`DeliveryRequested`].
        Requested(DeliveryRequested) = "DeliveryRequested" v 1,
        /// See [`DeliveryOffered`].
        Offered(DeliveryOffered) = "DeliveryOffered" v 1,
        /// See [`OfferAccepted`].
        OfferAccepted(OfferAccepted) = "DeliveryOfferAccepted" v 1,
        /// See [`OfferDeclined`].
        OfferDeclined(OfferDeclined) = "DeliveryOfferDeclined" v 1,
        /// See [`OfferExpired`].
        OfferExpired(OfferExpired) = "DeliveryOfferExpired" v 1,
        /// See [`DeliveryPickedUp`].
        PickedUp(DeliveryPickedUp) = "DeliveryPickedUp" v 1,
        /// See [`DeliveryDelivered`].
        Delivered(DeliveryDelivered) = "DeliveryDelivered" v 1,
        /// See [`DeliveryFailed`].
        Failed(DeliveryFailed) = "DeliveryFailed" v 1,
        /// See [`DeliveryReleased`].
        Released(DeliveryReleased) = "DeliveryReleased" v 1,
    }
}
