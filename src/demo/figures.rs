//! What happened in the day, counted from the event log alone (not from the
//! driver's own notes): visits and how they ended, orders, deliveries and
//! their times against the promise, riders' shift time, busy time and
//! distance, and supply against demand per H3 cell. A pure fold over
//! envelopes in log order, like a read model, so it is tested with events.

use chrono::{DateTime, Duration, Utc};
use h3o::Resolution;
use o2ohub_events::{
    DeliveryEvent, Envelope, Event, LatLng, OrderEvent, RiderEvent, RiderId, VisitEvent,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

use super::demand::local_minute;

/// The H3 resolution of the supply/demand map (about 0.7 km² per cell).
pub const MAP_RESOLUTION: Resolution = Resolution::Eight;

/// How visits ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Visits {
    /// Booked.
    pub booked: u64,
    /// Redeemed at the store (completed or not yet).
    pub redeemed: u64,
    /// Completed after redemption.
    pub completed: u64,
    /// Cancelled before the slot.
    pub cancelled: u64,
    /// The consumer did not come.
    pub no_shows: u64,
    /// Still booked at the end: neither redeemed, cancelled nor missed.
    pub unsettled: u64,
    /// Wrong codes entered.
    pub wrong_codes: u64,
}

/// Orders and their deliveries.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Orders {
    /// Placed.
    pub placed: u64,
    /// Paid through the provider's callback.
    pub paid: u64,
    /// Accepted by the store.
    pub accepted: u64,
    /// Cancelled (by anyone).
    pub cancelled: u64,
    /// Refunded.
    pub refunded: u64,
    /// Ready, so a delivery was requested.
    pub ready: u64,
    /// Offers made to riders.
    pub offers: u64,
    /// Offers accepted.
    pub offers_accepted: u64,
    /// Offers declined.
    pub offers_declined: u64,
    /// Offers that lapsed unanswered.
    pub offers_expired: u64,
    /// Accepted deliveries released back to the pool (the rider went off shift).
    pub released: u64,
    /// Picked up at the store.
    pub picked_up: u64,
    /// Handed over with the code.
    pub delivered: u64,
    /// Handed over by the promised time.
    pub on_time: u64,
    /// Deliveries that failed.
    pub failed: u64,
    /// Requested and neither delivered nor failed at the end.
    pub open: u64,
    /// Delivered without having been picked up (must be 0).
    pub delivered_without_pickup: u64,
}

/// One local hour of the day, by when orders were placed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Hour {
    /// Local hour of day (0..24).
    pub hour: u32,
    /// Orders placed in it.
    pub orders: u64,
    /// Of those, delivered.
    pub delivered: u64,
    /// Of those, delivered by the promised time.
    pub on_time: u64,
    /// Visits booked in it.
    pub visits: u64,
}

/// Riders over the day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Riders {
    /// Riders who went on shift.
    pub worked: u64,
    /// Hours on shift, all riders.
    pub shift_hours: f64,
    /// Hours with at least one accepted delivery not yet handed over.
    pub busy_hours: f64,
    /// Kilometres between reported positions.
    pub distance_km: f64,
}

impl Riders {
    /// Busy share of shift time.
    pub fn utilisation(&self) -> Option<f64> {
        (self.shift_hours > 0.0).then(|| self.busy_hours / self.shift_hours)
    }
}

/// Supply and demand in one H3 cell over the day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cell {
    /// Rider-hours spent in the cell.
    pub rider_hours: f64,
    /// Deliveries picked up in the cell.
    pub deliveries: u64,
}

/// Everything counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Events folded.
    pub events: u64,
    /// Events by type.
    pub by_type: BTreeMap<String, u64>,
    /// Visits.
    pub visits: Visits,
    /// Orders and deliveries.
    pub orders: Orders,
    /// Minutes from placement to hand-over, per delivered order, in log order.
    pub delivery_minutes: Vec<f64>,
    /// Mean minutes of each phase of a delivered order: placed → ready,
    /// ready → accepted by a rider, accepted → picked up, picked up → handed over.
    pub phases: [f64; 4],
    /// Per local hour.
    pub hours: BTreeMap<u32, Hour>,
    /// Riders.
    pub riders: Riders,
    /// Per H3 cell (hex index).
    pub cells: BTreeMap<String, Cell>,
}

impl Figures {
    /// Share of delivered orders handed over by the promised time.
    pub fn on_time_rate(&self) -> Option<f64> {
        (self.orders.delivered > 0)
            .then(|| self.orders.on_time as f64 / self.orders.delivered as f64)
    }

    /// Mean minutes from placement to hand-over.
    pub fn mean_delivery_minutes(&self) -> Option<f64> {
        let n = self.delivery_minutes.len();
        (n > 0).then(|| self.delivery_minutes.iter().sum::<f64>() / n as f64)
    }

    /// The 90th percentile of minutes from placement to hand-over (nearest rank).
    pub fn p90_delivery_minutes(&self) -> Option<f64> {
        let mut sorted = self.delivery_minutes.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        (n > 0).then(|| sorted[((0.9 * n as f64).ceil() as usize).clamp(1, n) - 1])
    }
}

#[derive(Default)]
struct Rider {
    since: Option<DateTime<Utc>>,
    at: Option<(LatLng, DateTime<Utc>)>,
    legs: u32,
    busy_since: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Delivery {
    order: String,
    /// Ready (requested), accepted, picked up: when.
    times: [Option<DateTime<Utc>>; 3],
    pickup: Option<LatLng>,
    rider: Option<RiderId>,
    picked: bool,
    done: bool,
}

/// The fold.
#[derive(Default)]
pub struct Count {
    figures: Figures,
    visits: HashMap<String, &'static str>,
    orders: HashMap<String, (DateTime<Utc>, DateTime<Utc>)>,
    deliveries: HashMap<String, Delivery>,
    riders: HashMap<RiderId, Rider>,
}

fn hours(d: Duration) -> f64 {
    d.num_milliseconds().max(0) as f64 / 3_600_000.0
}

fn cell(p: &LatLng) -> String {
    h3o::LatLng::new(p.lat, p.lng)
        .map(|ll| ll.to_cell(MAP_RESOLUTION).to_string())
        .unwrap_or_default()
}

impl Count {
    /// Folds one event.
    pub fn apply(&mut self, e: &Envelope) {
        let f = &mut self.figures;
        f.events += 1;
        *f.by_type.entry(e.event_type().to_owned()).or_default() += 1;
        let at = e.occurred_at;
        let hour = local_minute(at).0 / 60;
        match &e.event {
            Event::Visit(v) => {
                let status = match v {
                    VisitEvent::Booked(_) => {
                        f.visits.booked += 1;
                        f.hours
                            .entry(hour)
                            .or_insert_with(|| Hour {
                                hour,
                                ..Hour::default()
                            })
                            .visits += 1;
                        "booked"
                    }
                    VisitEvent::Redeemed(_) => {
                        f.visits.redeemed += 1;
                        "redeemed"
                    }
                    VisitEvent::Completed(_) => {
                        f.visits.completed += 1;
                        "completed"
                    }
                    VisitEvent::Cancelled(_) => {
                        f.visits.cancelled += 1;
                        "cancelled"
                    }
                    VisitEvent::NoShow(_) => {
                        f.visits.no_shows += 1;
                        "no_show"
                    }
                    VisitEvent::RedemptionFailed(_) => {
                        f.visits.wrong_codes += 1;
                        return;
                    }
                    VisitEvent::Rescheduled(_) => return,
                };
                self.visits.insert(e.stream_id.clone(), status);
            }
            Event::Order(o) => match o {
                OrderEvent::Placed(p) => {
                    f.orders.placed += 1;
                    f.hours
                        .entry(hour)
                        .or_insert_with(|| Hour {
                            hour,
                            ..Hour::default()
                        })
                        .orders += 1;
                    self.orders.insert(p.order_id.stream(), (at, p.promised_by));
                }
                OrderEvent::Paid(_) => f.orders.paid += 1,
                OrderEvent::Accepted(_) => f.orders.accepted += 1,
                OrderEvent::Cancelled(_) => f.orders.cancelled += 1,
                OrderEvent::Refunded(_) => f.orders.refunded += 1,
                OrderEvent::Ready(_) => f.orders.ready += 1,
                OrderEvent::Rejected(_) | OrderEvent::Completed(_) => {}
            },
            Event::Delivery(d) => self.delivery(e, d, at),
            Event::Rider(r) => {
                let Some(id) = e
                    .stream_id
                    .strip_prefix("rider-")
                    .and_then(|s| RiderId::parse(s).ok())
                else {
                    return;
                };
                let rider = self.riders.entry(id).or_default();
                match r {
                    RiderEvent::ShiftStarted(s) => {
                        f.riders.worked += u64::from(rider.since.is_none() && rider.at.is_none());
                        rider.since = Some(at);
                        rider.at = Some((s.position, at));
                    }
                    RiderEvent::PositionReported(p) => {
                        if let Some((last, last_at)) = rider.at {
                            f.riders.distance_km += last.distance_m(&p.position) / 1000.0;
                            f.cells.entry(cell(&last)).or_default().rider_hours +=
                                hours(at - last_at);
                        }
                        rider.at = Some((p.position, at));
                    }
                    RiderEvent::ShiftEnded(_) => {
                        if let Some(since) = rider.since.take() {
                            f.riders.shift_hours += hours(at - since);
                        }
                        if let Some((last, last_at)) = rider.at.take() {
                            f.cells.entry(cell(&last)).or_default().rider_hours +=
                                hours(at - last_at);
                        }
                        if let Some(busy) = rider.busy_since.take() {
                            f.riders.busy_hours += hours(at - busy);
                        }
                        rider.legs = 0;
                    }
                    RiderEvent::Registered(_) => {}
                }
            }
            Event::Merchant(_) | Event::Slot(_) => {}
        }
    }

    fn delivery(&mut self, e: &Envelope, d: &DeliveryEvent, at: DateTime<Utc>) {
        let f = &mut self.figures;
        let delivery = self.deliveries.entry(e.stream_id.clone()).or_default();
        let mut leg_ends = false;
        match d {
            DeliveryEvent::Requested(r) => {
                delivery.order = r.order_id.stream();
                delivery.pickup = Some(r.pickup);
                delivery.times[0] = Some(at);
                f.cells.entry(cell(&r.pickup)).or_default().deliveries += 1;
            }
            DeliveryEvent::Offered(_) => f.orders.offers += 1,
            DeliveryEvent::OfferDeclined(_) => f.orders.offers_declined += 1,
            DeliveryEvent::OfferExpired(_) => f.orders.offers_expired += 1,
            DeliveryEvent::OfferAccepted(a) => {
                f.orders.offers_accepted += 1;
                delivery.rider = Some(a.rider_id);
                delivery.times[1] = Some(at);
                let rider = self.riders.entry(a.rider_id).or_default();
                if rider.legs == 0 {
                    rider.busy_since = Some(at);
                }
                rider.legs += 1;
            }
            DeliveryEvent::PickedUp(_) => {
                f.orders.picked_up += 1;
                delivery.picked = true;
                delivery.times[2] = Some(at);
            }
            DeliveryEvent::Delivered(_) => {
                f.orders.delivered += 1;
                f.orders.delivered_without_pickup += u64::from(!delivery.picked);
                delivery.done = true;
                leg_ends = true;
                if let Some((placed, promised)) = self.orders.get(&delivery.order) {
                    let minutes = (at - *placed).num_milliseconds() as f64 / 60_000.0;
                    f.delivery_minutes.push(minutes);
                    let marks = [
                        Some(*placed),
                        delivery.times[0],
                        delivery.times[1],
                        delivery.times[2],
                        Some(at),
                    ];
                    for (phase, pair) in marks.windows(2).enumerate() {
                        if let [Some(a), Some(b)] = pair {
                            let n = f.delivery_minutes.len() as f64;
                            let m = (*b - *a).num_milliseconds() as f64 / 60_000.0;
                            // A running mean over delivered orders.
                            f.phases[phase] += (m - f.phases[phase]) / n;
                        }
                    }
                    let on_time = at <= *promised;
                    f.orders.on_time += u64::from(on_time);
                    let hour = local_minute(*placed).0 / 60;
                    let h = f.hours.entry(hour).or_insert_with(|| Hour {
                        hour,
                        ..Hour::default()
                    });
                    h.delivered += 1;
                    h.on_time += u64::from(on_time);
                }
            }
            DeliveryEvent::Failed(_) => {
                f.orders.failed += 1;
                delivery.done = true;
                leg_ends = true;
            }
            DeliveryEvent::Released(_) => {
                f.orders.released += 1;
                leg_ends = true;
            }
        }
        if leg_ends {
            if let Some(rider) = delivery.rider.take().and_then(|r| self.riders.get_mut(&r)) {
                rider.legs = rider.legs.saturating_sub(1);
                if rider.legs == 0 {
                    if let Some(busy) = rider.busy_since.take() {
                        f.riders.busy_hours += hours(at - busy);
                    }
                }
            }
        }
    }

    /// The figures, with what is still open at the end counted.
    pub fn finish(mut self) -> Figures {
        let f = &mut self.figures;
        f.visits.unsettled = self.visits.values().filter(|s| **s == "booked").count() as u64;
        f.orders.open = self
            .deliveries
            .values()
            .filter(|d| d.pickup.is_some() && !d.done)
            .count() as u64;
        self.figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use o2ohub_events::{
        Actor, DeliveryDelivered, DeliveryId, DeliveryPickedUp, DeliveryProof, DeliveryRequested,
        MerchantId, OfferAccepted, OfferId, OrderId, Role,
    };

    fn envelope(n: u64, stream: &str, at: DateTime<Utc>, event: Event) -> Envelope {
        Envelope {
            event_id: uuid::Uuid::now_v7(),
            stream_id: stream.into(),
            stream_version: n,
            global_position: n,
            schema_version: 1,
            occurred_at: at,
            recorded_at: at,
            correlation_id: uuid::Uuid::nil(),
            causation_id: None,
            actor: Actor {
                role: Role::Admin,
                subject: "t".into(),
            },
            event,
        }
    }

    #[test]
    fn delivery_times_on_time_and_the_pickup_invariant() {
        let t0 = o2ohub_events::schedule::utc(2026, 12, 7, 4, 0);
        let p = LatLng {
            lat: 31.23,
            lng: 121.47,
        };
        let rider = RiderId::new();
        let mut count = Count::default();
        // Two deliveries: one picked up and on time (30 min), one handed over
        // without a pickup and late (60 min against a 45-minute promise).
        for (k, (minutes, picked)) in [(30, true), (60, false)].into_iter().enumerate() {
            let order = OrderId::new();
            let stream = DeliveryId::new().stream();
            count.figures.orders.placed += 1;
            count
                .orders
                .insert(order.stream(), (t0, t0 + Duration::minutes(45)));
            let request = DeliveryRequested {
                delivery_id: DeliveryId::new(),
                order_id: order,
                merchant_id: MerchantId::new(),
                pickup: p,
                drop_off: p,
                ready_at: t0,
                deadline: t0 + Duration::minutes(45),
                load: 1,
            };
            let base = 10 * k as u64;
            count.apply(&envelope(
                base + 1,
                &stream,
                t0,
                Event::Delivery(DeliveryEvent::Requested(request)),
            ));
            let accepted = OfferAccepted {
                offer_id: OfferId::new(),
                rider_id: rider,
            };
            count.apply(&envelope(
                base + 2,
                &stream,
                t0,
                Event::Delivery(DeliveryEvent::OfferAccepted(accepted)),
            ));
            if picked {
                count.apply(&envelope(
                    base + 3,
                    &stream,
                    t0,
                    Event::Delivery(DeliveryEvent::PickedUp(DeliveryPickedUp {
                        rider_id: rider,
                    })),
                ));
            }
            let proof = DeliveryProof {
                handover_code_verified: true,
                photo_ref: None,
            };
            let done = DeliveryDelivered {
                rider_id: rider,
                proof,
            };
            count.apply(&envelope(
                base + 4,
                &stream,
                t0 + Duration::minutes(minutes),
                Event::Delivery(DeliveryEvent::Delivered(done)),
            ));
        }
        let f = count.finish();
        assert_eq!(
            (
                f.orders.delivered,
                f.orders.on_time,
                f.orders.delivered_without_pickup
            ),
            (2, 1, 1)
        );
        assert_eq!(f.mean_delivery_minutes(), Some(45.0));
        assert_eq!(f.p90_delivery_minutes(), Some(60.0));
        assert_eq!(f.on_time_rate(), Some(0.5));
        assert_eq!(f.orders.open, 0);
        assert!(f.riders.busy_hours > 0.0);
    }
}
