//! Events of the `Order` aggregate: a delivery order (stream `order-<id>`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalogue::event_family;
use crate::{CodeDigest, ConsumerId, LatLng, MerchantId, Money, OrderId, Role, Sealed};

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The merchant's item reference.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// Price of one.
    pub unit_price: Money,
}

/// A consumer placed a delivery order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPlaced {
    /// The new order.
    pub order_id: OrderId,
    /// Who ordered.
    pub consumer_id: ConsumerId,
    /// Who prepares it.
    pub merchant_id: MerchantId,
    /// What was ordered.
    pub lines: Vec<OrderLine>,
    /// Sum of the lines.
    pub total: Money,
    /// Where to deliver (a point, for routing).
    pub drop_off: LatLng,
    /// The street address and contact, sealed with the consumer's key.
    pub drop_off_details: Sealed,
    /// Digest of the hand-over code the rider must collect at the door.
    pub handover_code: CodeDigest,
    /// The delivery time promised to the consumer.
    pub promised_by: DateTime<Utc>,
}

/// The payment provider confirmed payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaid {
    /// The provider's payment reference.
    pub payment_ref: String,
    /// The amount captured.
    pub amount: Money,
}

/// The store accepted the order and says when it will be ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAccepted {
    /// When the store expects the order ready for pickup.
    pub ready_by: DateTime<Utc>,
}

/// The store refused the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRejected {
    /// Why (shown to the consumer).
    pub reason: String,
}

/// The order is ready for pickup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderReady {}

/// The order was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    /// Why.
    pub reason: String,
    /// Who cancelled: the consumer, the store, an operator or the hub.
    pub by: Role,
}

/// Money went back to the consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRefunded {
    /// The amount refunded.
    pub amount: Money,
}

/// The order was handed over to the consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCompleted {}

event_family! {
    /// Events of a delivery order.
    OrderEvent {
        /// See [`OrderPlaced`].
        Placed(OrderPlaced) = "OrderPlaced" v 1,
        /// See [`OrderPaid`].
        Paid(OrderPaid) = "OrderPaid" v 1,
        /// See [`OrderAccepted`].
        Accepted(OrderAccepted) = "OrderAccepted" v 1,
        /// See [`OrderRejected`].
        Rejected(OrderRejected) = "OrderRejected" v 1,
        /// See [`OrderReady`].
        Ready(OrderReady) = "OrderReady" v 1,
        /// See [`OrderCancelled`].
        Cancelled(OrderCancelled) = "OrderCancelled" v 1,
        /// See [`OrderRefunded`].
        Refunded(OrderRefunded) = "OrderRefunded" v 1,
        /// See [`OrderCompleted`].
        Completed(OrderCompleted) = "OrderCompleted" v 1,
    }
}
