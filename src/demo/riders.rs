//! Riders' shifts, through the rider routes of the API: start the shift at
//! home, listen for offers (Server-Sent Events, with the board as a
//! fallback), accept or sometimes decline them, move along the route at the
//! vehicle's speed reporting positions, pick up at the store and deliver
//! with the consumer's hand-over code; end the shift when it is over and
//! the route is empty (riders on at closing time finish what they carry).

use o2ohub_events::{LatLng, VehicleType};
use rand::{RngExt, SeedableRng};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::city::{offset, Rng};
use super::driver::{until, Town, CLOSING};
use crate::clock;

/// Wall time between two looks at the board (and position reports).
const TICK: Duration = Duration::from_millis(150);
/// Close enough to a stop to be there, metres.
const ARRIVED_M: f64 = 25.0;
/// Streets are not straight: a route is this much longer than the crow flies.
const DETOUR: f64 = 1.3;

/// Cruising speed in metres per second.
pub fn speed_mps(vehicle: VehicleType) -> f64 {
    match vehicle {
        VehicleType::Foot => 1.4,
        VehicleType::Bicycle => 4.2,
        VehicleType::Scooter => 7.0,
        VehicleType::Car => 6.0,
    }
}

/// An offer as the board and the offer stream show it.
#[derive(Debug, Clone, Deserialize)]
struct Offer {
    offer_id: String,
    delivery_id: String,
}

/// A leg of the rider's route.
#[derive(Debug, Clone, Deserialize)]
struct Leg {
    delivery_id: String,
    order_id: String,
    pickup: LatLng,
    drop_off: LatLng,
    status: String,
}

/// The rider's board.
#[derive(Debug, Clone, Default, Deserialize)]
struct Board {
    #[serde(default)]
    offers: Vec<Offer>,
    #[serde(default)]
    route: Vec<Leg>,
}

/// What one rider's two tasks (the offer stream and the shift) share.
struct Rider {
    /// Index in the plan.
    index: usize,
    /// Bearer token.
    token: String,
    /// Offers already answered (the stream and the board both show them).
    answered: Mutex<HashSet<String>>,
    /// Accept-or-decline draws.
    rng: Mutex<Rng>,
    /// Deliveries on the route as last seen, to refuse offers beyond capacity.
    carrying: std::sync::atomic::AtomicUsize,
}

impl Rider {
    async fn answer(&self, town: &Town, offer: &Offer) {
        if !self
            .answered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(offer.offer_id.clone())
        {
            return;
        }
        let plan = &town.city.riders[self.index];
        let declines = self
            .rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .random_bool(plan.decline_rate)
            || self.carrying.load(Ordering::Relaxed) >= plan.capacity as usize;
        let verb = if declines { "decline" } else { "accept" };
        let path = format!("/v1/deliveries/{}/{verb}", offer.delivery_id);
        let key = format!("demo-{}-{verb}-{}", town.city.seed, offer.offer_id);
        // An offer may lapse or be withdrawn before the answer arrives: that is an answer too.
        let lapsed = [
            StatusCode::CONFLICT,
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::GONE,
        ];
        let body = json!({"offer_id": offer.offer_id});
        let reply = town
            .hub
            .call(
                Method::POST,
                &path,
                &self.token,
                Some(&body),
                Some(&key),
                &lapsed,
            )
            .await;
        if reply.is_some_and(|r| r.ok()) {
            let counter = if declines {
                &town.tally.declined
            } else {
                &town.tally.accepted
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Reads the offer stream (`GET /v1/riders/me/offers`, Server-Sent Events)
/// and answers each offer as it arrives; reconnects with `Last-Event-ID`.
/// Returns at once if the hub has no such stream.
async fn listen(town: Arc<Town>, rider: Arc<Rider>) {
    let url = format!("{}/v1/riders/me/offers", town.hub.base());
    let mut last_id: Option<String> = None;
    loop {
        let mut req = town
            .hub
            .http()
            .get(&url)
            .bearer_auth(&rider.token)
            .header("accept", "text/event-stream")
            .timeout(Duration::from_secs(24 * 3600));
        if let Some(id) = &last_id {
            req = req.header("last-event-id", id);
        }
        let mut resp = match req.send().await {
            Ok(r) if r.status() == StatusCode::NOT_FOUND => return,
            Ok(r) if r.status().is_success() => r,
            _ => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                let (mut kind, mut data) = ("message", String::new());
                for line in event.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        kind = if v.trim() == "offer" {
                            "offer"
                        } else {
                            "other"
                        };
                    } else if let Some(v) = line.strip_prefix("id:") {
                        last_id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if kind == "offer" {
                    if let Ok(offer) = serde_json::from_str::<Offer>(&data) {
                        rider.answer(&town, &offer).await;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Works rider `index`'s shift, clipped to the day.
pub async fn work(town: Arc<Town>, index: usize) {
    let plan = &town.city.riders[index];
    let day = &town.day;
    let local_midnight =
        day.start - chrono::Duration::minutes(i64::from(super::demand::local_minute(day.start).0));
    let at = |minute: u32| local_midnight + chrono::Duration::minutes(i64::from(minute));
    let start = at(plan.shift.start).max(day.start);
    let end = at(plan.shift.end).min(day.end);
    if start >= end {
        return;
    }
    // Riders on at closing time stay until what was ordered is delivered.
    let stays_for_closing = end == day.end;
    until(start).await;
    let (_, token) = &town.riders[index];
    let rider = Arc::new(Rider {
        index,
        token: token.clone(),
        answered: Mutex::new(HashSet::new()),
        rng: Mutex::new(Rng::seed_from_u64(town.city.seed ^ ((index as u64) << 20))),
        carrying: Default::default(),
    });
    let seed = town.city.seed;
    let started = town
        .hub
        .post(
            "/v1/riders/me/shift/start",
            token,
            &json!({"position": plan.home}),
            &format!("demo-{seed}-shift-{index}"),
        )
        .await
        .is_some_and(|r| r.ok());
    if !started {
        return;
    }
    let listener = tokio::spawn(listen(town.clone(), rider.clone()));
    let mut position = plan.home;
    let mut last = clock::now();
    let mut ticker = tokio::time::interval(TICK);
    loop {
        ticker.tick().await;
        let now = clock::now();
        let board: Board = match town.hub.get("/v1/riders/me/board", token).await {
            Some(r) if r.ok() => serde_json::from_value(r.body).unwrap_or_default(),
            _ => Board::default(),
        };
        rider.carrying.store(board.route.len(), Ordering::Relaxed);
        for offer in &board.offers {
            rider.answer(&town, offer).await;
        }
        let elapsed = (now - last).num_milliseconds().max(0) as f64 / 1000.0;
        last = now;
        position = step(&town, &rider, &board, position, elapsed).await;
        let fix = json!({"fixes": [{"position": position, "at": now}]});
        town.hub
            .post_unkeyed("/v1/riders/me/positions", token, &fix)
            .await;
        let over = now >= end
            && board.route.is_empty()
            && (!stays_for_closing || town.tally.awaiting.load(Ordering::Relaxed) <= 0);
        if over || now >= day.end + CLOSING {
            break;
        }
    }
    listener.abort();
    town.hub
        .call(
            Method::POST,
            "/v1/riders/me/shift/end",
            token,
            None,
            Some(&format!("demo-{seed}-shift-end-{index}")),
            &[],
        )
        .await;
}

/// Moves toward the nearest stop of the route for `elapsed` business
/// seconds; at a store picks up, at a door delivers. Returns the new position.
async fn step(town: &Town, rider: &Rider, board: &Board, from: LatLng, elapsed: f64) -> LatLng {
    let stops = board.route.iter().map(|leg| {
        if leg.status == "to_pickup" {
            (leg, leg.pickup, true)
        } else {
            (leg, leg.drop_off, false)
        }
    });
    let Some((leg, target, pickup)) =
        stops.min_by(|a, b| from.distance_m(&a.1).total_cmp(&from.distance_m(&b.1)))
    else {
        return from;
    };
    let plan = &town.city.riders[rider.index];
    let reach = speed_mps(plan.vehicle) / DETOUR * elapsed;
    let distance = from.distance_m(&target);
    if distance > ARRIVED_M && distance > reach {
        let f = reach / distance;
        // Small steps: a flat-earth interpolation is exact enough.
        let east = (target.lng - from.lng) * 111_320.0 * from.lat.to_radians().cos();
        let north = (target.lat - from.lat) * 111_320.0;
        return offset(from, east * f, north * f);
    }
    let seed = town.city.seed;
    if pickup {
        town.hub
            .post(
                &format!("/v1/deliveries/{}/pickup", leg.delivery_id),
                &rider.token,
                &json!({}),
                &format!("demo-{seed}-pickup-{}", leg.delivery_id),
            )
            .await;
    } else {
        let code = town
            .codes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&leg.order_id)
            .cloned();
        let Some(code) = code else {
            town.hub.errors.note(format!(
                "no hand-over code known for order {}",
                leg.order_id
            ));
            return target;
        };
        let delivered = town
            .hub
            .post(
                &format!("/v1/deliveries/{}/deliver", leg.delivery_id),
                &rider.token,
                &json!({"code": code}),
                &format!("demo-{seed}-deliver-{}", leg.delivery_id),
            )
            .await
            .is_some_and(|r| r.ok());
        if delivered {
            town.tally.delivered.fetch_add(1, Ordering::Relaxed);
            town.tally.awaiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
    target
}
