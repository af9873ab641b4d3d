//! Analytics per merchant and per H3 area (resolution 7, about 5 km²):
//! orders, GMV, completed visits, no-show rate, on-time delivery rate,
//! average delivery time, and a daily sales ranking of merchants.

use chrono::{DateTime, NaiveDate, Utc};
use h3o::{CellIndex, Resolution};
use o2ohub_events::{
    DeliveryEvent, Envelope, Event, MerchantEvent, MerchantId, OrderEvent, VisitEvent,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

use crate::sharded::ShardedMap;
use crate::Projection;

/// The resolution areas are reported at.
pub const AREA_RESOLUTION: Resolution = Resolution::Seven;

/// Counters of one merchant or one area.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Orders placed.
    pub orders: u64,
    /// Money captured, in minor units, by currency code.
    pub gmv_minor: BTreeMap<String, u64>,
    /// Visits booked.
    pub visits_booked: u64,
    /// Visits completed.
    pub visits_completed: u64,
    /// Visits marked no-show.
    pub no_shows: u64,
    /// Deliveries handed over.
    pub deliveries: u64,
    /// Of those, handed over by their deadline.
    pub on_time: u64,
    /// Sum of request-to-hand-over times, in seconds.
    pub delivery_seconds: u64,
}

impl Figures {
    /// No-shows over visits that reached their slot (completed or no-show).
    pub fn no_show_rate(&self) -> Option<f64> {
        let settled = self.visits_completed + self.no_shows;
        (settled > 0).then(|| self.no_shows as f64 / settled as f64)
    }

    /// Deliveries on time over deliveries handed over.
    pub fn on_time_rate(&self) -> Option<f64> {
        (self.deliveries > 0).then(|| self.on_time as f64 / self.deliveries as f64)
    }

    /// Mean request-to-hand-over time, in seconds.
    pub fn mean_delivery_seconds(&self) -> Option<f64> {
        (self.deliveries > 0).then(|| self.delivery_seconds as f64 / self.deliveries as f64)
    }
}

/// A delivery in flight, remembered until it ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct InFlight {
    merchant: MerchantId,
    requested_at: DateTime<Utc>,
    deadline: DateTime<Utc>,
}

/// The analytics read model.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Analytics {
    /// Per merchant.
    merchants: HashMap<MerchantId, Figures>,
    /// Per area cell.
    areas: HashMap<CellIndex, Figures>,
    /// Each merchant's area.
    area_of: HashMap<MerchantId, CellIndex>,
    /// Which merchant an order or visit stream belongs to.
    owners: ShardedMap<String, MerchantId>,
    /// Deliveries in flight.
    in_flight: HashMap<String, InFlight>,
    /// GMV in minor units per day (UTC) and merchant.
    daily: BTreeMap<NaiveDate, HashMap<MerchantId, u64>>,
}

impl Analytics {
    /// A merchant's figures.
    pub fn merchant(&self, id: &MerchantId) -> Figures {
        self.merchants.get(id).cloned().unwrap_or_default()
    }

    /// Figures of every area with activity, by cell (hex).
    pub fn areas(&self) -> BTreeMap<String, Figures> {
        self.areas
            .iter()
            .map(|(c, f)| (c.to_string(), f.clone()))
            .collect()
    }

    /// The `top` merchants by GMV on `day` (UTC), highest first (ties by id).
    pub fn ranking(&self, day: NaiveDate, top: usize) -> Vec<(MerchantId, u64)> {
        let mut ranked: Vec<_> = self
            .daily
            .get(&day)
            .map(|m| m.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        ranked.sort_by(|a: &(MerchantId, u64), b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(top);
        ranked
    }

    /// Applies `change` to the merchant's figures and its area's.
    fn count(&mut self, merchant: MerchantId, change: impl Fn(&mut Figures)) {
        change(self.merchants.entry(merchant).or_default());
        if let Some(cell) = self.area_of.get(&merchant) {
            change(self.areas.entry(*cell).or_default());
        }
    }
}

impl Projection for Analytics {
    fn name(&self) -> &'static str {
        "analytics"
    }

    fn version(&self) -> u32 {
        1
    }

    fn apply(&mut self, e: &Envelope) {
        match &e.event {
            Event::Merchant(MerchantEvent::Registered(r)) => {
                let p = &r.profile.location;
                if let Ok(ll) = h3o::LatLng::new(p.lat, p.lng) {
                    self.area_of
                        .insert(r.merchant_id, ll.to_cell(AREA_RESOLUTION));
                }
            }
            Event::Order(OrderEvent::Placed(p)) => {
                self.owners.insert(e.stream_id.clone(), p.merchant_id);
                self.count(p.merchant_id, |f| f.orders += 1);
            }
            Event::Order(OrderEvent::Paid(paid)) => {
                let Some(m) = self.owners.get(&e.stream_id).copied() else {
                    return;
                };
                let (currency, minor) =
                    (paid.amount.currency.as_str().to_owned(), paid.amount.minor);
                self.count(m, |f| {
                    *f.gmv_minor.entry(currency.clone()).or_default() += minor
                });
                *self
                    .daily
                    .entry(e.occurred_at.date_naive())
                    .or_default()
                    .entry(m)
                    .or_default() += minor;
            }
            Event::Order(OrderEvent::Refunded(r)) => {
                let Some(m) = self.owners.get(&e.stream_id).copied() else {
                    return;
                };
                let (currency, minor) = (r.amount.currency.as_str().to_owned(), r.amount.minor);
                self.count(m, |f| {
                    let gmv = f.gmv_minor.entry(currency.clone()).or_default();
                    *gmv = gmv.saturating_sub(minor);
                });
            }
            Event::Visit(VisitEvent::Booked(b)) => {
                self.owners.insert(e.stream_id.clone(), b.merchant_id);
                self.count(b.merchant_id, |f| f.visits_booked += 1);
            }
            Event::Visit(VisitEvent::Completed(_)) => {
                if let Some(m) = self.owners.get(&e.stream_id).copied() {
                    self.count(m, |f| f.visits_completed += 1);
                }
            }
            Event::Visit(VisitEvent::NoShow(_)) => {
                if let Some(m) = self.owners.get(&e.stream_id).copied() {
                    self.count(m, |f| f.no_shows += 1);
                }
            }
            Event::Delivery(DeliveryEvent::Requested(r)) => {
                self.in_flight.insert(
                    e.stream_id.clone(),
                    InFlight {
                        merchant: r.merchant_id,
                        requested_at: e.occurred_at,
                        deadline: r.deadline,
                    },
                );
            }
            Event::Delivery(DeliveryEvent::Delivered(_)) => {
                let Some(d) = self.in_flight.remove(&e.stream_id) else {
                    return;
                };
                let on_time = u64::from(e.occurred_at <= d.deadline);
                let seconds = (e.occurred_at - d.requested_at).num_seconds().max(0) as u64;
                self.count(d.merchant, |f| {
                    f.deliveries += 1;
                    f.on_time += on_time;
                    f.delivery_seconds += seconds;
                });
            }
            Event::Delivery(DeliveryEvent::Failed(_)) => {
                self.in_flight.remove(&e.stream_id);
            }
            _ => {}
        }
    }
}
