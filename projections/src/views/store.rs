//! A store's day: its visits by local date and its open orders, for staff.

use chrono::{Duration, NaiveDate};
use o2ohub_events::{Envelope, Event, MerchantEvent, MerchantId, OrderEvent, VisitEvent};
use std::collections::{BTreeMap, HashMap};

use super::consumer::{apply_order, apply_visit};
use super::{OrderSummary, VisitStatus, VisitSummary};
use crate::hashing::Map;
use crate::sharded::ShardedMap;
use crate::Projection;

/// Visits and orders per store.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoreDays {
    /// Per merchant: its UTC offset, visits and orders.
    stores: HashMap<MerchantId, Store>,
    /// Which store a visit or order stream belongs to.
    owners: ShardedMap<String, MerchantId>,
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct Store {
    /// Minutes east of UTC, to cut days at the store's midnight.
    utc_offset_minutes: i16,
    /// Visits by stream.
    visits: Map<String, VisitSummary>,
    /// Orders by stream.
    orders: Map<String, OrderSummary>,
}

/// What staff see for one day.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoreDay {
    /// The store's local date.
    pub date: NaiveDate,
    /// Visits whose slot starts that day, by slot time (cancelled ones included).
    pub visits: Vec<VisitSummary>,
    /// Orders still open (placed, paid, accepted or ready), oldest first.
    pub open_orders: Vec<OrderSummary>,
}

impl StoreDays {
    /// The day `date` (store-local) of `merchant`.
    pub fn day(&self, merchant: &MerchantId, date: NaiveDate) -> StoreDay {
        let mut day = StoreDay {
            date,
            visits: Vec::new(),
            open_orders: Vec::new(),
        };
        let Some(store) = self.stores.get(merchant) else {
            return day;
        };
        let offset = Duration::minutes(i64::from(store.utc_offset_minutes));
        day.visits = store
            .visits
            .values()
            .filter(|v| (v.slot.at() + offset).date_naive() == date)
            .cloned()
            .collect();
        day.visits.sort_by_key(|v| (v.slot, v.visit_id));
        day.open_orders = store
            .orders
            .values()
            .filter(|o| o.status.is_open())
            .cloned()
            .collect();
        day.open_orders.sort_by_key(|o| (o.placed_at, o.order_id));
        day
    }

    /// Counts of a store's visits by status, over all days (for operators).
    pub fn visit_counts(&self, merchant: &MerchantId) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        if let Some(store) = self.stores.get(merchant) {
            for v in store.visits.values() {
                let key = match v.status {
                    VisitStatus::Booked => "booked",
                    VisitStatus::Redeemed => "redeemed",
                    VisitStatus::Completed => "completed",
                    VisitStatus::Cancelled => "cancelled",
                    VisitStatus::NoShow => "no_show",
                };
                *counts.entry(key).or_default() += 1;
            }
        }
        counts
    }
}

impl Projection for StoreDays {
    fn name(&self) -> &'static str {
        "store_days"
    }

    fn version(&self) -> u32 {
        1
    }

    fn apply(&mut self, e: &Envelope) {
        match &e.event {
            Event::Merchant(MerchantEvent::Registered(r)) => {
                self.stores
                    .entry(r.merchant_id)
                    .or_default()
                    .utc_offset_minutes = r.profile.opening_hours.utc_offset_minutes;
            }
            Event::Merchant(MerchantEvent::Updated(u)) => {
                if let Some(id) = merchant_of_stream(&e.stream_id) {
                    self.stores.entry(id).or_default().utc_offset_minutes =
                        u.profile.opening_hours.utc_offset_minutes;
                }
            }
            Event::Visit(VisitEvent::Booked(b)) => {
                self.owners.insert(e.stream_id.clone(), b.merchant_id);
                self.stores
                    .entry(b.merchant_id)
                    .or_default()
                    .visits
                    .insert(e.stream_id.clone(), VisitSummary::booked(b));
            }
            Event::Visit(v) => {
                let store = self
                    .owners
                    .get(&e.stream_id)
                    .and_then(|m| self.stores.get_mut(m));
                if let Some(visit) = store.and_then(|s| s.visits.get_mut(&e.stream_id)) {
                    apply_visit(visit, v);
                }
            }
            Event::Order(OrderEvent::Placed(p)) => {
                self.owners.insert(e.stream_id.clone(), p.merchant_id);
                self.stores
                    .entry(p.merchant_id)
                    .or_default()
                    .orders
                    .insert(e.stream_id.clone(), OrderSummary::placed(p, e.occurred_at));
            }
            Event::Order(o) => {
                let store = self
                    .owners
                    .get(&e.stream_id)
                    .and_then(|m| self.stores.get_mut(m));
                if let Some(order) = store.and_then(|s| s.orders.get_mut(&e.stream_id)) {
                    apply_order(order, o);
                }
            }
            _ => {}
        }
    }
}

/// The merchant id of a `merchant-<uuid>` stream.
pub(crate) fn merchant_of_stream(stream: &str) -> Option<MerchantId> {
    MerchantId::parse(stream.strip_prefix("merchant-")?).ok()
}
