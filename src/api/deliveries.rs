//! The rider's side of dispatch, scoped to the rider in the token: offers
//! pushed over Server-Sent Events, accept or decline, picked up, delivered
//! with the consumer's hand-over code, and the current route with ETAs. Also
//! the delivery status and rider ETA that a consumer sees on their order.
//!
//! The offer stream is the event log itself: each SSE event's id is the
//! global position of the event it comes from, so a client that reconnects
//! with `Last-Event-ID` resumes exactly after the last event it saw —
//! nothing lost, nothing repeated. A fresh connection first gets the
//! rider's open offers, then everything after them.

use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream, StreamExt};
use o2ohub_events::{DeliveryEvent, DeliveryId, Event, OfferId, OrderId, Role};
use o2ohub_projections::supply::{DeliveryStatus, Supply};
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use warp::sse::Event as SseEvent;
use warp::{Filter, Rejection, Reply};

use super::auth::{principal, Principal};
use super::problem::Problem;
use super::request::{context, idempotency_key, json, Body};
use super::{with_state, State};
use crate::command::{self, CommandContext};
use crate::dispatch::route::{RiderRoute, StopKind};
use crate::domain::code::OneTimeCode;
use crate::domain::delivery::{Delivery, DeliveryCommand};
use crate::domain::order::Order;

/// Accept or decline body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The offer answered.
    pub offer_id: OfferId,
    /// Why (decline only; optional).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Pickup body (may be empty: `{}`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PickUp {}

/// Hand-over body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandOver {
    /// The code the consumer shows.
    pub code: String,
    /// A reference to a photo kept outside the log.
    #[serde(default)]
    pub photo_ref: Option<String>,
}

fn reject(p: Problem) -> Rejection {
    warp::reject::custom(p)
}

fn rider(p: &Principal) -> Result<o2ohub_events::RiderId, Rejection> {
    p.require(&[Role::Rider]).map_err(reject)?;
    p.subject_id(o2ohub_events::RiderId::parse).map_err(reject)
}

/// The delivery, which must exist.
async fn delivery(s: &State, id: DeliveryId) -> Result<Delivery, Rejection> {
    let (d, _) = command::load::<Delivery>(s.hub.store.as_ref(), &id.stream())
        .await
        .map_err(|e| reject(e.into()))?;
    if d == Delivery::NotRequested {
        return Err(reject(Problem::not_found("no such delivery")));
    }
    Ok(d)
}

async fn run(
    s: &State,
    id: DeliveryId,
    c: DeliveryCommand,
    ctx: &CommandContext,
) -> Result<(), Rejection> {
    command::execute::<Delivery>(s.hub.store.as_ref(), &id.stream(), &c, ctx)
        .await
        .map(|_| ())
        .map_err(|e| reject(e.into()))
}

fn supply(s: &State) -> std::sync::RwLockReadGuard<'_, o2ohub_projections::Checkpointed<Supply>> {
    s.hub.read.supply.read().unwrap_or_else(|p| p.into_inner())
}

/// A rider's route with ETAs, from the supply read model.
pub fn route_of(supply: &Supply, rider: &o2ohub_events::RiderId, now: DateTime<Utc>) -> Value {
    let Some(on_shift) = supply.rider(rider) else {
        return json!({"rider_id": rider, "on_shift": false, "stops": []});
    };
    let route = RiderRoute::of(on_shift, now);
    let stops: Vec<Value> = route
        .stops
        .iter()
        .zip(route.arrivals())
        .map(|(stop, arrival)| {
            json!({
                "delivery_id": stop.delivery,
                "order_id": supply.request(&stop.delivery).map(|r| r.order_id),
                "kind": stop.kind,
                "location": stop.at,
                "eta": now + chrono::Duration::milliseconds((arrival * 1000.0) as i64),
            })
        })
        .collect();
    json!({
        "rider_id": rider, "on_shift": true, "position": on_shift.position,
        "distance_m": route.schedule.distance_m.round(), "stops": stops,
    })
}

/// The delivery of an order as its consumer sees it: status, rider and
/// drop-off ETA; `null` before the order is ready or after it ended.
pub fn status_of_order(s: &State, order: &OrderId) -> Value {
    let supply = supply(s);
    let supply = &supply.model;
    let Some(id) = supply.delivery_of(order) else {
        return Value::Null;
    };
    let now = crate::clock::now();
    let eta_on = |rider| {
        supply.rider(&rider).and_then(|r| {
            let route = RiderRoute::of(r, now);
            route
                .stops
                .iter()
                .zip(route.arrivals())
                .find(|(st, _)| st.delivery == id && st.kind == StopKind::DropOff)
                .map(|(_, a)| now + chrono::Duration::milliseconds((a * 1000.0) as i64))
        })
    };
    match supply.status(&id) {
        Some(DeliveryStatus::Waiting) => {
            json!({"delivery_id": id, "status": "waiting for a rider"})
        }
        Some(DeliveryStatus::Offered(_)) => json!({"delivery_id": id, "status": "offered"}),
        Some(DeliveryStatus::Assigned(r)) => {
            json!({"delivery_id": id, "status": "rider on the way to the store", "rider_id": r, "eta": eta_on(r)})
        }
        Some(DeliveryStatus::PickedUp(r)) => {
            json!({"delivery_id": id, "status": "on its way to you", "rider_id": r, "eta": eta_on(r)})
        }
        None => Value::Null,
    }
}

/// The data of an `offer` event: the offer and its delivery's request.
fn offer_json(
    supply: &Supply,
    offer_id: OfferId,
    delivery: DeliveryId,
    expires_at: DateTime<Utc>,
    eta: DateTime<Utc>,
) -> Value {
    let r = supply.request(&delivery);
    json!({
        "offer_id": offer_id, "delivery_id": delivery,
        "order_id": r.map(|r| r.order_id),
        "pickup": r.map(|r| r.pickup), "drop_off": r.map(|r| r.drop_off),
        "ready_at": r.map(|r| r.ready_at), "deadline": r.map(|r| r.deadline),
        "expires_at": expires_at, "eta": eta,
    })
}

/// One SSE event for `rider` from a logged event, if it concerns them.
fn offer_event(
    supply: &Supply,
    rider: &o2ohub_events::RiderId,
    position: u64,
    stream: &str,
    event: &DeliveryEvent,
) -> Option<SseEvent> {
    let delivery = stream
        .strip_prefix("delivery-")
        .and_then(|s| DeliveryId::parse(s).ok())?;
    let (name, data) = match event {
        DeliveryEvent::Offered(o) if o.rider_id == *rider => (
            "offer",
            offer_json(supply, o.offer_id, delivery, o.expires_at, o.eta),
        ),
        DeliveryEvent::OfferAccepted(o) if o.rider_id == *rider => (
            "offer_closed",
            json!({"offer_id": o.offer_id, "delivery_id": delivery, "outcome": "accepted"}),
        ),
        DeliveryEvent::OfferDeclined(o) if o.rider_id == *rider => (
            "offer_closed",
            json!({"offer_id": o.offer_id, "delivery_id": delivery, "outcome": "declined"}),
        ),
        DeliveryEvent::OfferExpired(o) if o.rider_id == *rider => (
            "offer_closed",
            json!({"offer_id": o.offer_id, "delivery_id": delivery, "outcome": "expired"}),
        ),
        _ => return None,
    };
    Some(
        SseEvent::default()
            .id(position.to_string())
            .event(name)
            .data(data.to_string()),
    )
}

/// The SSE stream of a rider's offers from log position `from` on, after
/// `first` (the open offers of a fresh connection).
fn offers(
    s: State,
    rider: o2ohub_events::RiderId,
    first: Vec<SseEvent>,
    from: u64,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send {
    let live = stream::unfold(
        None,
        move |sub: Option<Box<dyn crate::store::Subscription>>| {
            let s = s.clone();
            async move {
                let mut sub = match sub {
                    Some(sub) => sub,
                    None => s.hub.store.subscribe_all(from).await.ok()?,
                };
                let batch = match sub.next_batch().await {
                    Ok(batch) => batch,
                    Err(e) => {
                        tracing::warn!(error = %e, "offer stream ended");
                        return None;
                    }
                };
                let events: Vec<SseEvent> = {
                    let supply = supply(&s);
                    batch
                        .iter()
                        .filter(|r| r.stream.starts_with("delivery-"))
                        .filter_map(|r| {
                            let e = r.envelope().ok()?;
                            let Event::Delivery(d) = &e.event else {
                                return None;
                            };
                            offer_event(&supply.model, &rider, r.position, &r.stream, d)
                        })
                        .collect()
                };
                Some((stream::iter(events), Some(sub)))
            }
        },
    )
    .flatten();
    stream::iter(first).chain(live).map(Ok)
}

/// Rider dispatch routes.
pub fn routes() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let stream_offers = warp::path!("v1" / "riders" / "me" / "offers")
        .and(warp::get())
        .and(principal())
        .and(warp::header::optional::<String>("last-event-id"))
        .and(with_state())
        .and_then(|p: Principal, last: Option<String>, s: State| async move {
            let me = rider(&p)?;
            let (first, from) = match last {
                Some(text) => {
                    let seen: u64 = text.trim().parse().map_err(|_| {
                        reject(
                            Problem::bad_request(
                                "Last-Event-ID is the id of an event this stream sent (a number)",
                            )
                            .field("Last-Event-ID"),
                        )
                    })?;
                    (Vec::new(), seen + 1)
                }
                None => {
                    // Open offers as of the boards' position, then the log after it.
                    let boards = s.hub.read.riders.read().unwrap_or_else(|e| e.into_inner());
                    let at = boards.position;
                    let open = boards.model.of(&me).offers;
                    drop(boards);
                    let supply = supply(&s);
                    let first = open
                        .iter()
                        .map(|o| {
                            let data = offer_json(
                                &supply.model,
                                o.offer_id,
                                o.delivery_id,
                                o.expires_at,
                                o.eta,
                            );
                            SseEvent::default()
                                .id(at.to_string())
                                .event("offer")
                                .data(data.to_string())
                        })
                        .collect();
                    (first, at + 1)
                }
            };
            let events = offers(s, me, first, from);
            Ok::<_, Rejection>(warp::sse::reply(warp::sse::keep_alive().stream(events)))
        });
    let route = warp::path!("v1" / "riders" / "me" / "route")
        .and(warp::get())
        .and(principal())
        .and(with_state())
        .and_then(|p: Principal, s: State| async move {
            let me = rider(&p)?;
            let body = route_of(&supply(&s).model, &me, crate::clock::now());
            Ok::<_, Rejection>(warp::reply::json(&body))
        });
    let accept = warp::path!("v1" / "deliveries" / DeliveryId / "accept")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<Answer>())
        .and(with_state())
        .and_then(
            |id: DeliveryId, p: Principal, key, body: Body<Answer>, s: State| async move {
                let me = rider(&p)?;
                delivery(&s, id).await?;
                let ctx = context(
                    &p,
                    key,
                    &format!("POST /v1/deliveries/{id}/accept"),
                    &body.raw,
                );
                let c = DeliveryCommand::Accept {
                    offer_id: body.value.offer_id,
                    rider_id: me,
                };
                run(&s, id, c, &ctx).await?;
                Ok::<_, Rejection>(warp::reply::json(
                    &json!({"delivery_id": id, "status": "assigned", "rider_id": me}),
                ))
            },
        );
    let decline = warp::path!("v1" / "deliveries" / DeliveryId / "decline")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<Answer>())
        .and(with_state())
        .and_then(
            |id: DeliveryId, p: Principal, key, body: Body<Answer>, s: State| async move {
                let me = rider(&p)?;
                delivery(&s, id).await?;
                let ctx = context(
                    &p,
                    key,
                    &format!("POST /v1/deliveries/{id}/decline"),
                    &body.raw,
                );
                let reason = body.value.reason.clone().unwrap_or_default();
                if reason.chars().count() > 500 {
                    return Err(reject(Problem::from(o2ohub_events::ValueError::new(
                        "reason",
                        "a reason is at most 500 characters",
                    ))));
                }
                let c = DeliveryCommand::Decline {
                    offer_id: body.value.offer_id,
                    rider_id: me,
                    reason,
                };
                run(&s, id, c, &ctx).await?;
                Ok::<_, Rejection>(warp::reply::json(
                    &json!({"delivery_id": id, "status": "declined"}),
                ))
            },
        );
    let pickup = warp::path!("v1" / "deliveries" / DeliveryId / "pickup")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<PickUp>())
        .and(with_state())
        .and_then(
            |id: DeliveryId, p: Principal, key, body: Body<PickUp>, s: State| async move {
                let me = rider(&p)?;
                delivery(&s, id).await?;
                let ctx = context(
                    &p,
                    key,
                    &format!("POST /v1/deliveries/{id}/pickup"),
                    &body.raw,
                );
                run(&s, id, DeliveryCommand::PickUp { rider_id: me }, &ctx).await?;
                Ok::<_, Rejection>(warp::reply::json(
                    &json!({"delivery_id": id, "status": "picked up"}),
                ))
            },
        );
    let deliver = warp::path!("v1" / "deliveries" / DeliveryId / "deliver")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<HandOver>())
        .and(with_state())
        .and_then(
            |id: DeliveryId, p: Principal, key, body: Body<HandOver>, s: State| async move {
                let me = rider(&p)?;
                let order = match delivery(&s, id).await? {
                    Delivery::Open(r)
                    | Delivery::Offered(r, _)
                    | Delivery::Assigned(r, _)
                    | Delivery::PickedUp(r, _)
                    | Delivery::Delivered(r, _)
                    | Delivery::Failed(r) => r.order_id,
                    Delivery::NotRequested => {
                        return Err(reject(Problem::not_found("no such delivery")))
                    }
                };
                let code = OneTimeCode::parse(&body.value.code)
                    .map_err(|e| reject(Problem::invalid(&e)))?;
                if body.value.photo_ref.as_ref().is_some_and(|r| r.len() > 200) {
                    return Err(reject(Problem::from(o2ohub_events::ValueError::new(
                        "photo_ref",
                        "a photo reference is at most 200 characters",
                    ))));
                }
                let (o, _) = command::load::<Order>(s.hub.store.as_ref(), &order.stream())
                    .await
                    .map_err(|e| reject(e.into()))?;
                let Order::Placed(o) = o else {
                    return Err(reject(Problem::not_found(
                        "the delivery's order is missing",
                    )));
                };
                let ctx = context(
                    &p,
                    key,
                    &format!("POST /v1/deliveries/{id}/deliver"),
                    &body.raw,
                );
                let c = DeliveryCommand::Deliver {
                    rider_id: me,
                    entered: code.digest(&s.code_key),
                    expected: o.placed.handover_code,
                    photo_ref: body.value.photo_ref.clone(),
                };
                run(&s, id, c, &ctx).await?;
                Ok::<_, Rejection>(warp::reply::json(
                    &json!({"delivery_id": id, "status": "delivered"}),
                ))
            },
        );
    stream_offers
        .or(route)
        .or(accept)
        .or(decline)
        .or(pickup)
        .or(deliver)
}
