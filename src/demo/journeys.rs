//! Consumers' stories, each played at its business time through the API:
//!
//! - a **visit**: search the category near home with a free slot, read the
//!   merchant's slots, book one (another if it filled meanwhile); then, as
//!   planned, cancel before the slot, or not come (staff mark a no-show), or
//!   come (staff redeem the code, then complete the visit);
//! - a **delivery**: search food near home, order from its menu, the payment
//!   provider's signed callback pays, and the store accepts with a ready time
//!   and marks the order ready, which puts the delivery in the dispatch pool;
//!   sometimes the consumer cancels first. Riders take it from there.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use o2ohub_events::{Category, MerchantId};
use rand::{RngExt, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::city::{Rng, CURRENCY};
use super::demand::{Fate, Want};
use super::driver::{until, Town};
use crate::clock;

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Plays demand number `index` of the day.
pub async fn play(town: Arc<Town>, index: usize) {
    let demand = &town.day.demands[index];
    until(demand.at).await;
    let mut rng = Rng::seed_from_u64(demand.seed);
    match &demand.want {
        Want::Visit {
            category,
            lead_minutes,
            fate,
        } => visit(&town, index, *category, *lead_minutes, *fate, &mut rng).await,
        Want::Delivery { lines, cancels } => {
            delivery(&town, index, lines, *cancels, &mut rng).await
        }
    }
}

/// Nearby merchants of `category` (open at `at`, with a free slot in the
/// window when one is given), nearest first.
async fn search(
    town: &Town,
    token: &str,
    consumer: usize,
    category: Category,
    at: DateTime<Utc>,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Vec<MerchantId> {
    let home = town.city.consumers[consumer].home;
    let mut path = format!(
        "/v1/merchants/search?category={}&lat={}&lng={}&at={}&k=5",
        category.as_str(),
        home.lat,
        home.lng,
        stamp(at)
    );
    if let Some((from, to)) = window {
        path.push_str(&format!("&from={}&to={}", stamp(from), stamp(to)));
    }
    let Some(reply) = town.hub.get(&path, token).await.filter(|r| r.ok()) else {
        return Vec::new();
    };
    reply.body["merchants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["merchant_id"].as_str()?.parse().ok())
        .collect()
}

/// Picks one of the first results, the nearest most often.
fn pick<T: Copy>(rng: &mut Rng, hits: &[T]) -> Option<T> {
    if hits.is_empty() {
        return None;
    }
    let weights: Vec<f64> = (0..hits.len()).map(|i| 1.0 / (i as f64 + 1.0)).collect();
    Some(hits[super::city::weighted(rng, &weights)])
}

async fn visit(
    town: &Town,
    index: usize,
    category: Category,
    lead: u32,
    fate: Fate,
    rng: &mut Rng,
) {
    let demand = &town.day.demands[index];
    let token = &town.consumers[demand.consumer];
    let from = demand.at + Duration::minutes(i64::from(lead));
    let to = (from + Duration::hours(2)).min(town.day.end);
    if from >= to {
        town.tally.no_slot.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let hits = search(
        town,
        token,
        demand.consumer,
        category,
        from,
        Some((from, to)),
    )
    .await;
    let Some(merchant) = pick(rng, &hits) else {
        town.tally.no_merchant.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let Some(&store) = town.store_index.get(&merchant) else {
        return;
    };
    // A service that can end before the day does.
    let left = (town.day.end - from).num_minutes();
    let services: Vec<_> = town.city.merchants[store]
        .profile
        .services
        .iter()
        .filter(|s| i64::from(s.duration_minutes) <= left)
        .collect();
    if services.is_empty() {
        town.tally.no_slot.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let service = services[rng.random_range(0..services.len())];
    let slots_path = format!(
        "/v1/merchants/{merchant}/slots?service_id={}&from={}&to={}",
        service.service_id,
        stamp(from),
        stamp(to)
    );
    let Some(reply) = town.hub.get(&slots_path, token).await.filter(|r| r.ok()) else {
        return;
    };
    // Slots that end before the day does, so every visit settles within it.
    let duration = Duration::minutes(i64::from(service.duration_minutes));
    let slots: Vec<DateTime<Utc>> = reply.body["slots"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["slot_start"].as_str()?.parse().ok())
        .filter(|s: &DateTime<Utc>| *s + duration <= town.day.end)
        .collect();
    let mut booked = None;
    // A slot may fill between reading and booking: try up to three.
    for attempt in 0..3 {
        let Some(slot) = pick(rng, &slots) else { break };
        let body = json!({"merchant_id": merchant, "service_id": service.service_id, "slot_start": stamp(slot)});
        let key = format!("demo-{}-visit-{index}-{attempt}", town.city.seed);
        let Some(r) = town
            .hub
            .call(
                Method::POST,
                "/v1/visits",
                token,
                Some(&body),
                Some(&key),
                &[StatusCode::CONFLICT],
            )
            .await
        else {
            return;
        };
        if r.ok() {
            booked = Some((slot, r.text("visit_id"), r.text("redemption_code")));
            break;
        }
    }
    let Some((slot, Some(visit_id), Some(code))) = booked else {
        town.tally.no_slot.fetch_add(1, Ordering::Relaxed);
        return;
    };
    town.tally.booked.fetch_add(1, Ordering::Relaxed);
    let staff = &town.stores[store].staff;
    let seed = town.city.seed;
    match fate {
        Fate::Cancelled => {
            let now = clock::now();
            let span = (slot - Duration::minutes(5) - now).num_seconds().max(1);
            until(now + Duration::seconds(rng.random_range(0..span))).await;
            let body = json!({"reason": "plans changed"});
            town.hub
                .post(
                    &format!("/v1/visits/{visit_id}/cancel"),
                    token,
                    &body,
                    &format!("demo-{seed}-cancel-{visit_id}"),
                )
                .await;
        }
        Fate::NoShow => {
            until(slot + Duration::minutes(10)).await;
            town.hub
                .call(
                    Method::POST,
                    &format!("/v1/visits/{visit_id}/no-show"),
                    staff,
                    None,
                    Some(&format!("demo-{seed}-noshow-{visit_id}")),
                    &[],
                )
                .await;
        }
        Fate::Redeemed => {
            until(slot - Duration::minutes(rng.random_range(0..10))).await;
            let body = json!({"code": code});
            let redeemed = town
                .hub
                .post(
                    &format!("/v1/visits/{visit_id}/redeem"),
                    staff,
                    &body,
                    &format!("demo-{seed}-redeem-{visit_id}"),
                )
                .await
                .is_some_and(|r| r.ok());
            if redeemed {
                until(slot + duration).await;
                town.hub
                    .call(
                        Method::POST,
                        &format!("/v1/visits/{visit_id}/complete"),
                        staff,
                        None,
                        Some(&format!("demo-{seed}-complete-{visit_id}")),
                        &[],
                    )
                    .await;
            }
        }
    }
}

async fn delivery(town: &Town, index: usize, lines: &[(usize, u32)], cancels: bool, rng: &mut Rng) {
    let demand = &town.day.demands[index];
    let consumer = &town.city.consumers[demand.consumer];
    let token = &town.consumers[demand.consumer];
    let seed = town.city.seed;
    let hits = search(
        town,
        token,
        demand.consumer,
        Category::FoodDelivery,
        demand.at,
        None,
    )
    .await;
    let Some(&store) = pick(rng, &hits).and_then(|m| town.store_index.get(&m)) else {
        town.tally.no_merchant.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let menu = &town.city.merchants[store].menu;
    let merchant = town.stores[store].id;
    let mut order_lines: Vec<Value> = Vec::new();
    for (item, quantity) in lines {
        let m = &menu[item % menu.len()];
        order_lines.push(json!({"sku": m.sku, "quantity": quantity, "unit_price": {"minor": m.price_minor, "currency": CURRENCY}}));
    }
    let body = json!({
        "merchant_id": merchant, "lines": order_lines, "drop_off": consumer.home,
        "contact": {"name": consumer.name, "phone": consumer.phone, "address": consumer.address},
    });
    let Some(placed) = town
        .hub
        .post(
            "/v1/orders",
            token,
            &body,
            &format!("demo-{seed}-order-{index}"),
        )
        .await
        .filter(|r| r.ok())
    else {
        return;
    };
    let (Some(order_id), Some(code)) = (placed.text("order_id"), placed.text("handover_code"))
    else {
        return;
    };
    town.tally.ordered.fetch_add(1, Ordering::Relaxed);
    town.tally.awaiting.fetch_add(1, Ordering::Relaxed);
    town.codes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(order_id.clone(), code);
    if !pay(town, &order_id, &placed.body["total"]).await {
        return;
    }
    if cancels {
        until(clock::now() + Duration::seconds(rng.random_range(20..90))).await;
        let cancelled = town
            .hub
            .post(
                &format!("/v1/orders/{order_id}/cancel"),
                token,
                &json!({"reason": "ordered by mistake"}),
                &format!("demo-{seed}-cancel-{order_id}"),
            )
            .await
            .is_some_and(|r| r.ok());
        if cancelled {
            town.tally.awaiting.fetch_sub(1, Ordering::Relaxed);
        }
        return;
    }
    // The store sees the order and says when it will be ready.
    until(clock::now() + Duration::seconds(rng.random_range(60..240))).await;
    let staff = &town.stores[store].staff;
    let (lo, hi) = town.city.merchants[store].prep_minutes;
    let ready_by = clock::now() + Duration::minutes(i64::from(rng.random_range(lo..=hi)));
    let accepted = town
        .hub
        .post(
            &format!("/v1/orders/{order_id}/accept"),
            staff,
            &json!({"ready_by": stamp(ready_by)}),
            &format!("demo-{seed}-accept-{order_id}"),
        )
        .await
        .is_some_and(|r| r.ok());
    if !accepted {
        return;
    }
    until(ready_by).await;
    town.hub
        .call(
            Method::POST,
            &format!("/v1/orders/{order_id}/ready"),
            staff,
            None,
            Some(&format!("demo-{seed}-ready-{order_id}")),
            &[],
        )
        .await;
}

/// The payment provider's callback for an order: signed over `t.body` with
/// the provider's secret, at the wall-clock time the signature window checks.
async fn pay(town: &Town, order_id: &str, total: &Value) -> bool {
    let body =
        json!({"order_id": order_id, "payment_ref": format!("psp-{order_id}"), "amount": total});
    let raw = body.to_string();
    let signature =
        crate::api::payments::sign(&town.payment_secret, Utc::now().timestamp(), raw.as_bytes());
    let url = format!("{}/v1/payments/webhook", town.hub.base());
    let req = town
        .hub
        .http()
        .post(url)
        .header("o2o-signature", signature)
        .header("content-type", "application/json")
        .body(raw);
    town.hub.send("POST /v1/payments/webhook", req).await
}
