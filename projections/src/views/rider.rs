//! A rider's open offers and current route (accepted deliveries not yet
//! handed over), in the order they were accepted.

use chrono::{DateTime, Utc};
use o2ohub_events::{
    DeliveryEvent, DeliveryId, Envelope, Event, LatLng, OfferId, OrderId, RiderId,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use crate::Projection;

/// An offer waiting for the rider's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenOffer {
    /// The offer.
    pub offer_id: OfferId,
    /// The delivery offered.
    pub delivery_id: DeliveryId,
    /// Pickup point.
    pub pickup: LatLng,
    /// Drop-off point.
    pub drop_off: LatLng,
    /// When the offer lapses.
    pub expires_at: DateTime<Utc>,
    /// Estimated drop-off time if accepted.
    pub eta: DateTime<Utc>,
}

/// Where a leg of a rider's route stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegStatus {
    /// On the way to the store.
    ToPickup,
    /// Carrying it to the consumer.
    ToDropOff,
}

/// A delivery on the rider's route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteLeg {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// The order it carries.
    pub order_id: OrderId,
    /// Pickup point.
    pub pickup: LatLng,
    /// Drop-off point.
    pub drop_off: LatLng,
    /// Latest drop-off that keeps the promise.
    pub deadline: DateTime<Utc>,
    /// Where it stands.
    pub status: LegStatus,
}

/// One rider's board.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Board {
    /// Offers waiting for an answer.
    pub offers: Vec<OpenOffer>,
    /// Accepted deliveries not yet handed over.
    pub route: Vec<RouteLeg>,
}

/// Offers and routes per rider.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct RiderBoards {
    /// Per rider.
    boards: HashMap<RiderId, Board>,
    /// Requested deliveries by stream: needed when they are offered.
    deliveries: HashMap<String, o2ohub_events::DeliveryRequested>,
}

impl RiderBoards {
    /// A rider's board (empty for an unknown rider).
    pub fn of(&self, rider: &RiderId) -> Board {
        self.boards.get(rider).cloned().unwrap_or_default()
    }
}

impl Projection for RiderBoards {
    fn name(&self) -> &'static str {
        "rider_boards"
    }

    fn version(&self) -> u32 {
        2
    }

    fn apply(&mut self, e: &Envelope) {
        let Event::Delivery(d) = &e.event else { return };
        if let DeliveryEvent::Requested(r) = d {
            self.deliveries.insert(e.stream_id.clone(), r.clone());
            return;
        }
        let Some(request) = self.deliveries.get(&e.stream_id) else {
            return;
        };
        let delivery_id = request.delivery_id;
        match d {
            DeliveryEvent::Requested(_) => {}
            DeliveryEvent::Offered(o) => {
                self.boards
                    .entry(o.rider_id)
                    .or_default()
                    .offers
                    .push(OpenOffer {
                        offer_id: o.offer_id,
                        delivery_id,
                        pickup: request.pickup,
                        drop_off: request.drop_off,
                        expires_at: o.expires_at,
                        eta: o.eta,
                    })
            }
            DeliveryEvent::OfferAccepted(a) => {
                let leg = RouteLeg {
                    delivery_id,
                    order_id: request.order_id,
                    pickup: request.pickup,
                    drop_off: request.drop_off,
                    deadline: request.deadline,
                    status: LegStatus::ToPickup,
                };
                let board = self.boards.entry(a.rider_id).or_default();
                board.offers.retain(|o| o.offer_id != a.offer_id);
                board.route.push(leg);
            }
            DeliveryEvent::OfferDeclined(o) => self.drop_offer(&o.rider_id, &o.offer_id),
            DeliveryEvent::OfferExpired(o) => self.drop_offer(&o.rider_id, &o.offer_id),
            DeliveryEvent::PickedUp(p) => {
                if let Some(leg) = self.leg_mut(&p.rider_id, &delivery_id) {
                    leg.status = LegStatus::ToDropOff;
                }
            }
            DeliveryEvent::Delivered(done) => self.drop_leg(&done.rider_id, &delivery_id),
            DeliveryEvent::Released(r) => self.drop_leg(&r.rider_id, &delivery_id),
            DeliveryEvent::Failed(_) => {
                for board in self.boards.values_mut() {
                    board.route.retain(|l| l.delivery_id != delivery_id);
                    board.offers.retain(|o| o.delivery_id != delivery_id);
                }
            }
        }
        if matches!(d, DeliveryEvent::Delivered(_) | DeliveryEvent::Failed(_)) {
            self.deliveries.remove(&e.stream_id);
        }
    }
}

impl RiderBoards {
    fn drop_offer(&mut self, rider: &RiderId, offer: &OfferId) {
        if let Some(board) = self.boards.get_mut(rider) {
            board.offers.retain(|o| o.offer_id != *offer);
        }
    }

    fn leg_mut(&mut self, rider: &RiderId, delivery: &DeliveryId) -> Option<&mut RouteLeg> {
        self.boards
            .get_mut(rider)?
            .route
            .iter_mut()
            .find(|l| l.delivery_id == *delivery)
    }

    fn drop_leg(&mut self, rider: &RiderId, delivery: &DeliveryId) {
        if let Some(board) = self.boards.get_mut(rider) {
            board.route.retain(|l| l.delivery_id != *delivery);
        }
    }
}
