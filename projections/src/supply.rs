//! Rider supply and delivery demand on H3 cells: on-shift riders with their
//! last position, load and route, indexed by resolution-8 cell (about 0.7 km²,
//! a few minutes' ride across); open deliveries by their pickup cell. Answers
//! "riders within R of P" for the dispatcher and "supply vs demand per cell"
//! at resolution 7 or 8 for operators.

use chrono::{DateTime, Utc};
use h3o::{CellIndex, Resolution};
use o2ohub_events::{
    DeliveryEvent, DeliveryId, DeliveryRequested, Envelope, Event, LatLng, OfferId, OrderId,
    RiderEvent, RiderId, VehicleType,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::Projection;

/// The resolution riders and deliveries are indexed at.
pub const SUPPLY_RESOLUTION: Resolution = Resolution::Eight;
/// Largest radius a rider query accepts, in metres.
pub const MAX_QUERY_RADIUS_M: f64 = 50_000.0;

/// A delivery on a rider's route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leg {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Where to pick up.
    pub pickup: LatLng,
    /// Where to drop off.
    pub drop_off: LatLng,
    /// Earliest pickup (the order's ready time).
    pub ready_at: DateTime<Utc>,
    /// Latest drop-off that keeps the promise.
    pub deadline: DateTime<Utc>,
    /// Capacity units it takes.
    pub load: u32,
    /// Whether it is already on board.
    pub picked_up: bool,
}

/// An on-shift rider as the dispatcher sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnShift {
    /// The rider.
    pub rider_id: RiderId,
    /// How they move.
    pub vehicle: VehicleType,
    /// Orders they can carry at once.
    pub capacity: u32,
    /// Last known position.
    pub position: LatLng,
    /// When that position was reported.
    pub seen_at: DateTime<Utc>,
    /// Accepted deliveries not yet handed over, in acceptance order.
    pub route: Vec<Leg>,
}

impl OnShift {
    /// Free capacity: how many more units fit.
    pub fn free(&self) -> u32 {
        self.capacity
            .saturating_sub(self.route.iter().map(|l| l.load).sum::<u32>())
    }
}

/// A delivery waiting for a rider (requested, or offered and unanswered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenDelivery {
    /// The request.
    pub request: DeliveryRequested,
    /// The rider it is offered to right now, if any.
    pub offered_to: Option<RiderId>,
    /// The open offer and when it lapses, if any.
    pub offer: Option<(OfferId, DateTime<Utc>)>,
    /// Riders who declined or let an offer expire, not to be asked again.
    pub passed_by: Vec<RiderId>,
}

/// Where a delivery stands, as the dispatcher sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// In the pool.
    Waiting,
    /// Offered to a rider, unanswered.
    Offered(RiderId),
    /// Accepted by a rider, not collected yet.
    Assigned(RiderId),
    /// On board with a rider.
    PickedUp(RiderId),
}

/// Supply and demand per cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellBalance {
    /// The H3 cell (hex).
    pub cell: String,
    /// On-shift riders in it.
    pub riders: u32,
    /// Orders those riders can still take.
    pub free_capacity: u32,
    /// Open deliveries picked up in it.
    pub open_deliveries: u32,
}

/// Why a supply query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupplyQueryError {
    /// Radius out of range.
    #[error("radius_m: a radius is greater than 0 and at most 50000 metres")]
    Radius,
    /// Only resolutions 7 and 8 are aggregated.
    #[error("resolution: supply and demand are reported at resolution 7 or 8")]
    Resolution,
}

/// The rider supply and delivery demand read model.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Supply {
    /// Registered riders' vehicle and capacity.
    registered: HashMap<RiderId, (VehicleType, u32)>,
    /// On-shift riders.
    riders: HashMap<RiderId, OnShift>,
    /// On-shift riders by cell.
    cells: HashMap<CellIndex, HashSet<RiderId>>,
    /// Deliveries waiting for a rider, by stream.
    open: HashMap<String, OpenDelivery>,
    /// Accepted deliveries by stream: their rider and whether it was picked up.
    assigned: HashMap<String, (RiderId, bool)>,
    /// Requests by stream, kept until the delivery ends.
    requests: HashMap<String, DeliveryRequested>,
    /// The delivery carrying each order, until it ends.
    by_order: HashMap<OrderId, DeliveryId>,
}

fn cell_of(p: &LatLng) -> CellIndex {
    // LatLng is validated on construction, so h3o accepts it.
    h3o::LatLng::new(p.lat, p.lng)
        .map(|ll| ll.to_cell(SUPPLY_RESOLUTION))
        .unwrap_or_else(|_| {
            h3o::LatLng::new(0.0, 0.0)
                .expect("origin is valid")
                .to_cell(SUPPLY_RESOLUTION)
        })
}

impl Supply {
    /// An on-shift rider.
    pub fn rider(&self, id: &RiderId) -> Option<&OnShift> {
        self.riders.get(id)
    }

    /// Every on-shift rider (unordered).
    pub fn on_shift(&self) -> impl Iterator<Item = &OnShift> {
        self.riders.values()
    }

    /// Deliveries waiting for a rider, oldest request first.
    pub fn open_deliveries(&self) -> Vec<&OpenDelivery> {
        let mut open: Vec<_> = self.open.values().collect();
        open.sort_by_key(|d| (d.request.ready_at, d.request.delivery_id));
        open
    }

    /// Accepted deliveries not yet picked up whose rider is off shift: the
    /// dispatcher releases them back to the pool. Stream, delivery and rider.
    pub fn stranded(&self) -> Vec<(DeliveryId, RiderId)> {
        let mut out: Vec<_> = self
            .assigned
            .iter()
            .filter(|(_, (rider, picked))| !picked && !self.riders.contains_key(rider))
            .filter_map(|(stream, (rider, _))| {
                self.requests.get(stream).map(|r| (r.delivery_id, *rider))
            })
            .collect();
        out.sort();
        out
    }

    /// Where a delivery that has not ended stands: waiting (with the rider
    /// it is offered to, if any), or held by a rider (and whether picked up).
    pub fn status(&self, id: &DeliveryId) -> Option<DeliveryStatus> {
        let stream = id.stream();
        if let Some(d) = self.open.get(&stream) {
            return Some(match d.offered_to {
                Some(r) => DeliveryStatus::Offered(r),
                None => DeliveryStatus::Waiting,
            });
        }
        self.assigned.get(&stream).map(|(r, picked)| {
            if *picked {
                DeliveryStatus::PickedUp(*r)
            } else {
                DeliveryStatus::Assigned(*r)
            }
        })
    }

    /// The delivery carrying an order, while it has not ended.
    pub fn delivery_of(&self, order: &OrderId) -> Option<DeliveryId> {
        self.by_order.get(order).copied()
    }

    /// The request of a delivery that has not ended yet.
    pub fn request(&self, id: &DeliveryId) -> Option<&DeliveryRequested> {
        self.requests.get(&id.stream())
    }

    /// On-shift riders within `radius_m` of `point`, nearest first (ties by id).
    /// Looks only at the cells a disk around `point` covers.
    pub fn riders_within(
        &self,
        point: &LatLng,
        radius_m: f64,
    ) -> Result<Vec<(&OnShift, f64)>, SupplyQueryError> {
        if !(radius_m > 0.0 && radius_m <= MAX_QUERY_RADIUS_M) {
            return Err(SupplyQueryError::Radius);
        }
        // A ring adds at least 1.5 edge lengths of reach in the worst
        // direction on a regular grid; H3 cells vary in size across the
        // globe, so count one (average) edge per ring, plus two rings for
        // where P sits in its cell. The property test holds this to a scan.
        let k = (radius_m / SUPPLY_RESOLUTION.edge_length_m()).ceil() as u32 + 2;
        let mut found = Vec::new();
        for cell in cell_of(point).grid_disk::<Vec<_>>(k) {
            for id in self.cells.get(&cell).into_iter().flatten() {
                if let Some(r) = self.riders.get(id) {
                    let d = r.position.distance_m(point);
                    if d <= radius_m {
                        found.push((r, d));
                    }
                }
            }
        }
        found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.rider_id.cmp(&b.0.rider_id)));
        Ok(found)
    }

    /// Supply and demand per cell at resolution 7 or 8, cells with either.
    pub fn balance(&self, resolution: u8) -> Result<Vec<CellBalance>, SupplyQueryError> {
        let res = match resolution {
            7 => Resolution::Seven,
            8 => Resolution::Eight,
            _ => return Err(SupplyQueryError::Resolution),
        };
        let mut cells: BTreeMap<CellIndex, CellBalance> = BTreeMap::new();
        let mut entry = |cell: CellIndex| {
            let cell = cell.parent(res).unwrap_or(cell);
            cells.entry(cell).or_insert_with(|| CellBalance {
                cell: cell.to_string(),
                riders: 0,
                free_capacity: 0,
                open_deliveries: 0,
            });
            cell
        };
        let mut counts: Vec<(CellIndex, u32, u32, u32)> = Vec::new();
        for r in self.riders.values() {
            counts.push((entry(cell_of(&r.position)), 1, r.free(), 0));
        }
        for d in self.open.values() {
            counts.push((entry(cell_of(&d.request.pickup)), 0, 0, 1));
        }
        for (cell, riders, free, demand) in counts {
            if let Some(b) = cells.get_mut(&cell) {
                b.riders += riders;
                b.free_capacity += free;
                b.open_deliveries += demand;
            }
        }
        Ok(cells.into_values().collect())
    }

    fn move_rider(&mut self, id: RiderId, to: LatLng, at: DateTime<Utc>) {
        let Some(r) = self.riders.get_mut(&id) else {
            return;
        };
        let (from, new) = (cell_of(&r.position), cell_of(&to));
        r.position = to;
        r.seen_at = at;
        if from != new {
            if let Some(set) = self.cells.get_mut(&from) {
                set.remove(&id);
                if set.is_empty() {
                    self.cells.remove(&from);
                }
            }
            self.cells.entry(new).or_default().insert(id);
        }
    }

    fn leave(&mut self, id: &RiderId) {
        if let Some(r) = self.riders.remove(id) {
            let cell = cell_of(&r.position);
            if let Some(set) = self.cells.get_mut(&cell) {
                set.remove(id);
                if set.is_empty() {
                    self.cells.remove(&cell);
                }
            }
        }
    }

    fn apply_rider(&mut self, stream: &str, event: &RiderEvent, at: DateTime<Utc>) {
        let Some(id) = stream
            .strip_prefix("rider-")
            .and_then(|s| RiderId::parse(s).ok())
        else {
            return;
        };
        match event {
            RiderEvent::Registered(r) => {
                self.registered.insert(id, (r.vehicle, r.capacity));
            }
            RiderEvent::ShiftStarted(s) => {
                let (vehicle, capacity) = self
                    .registered
                    .get(&id)
                    .copied()
                    .unwrap_or((VehicleType::Bicycle, 1));
                self.riders.insert(
                    id,
                    OnShift {
                        rider_id: id,
                        vehicle,
                        capacity,
                        position: s.position,
                        seen_at: at,
                        route: Vec::new(),
                    },
                );
                self.cells
                    .entry(cell_of(&s.position))
                    .or_default()
                    .insert(id);
            }
            RiderEvent::PositionReported(p) => self.move_rider(id, p.position, p.fixed_at),
            RiderEvent::ShiftEnded(_) => self.leave(&id),
        }
    }

    fn apply_delivery(&mut self, stream: &str, event: &DeliveryEvent) {
        match event {
            DeliveryEvent::Requested(r) => {
                self.requests.insert(stream.to_owned(), r.clone());
                self.by_order.insert(r.order_id, r.delivery_id);
                self.open.insert(
                    stream.to_owned(),
                    OpenDelivery {
                        request: r.clone(),
                        offered_to: None,
                        offer: None,
                        passed_by: Vec::new(),
                    },
                );
            }
            DeliveryEvent::Offered(o) => {
                if let Some(d) = self.open.get_mut(stream) {
                    d.offered_to = Some(o.rider_id);
                    d.offer = Some((o.offer_id, o.expires_at));
                }
            }
            DeliveryEvent::OfferDeclined(o) => self.pass(stream, o.rider_id),
            DeliveryEvent::OfferExpired(o) => self.pass(stream, o.rider_id),
            DeliveryEvent::Released(r) => self.release(stream, r.rider_id),
            DeliveryEvent::OfferAccepted(a) => {
                self.open.remove(stream);
                self.assigned.insert(stream.to_owned(), (a.rider_id, false));
                if let (Some(r), Some(req)) =
                    (self.riders.get_mut(&a.rider_id), self.requests.get(stream))
                {
                    r.route.push(Leg {
                        delivery_id: req.delivery_id,
                        pickup: req.pickup,
                        drop_off: req.drop_off,
                        ready_at: req.ready_at,
                        deadline: req.deadline,
                        load: req.load,
                        picked_up: false,
                    });
                }
            }
            DeliveryEvent::PickedUp(p) => {
                if let Some(a) = self.assigned.get_mut(stream) {
                    a.1 = true;
                }
                let id = self.requests.get(stream).map(|r| r.delivery_id);
                if let (Some(r), Some(id)) = (self.riders.get_mut(&p.rider_id), id) {
                    if let Some(leg) = r.route.iter_mut().find(|l| l.delivery_id == id) {
                        leg.picked_up = true;
                    }
                }
            }
            DeliveryEvent::Delivered(_) | DeliveryEvent::Failed(_) => {
                self.open.remove(stream);
                let id = self.requests.remove(stream).map(|r| {
                    self.by_order.remove(&r.order_id);
                    r.delivery_id
                });
                if let (Some((rider, _)), Some(id)) = (self.assigned.remove(stream), id) {
                    if let Some(r) = self.riders.get_mut(&rider) {
                        r.route.retain(|l| l.delivery_id != id);
                    }
                }
            }
        }
    }

    fn release(&mut self, stream: &str, rider: RiderId) {
        self.assigned.remove(stream);
        let Some(req) = self.requests.get(stream) else {
            return;
        };
        if let Some(r) = self.riders.get_mut(&rider) {
            r.route.retain(|l| l.delivery_id != req.delivery_id);
        }
        self.open.insert(
            stream.to_owned(),
            OpenDelivery {
                request: req.clone(),
                offered_to: None,
                offer: None,
                passed_by: vec![rider],
            },
        );
    }

    fn pass(&mut self, stream: &str, rider: RiderId) {
        if let Some(d) = self.open.get_mut(stream) {
            d.offered_to = None;
            d.offer = None;
            d.passed_by.push(rider);
        }
    }
}

impl Projection for Supply {
    fn name(&self) -> &'static str {
        "supply"
    }

    fn version(&self) -> u32 {
        2
    }

    fn apply(&mut self, e: &Envelope) {
        match &e.event {
            Event::Rider(r) => self.apply_rider(&e.stream_id, r, e.occurred_at),
            Event::Delivery(d) => self.apply_delivery(&e.stream_id, d),
            _ => {}
        }
    }
}
