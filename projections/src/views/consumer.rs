//! A consumer's own visits and orders, newest last.

use o2ohub_events::{ConsumerId, DeliveryEvent, Envelope, Event, OrderEvent, VisitEvent};

use super::{OrderStatus, OrderSummary, VisitStatus, VisitSummary};
use crate::sharded::ShardedMap;
use crate::Projection;

/// Visits and orders per consumer.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct ConsumerActivity {
    /// Per consumer: their visits and orders.
    by_consumer: ShardedMap<ConsumerId, Activity>,
    /// Which consumer and list slot a visit or order stream belongs to, since
    /// later events do not repeat the consumer.
    owners: ShardedMap<String, (ConsumerId, usize)>,
    /// Orders by the id of the delivery carrying them.
    deliveries: ShardedMap<String, String>,
}

/// One consumer's activity.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Activity {
    /// Their visits, in booking order.
    pub visits: Vec<VisitSummary>,
    /// Their orders, in placement order.
    pub orders: Vec<OrderSummary>,
}

impl ConsumerActivity {
    /// A consumer's visits and orders (empty for an unknown consumer).
    pub fn of(&self, consumer: &ConsumerId) -> Activity {
        self.by_consumer.get(consumer).cloned().unwrap_or_default()
    }

    fn visit_mut(&mut self, stream: &str) -> Option<&mut VisitSummary> {
        let (consumer, i) = self.owners.get(stream)?;
        self.by_consumer.get_mut(consumer)?.visits.get_mut(*i)
    }

    fn order_mut(&mut self, stream: &str) -> Option<&mut OrderSummary> {
        let (consumer, i) = self.owners.get(stream)?;
        self.by_consumer.get_mut(consumer)?.orders.get_mut(*i)
    }
}

impl Projection for ConsumerActivity {
    fn name(&self) -> &'static str {
        "consumer_activity"
    }

    fn version(&self) -> u32 {
        1
    }

    fn apply(&mut self, e: &Envelope) {
        match &e.event {
            Event::Visit(VisitEvent::Booked(b)) => {
                let activity = self.by_consumer.entry(b.consumer_id).or_default();
                activity.visits.push(VisitSummary::booked(b));
                self.owners.insert(
                    e.stream_id.clone(),
                    (b.consumer_id, activity.visits.len() - 1),
                );
            }
            Event::Visit(v) => {
                if let Some(visit) = self.visit_mut(&e.stream_id) {
                    apply_visit(visit, v);
                }
            }
            Event::Order(OrderEvent::Placed(p)) => {
                let activity = self.by_consumer.entry(p.consumer_id).or_default();
                activity.orders.push(OrderSummary::placed(p, e.occurred_at));
                self.owners.insert(
                    e.stream_id.clone(),
                    (p.consumer_id, activity.orders.len() - 1),
                );
            }
            Event::Order(o) => {
                if let Some(order) = self.order_mut(&e.stream_id) {
                    apply_order(order, o);
                }
            }
            Event::Delivery(DeliveryEvent::Requested(r)) => {
                self.deliveries
                    .insert(e.stream_id.clone(), r.order_id.stream());
            }
            Event::Delivery(DeliveryEvent::PickedUp(_)) => {
                if let Some(order_stream) = self.deliveries.get(&e.stream_id).cloned() {
                    if let Some(order) = self.order_mut(&order_stream) {
                        order.status = OrderStatus::PickedUp;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Folds a visit event into its summary (shared with the store's day).
pub(crate) fn apply_visit(visit: &mut VisitSummary, event: &VisitEvent) {
    match event {
        VisitEvent::Booked(_) => {}
        VisitEvent::Rescheduled(r) => visit.slot = r.to,
        VisitEvent::Cancelled(_) => visit.status = VisitStatus::Cancelled,
        VisitEvent::Redeemed(_) => visit.status = VisitStatus::Redeemed,
        VisitEvent::RedemptionFailed(f) => visit.failed_redemptions = f.failures,
        VisitEvent::NoShow(_) => visit.status = VisitStatus::NoShow,
        VisitEvent::Completed(_) => visit.status = VisitStatus::Completed,
    }
}

/// Folds an order event into its summary (shared with the store's day).
pub(crate) fn apply_order(order: &mut OrderSummary, event: &OrderEvent) {
    match event {
        OrderEvent::Placed(_) => {}
        OrderEvent::Paid(_) => order.status = OrderStatus::Paid,
        OrderEvent::Accepted(_) => order.status = OrderStatus::Accepted,
        OrderEvent::Rejected(_) => order.status = OrderStatus::Rejected,
        OrderEvent::Ready(_) => order.status = OrderStatus::Ready,
        OrderEvent::Cancelled(_) => order.status = OrderStatus::Cancelled,
        OrderEvent::Refunded(_) => order.refunded = true,
        OrderEvent::Completed(_) => order.status = OrderStatus::Completed,
    }
}
