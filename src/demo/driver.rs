//! The driver: plays the planned day against a running hub through its HTTP
//! API only. An operator registers the city (merchants, their staff,
//! riders); then every demand becomes a story played at its business time
//! (`journeys`), every rider works their shift (`riders`), and a progress
//! bar follows business time until the day and its closing are over.

use chrono::{DateTime, Duration, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use o2ohub_events::{ConsumerId, MerchantId, RiderId, Role};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;

use super::city::City;
use super::client::Hub;
use super::demand::Day;
use super::{journeys, riders};
use crate::api::auth::{Keys, Principal};
use crate::clock;

/// How long after the day riders stay on to finish deliveries in flight.
pub const CLOSING: Duration = Duration::minutes(60);

/// Live counts for the progress bar (the summary recounts from the log).
#[derive(Default)]
pub struct Tally {
    /// Visits booked.
    pub booked: AtomicU64,
    /// Searches that found no merchant serving the consumer.
    pub no_merchant: AtomicU64,
    /// Visits wanted that found no free slot inside the day.
    pub no_slot: AtomicU64,
    /// Orders placed.
    pub ordered: AtomicU64,
    /// Orders placed and not cancelled, not yet handed over.
    pub awaiting: AtomicI64,
    /// Orders handed over.
    pub delivered: AtomicU64,
    /// Offers accepted by riders.
    pub accepted: AtomicU64,
    /// Offers declined by riders.
    pub declined: AtomicU64,
}

/// A registered merchant as the driver knows it.
pub struct Store {
    /// Its id.
    pub id: MerchantId,
    /// A token of its staff.
    pub staff: String,
}

/// The city as registered with the hub: ids and tokens per actor.
pub struct Town {
    /// The plan.
    pub city: City,
    /// The day being played.
    pub day: Day,
    /// The hub's API.
    pub hub: Hub,
    /// An operator's token.
    pub admin: String,
    /// Merchants, in the plan's order.
    pub stores: Vec<Store>,
    /// Merchant index by id (search answers with ids).
    pub store_index: HashMap<MerchantId, usize>,
    /// Consumer tokens, in the plan's order.
    pub consumers: Vec<String>,
    /// Riders' ids and tokens, in the plan's order.
    pub riders: Vec<(RiderId, String)>,
    /// Hand-over codes by order id: the consumer tells the rider at the door.
    pub codes: Mutex<HashMap<String, String>>,
    /// The payment provider's signing secret (it signs its callbacks).
    pub payment_secret: Vec<u8>,
    /// Live counts.
    pub tally: Tally,
}

/// Lifetime of the tokens the demo mints.
const TOKEN_TTL_S: u64 = 24 * 3600;

fn mint(
    keys: &Keys,
    role: Role,
    subject: String,
    merchant: Option<MerchantId>,
) -> anyhow::Result<String> {
    Ok(keys.mint(
        &Principal {
            role,
            subject,
            merchant,
        },
        TOKEN_TTL_S,
    )?)
}

/// A consumer's id, fixed by the seed so a replayed day names the same people.
pub fn consumer_id(seed: u64, index: usize) -> ConsumerId {
    ConsumerId(uuid::Uuid::from_u64_pair(seed, index as u64 | (0xc0 << 56)))
}

/// Registers the city through the operator's routes; fails if the hub refuses it.
pub async fn register(
    city: City,
    day: Day,
    hub: Hub,
    keys: &Keys,
    payment_secret: Vec<u8>,
) -> anyhow::Result<Town> {
    let seed = city.seed;
    let admin = mint(keys, Role::Admin, "demo-operator".into(), None)?;
    let mut stores = Vec::with_capacity(city.merchants.len());
    for (i, m) in city.merchants.iter().enumerate() {
        let body = serde_json::to_value(&m.profile)?;
        let r = hub
            .post(
                "/v1/merchants",
                &admin,
                &body,
                &format!("demo-{seed}-merchant-{i}"),
            )
            .await
            .filter(|r| r.ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the hub refused merchant {i}: {:?}",
                    hub.errors.kinds().first()
                )
            })?;
        let id: MerchantId = r
            .text("merchant_id")
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no merchant_id in {}", r.body))?;
        let r = hub
            .post(
                &format!("/v1/merchants/{id}/staff"),
                &admin,
                &json!({}),
                &format!("demo-{seed}-staff-{i}"),
            )
            .await
            .filter(|r| r.ok())
            .ok_or_else(|| anyhow::anyhow!("the hub refused staff of merchant {i}"))?;
        let staff_id = r
            .text("staff_id")
            .ok_or_else(|| anyhow::anyhow!("no staff_id in {}", r.body))?;
        stores.push(Store {
            id,
            staff: mint(keys, Role::Staff, staff_id, Some(id))?,
        });
    }
    let mut riders = Vec::with_capacity(city.riders.len());
    for (i, r) in city.riders.iter().enumerate() {
        let body = json!({"name": r.name, "vehicle": r.vehicle, "capacity": r.capacity});
        let reply = hub
            .post(
                "/v1/riders",
                &admin,
                &body,
                &format!("demo-{seed}-rider-{i}"),
            )
            .await
            .filter(|r| r.ok())
            .ok_or_else(|| anyhow::anyhow!("the hub refused rider {i}"))?;
        let id: RiderId = reply
            .text("rider_id")
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no rider_id in {}", reply.body))?;
        riders.push((id, mint(keys, Role::Rider, id.to_string(), None)?));
    }
    let consumers = (0..city.consumers.len())
        .map(|i| mint(keys, Role::Consumer, consumer_id(seed, i).to_string(), None))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let store_index = stores.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    Ok(Town {
        city,
        day,
        hub,
        admin,
        stores,
        store_index,
        consumers,
        riders,
        codes: Mutex::new(HashMap::new()),
        payment_secret,
        tally: Tally::default(),
    })
}

/// Sleeps until business time `at`.
pub async fn until(at: DateTime<Utc>) {
    let wait = clock::until(at);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

/// Plays the day: every story and every shift, with a progress bar over
/// business time. Returns when all of them are over. Stops early with an
/// error if most requests fail (the hub is not answering as it should).
pub async fn play(town: Arc<Town>, progress: bool) -> anyhow::Result<()> {
    let (start, end) = (town.day.start, town.day.end);
    let closing_end = end + CLOSING;
    let bar = if progress {
        ProgressBar::new((closing_end - start).num_minutes().max(1) as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(ProgressStyle::with_template("{prefix} [{bar:30}] {msg}")?.progress_chars("=> "));
    let mut stories = JoinSet::new();
    for (i, _) in town.day.demands.iter().enumerate() {
        stories.spawn(journeys::play(town.clone(), i));
    }
    let mut shifts = JoinSet::new();
    for i in 0..town.riders.len() {
        shifts.spawn(riders::work(town.clone(), i));
    }
    let t = &town.tally;
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            Some(_) = stories.join_next() => continue,
            Some(_) = shifts.join_next() => continue,
            else => break,
        }
        if stories.is_empty() && shifts.is_empty() {
            break;
        }
        let now = clock::now();
        let (minute, _) = super::demand::local_minute(now);
        bar.set_prefix(format!(
            "{:02}:{:02}{}",
            minute / 60,
            minute % 60,
            if now >= end { " closing" } else { "" }
        ));
        bar.set_position((now - start).num_minutes().max(0) as u64);
        bar.set_message(format!(
            "visits {} · orders {} · delivered {} · offers {}/{} · errors {}",
            t.booked.load(Ordering::Relaxed),
            t.ordered.load(Ordering::Relaxed),
            t.delivered.load(Ordering::Relaxed),
            t.accepted.load(Ordering::Relaxed),
            t.accepted.load(Ordering::Relaxed) + t.declined.load(Ordering::Relaxed),
            town.hub.errors.failed.load(Ordering::Relaxed),
        ));
        if town.hub.errors.systematic() {
            stories.abort_all();
            shifts.abort_all();
            bar.abandon();
            let top = town.hub.errors.kinds();
            anyhow::bail!(
                "most requests to the hub fail; stopping the day. Most frequent: {}",
                top.first()
                    .map_or("?".into(), |(k, n)| format!("{k} ({n}×)"))
            );
        }
    }
    bar.finish_and_clear();
    Ok(())
}
