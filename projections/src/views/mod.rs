//! Views the API serves directly: a consumer's visits and orders, a store's
//! day, a rider's offers and route.

pub mod consumer;
pub mod rider;
pub mod store;

use o2ohub_events::{ConsumerId, MerchantId, Money, OrderId, SlotStart, VisitId};
use serde::{Deserialize, Serialize};

/// Where a visit stands, as the read side shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitStatus {
    /// Booked, not yet redeemed.
    Booked,
    /// The consumer arrived and the code was redeemed.
    Redeemed,
    /// Service delivered.
    Completed,
    /// Cancelled.
    Cancelled,
    /// The consumer did not come.
    NoShow,
}

/// A visit as listed to its consumer and its store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitSummary {
    /// The visit.
    pub visit_id: VisitId,
    /// Who booked.
    pub consumer_id: ConsumerId,
    /// The store.
    pub merchant_id: MerchantId,
    /// The service.
    pub service_id: String,
    /// The slot held now.
    pub slot: SlotStart,
    /// Minutes the service lasts.
    pub duration_minutes: u32,
    /// Price at booking.
    pub price: Money,
    /// Where it stands.
    pub status: VisitStatus,
    /// Wrong codes entered so far.
    pub failed_redemptions: u32,
}

impl VisitSummary {
    /// A visit as just booked.
    pub fn booked(b: &o2ohub_events::VisitBooked) -> Self {
        VisitSummary {
            visit_id: b.visit_id,
            consumer_id: b.consumer_id,
            merchant_id: b.merchant_id,
            service_id: b.service_id.clone(),
            slot: b.slot,
            duration_minutes: b.duration_minutes,
            price: b.price,
            status: VisitStatus::Booked,
            failed_redemptions: 0,
        }
    }
}

/// Where an order stands, as the read side shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Waiting for payment.
    Placed,
    /// Paid, waiting for the store.
    Paid,
    /// Being prepared.
    Accepted,
    /// Ready for pickup.
    Ready,
    /// A rider has it.
    PickedUp,
    /// Handed over.
    Completed,
    /// Cancelled.
    Cancelled,
    /// Refused by the store.
    Rejected,
}

impl OrderStatus {
    /// Whether the store still has something to do or watch.
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            OrderStatus::Placed | OrderStatus::Paid | OrderStatus::Accepted | OrderStatus::Ready
        )
    }
}

/// An order as listed to its consumer and its store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderSummary {
    /// The order.
    pub order_id: OrderId,
    /// Who ordered.
    pub consumer_id: ConsumerId,
    /// The store.
    pub merchant_id: MerchantId,
    /// Sum of the lines.
    pub total: Money,
    /// Where it stands.
    pub status: OrderStatus,
    /// When it was placed.
    pub placed_at: chrono::DateTime<chrono::Utc>,
    /// The promised delivery time.
    pub promised_by: chrono::DateTime<chrono::Utc>,
    /// Whether the payment was refunded.
    pub refunded: bool,
}

impl OrderSummary {
    /// An order as just placed at `at`.
    pub fn placed(p: &o2ohub_events::OrderPlaced, at: chrono::DateTime<chrono::Utc>) -> Self {
        OrderSummary {
            order_id: p.order_id,
            consumer_id: p.consumer_id,
            merchant_id: p.merchant_id,
            total: p.total,
            status: OrderStatus::Placed,
            placed_at: at,
            promised_by: p.promised_by,
            refunded: false,
        }
    }
}
