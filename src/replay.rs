//! `o2ohub replay --policy greedy|global`: what-if dispatch on a recorded
//! day. Reads the riders (vehicle, capacity, where their first shift began)
//! and every delivery request (store, consumer, ready time, promise) from the
//! log, plays that demand in the dispatch simulation under the chosen policy
//! and under the other, and prints them next to what the log says happened.
//!
//! The simulation keeps every rider on shift from the first request and has
//! them accept every offer, so its columns compare policies with each other
//! on equal terms; the recorded column is the day as it went.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use o2ohub_events::{DeliveryEvent, DeliveryRequested, Event, RiderEvent, RiderId, VehicleType};
use std::collections::HashMap;
use std::path::Path;

use crate::dispatch::sim::{play, Day, DayRider, SimReport};
use crate::dispatch::Policy;
use crate::store::embedded::EmbeddedStore;
use crate::store::EventStore;

/// What the log says happened to deliveries.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Recorded {
    /// Deliveries requested.
    pub orders: usize,
    /// Handed over.
    pub delivered: usize,
    /// Share of requests handed over by their deadline.
    pub on_time_rate: f64,
    /// Mean minutes from ready to handed over.
    pub mean_delivery_min: f64,
}

/// Reads a recorded day from a store.
pub async fn recorded_day(store: &dyn EventStore, tick_s: i64) -> Result<(Day, Recorded)> {
    let mut registered: HashMap<RiderId, (VehicleType, u32)> = HashMap::new();
    let mut first_shift: HashMap<RiderId, o2ohub_events::LatLng> = HashMap::new();
    let mut requests: HashMap<String, DeliveryRequested> = HashMap::new();
    let mut delivered_at: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut from = 1;
    loop {
        let batch = store.read_all(from, 4096).await?;
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        for r in &batch {
            let e = r
                .decode()
                .with_context(|| format!("event at position {} cannot be read", r.position))?;
            match &e.event {
                Event::Rider(RiderEvent::Registered(x)) => {
                    registered.insert(x.rider_id, (x.vehicle, x.capacity));
                }
                Event::Rider(RiderEvent::ShiftStarted(x)) => {
                    if let Some(id) = e
                        .stream_id
                        .strip_prefix("rider-")
                        .and_then(|s| RiderId::parse(s).ok())
                    {
                        first_shift.entry(id).or_insert(x.position);
                    }
                }
                Event::Delivery(DeliveryEvent::Requested(x)) => {
                    requests.insert(e.stream_id.clone(), x.clone());
                }
                Event::Delivery(DeliveryEvent::Delivered(_)) => {
                    delivered_at.insert(e.stream_id.clone(), e.occurred_at);
                }
                _ => {}
            }
        }
    }
    let mut demand: Vec<DeliveryRequested> = requests.values().cloned().collect();
    demand.sort_by_key(|d| (d.ready_at, d.delivery_id));
    let Some(start) = demand.first().map(|d| d.ready_at) else {
        anyhow::bail!(
            "the log holds no delivery requests: nothing to replay (run `o2ohub demo` first)"
        );
    };
    let mut riders: Vec<DayRider> = first_shift
        .iter()
        .map(|(id, at)| {
            let (vehicle, capacity) = registered
                .get(id)
                .copied()
                .unwrap_or((VehicleType::Bicycle, 1));
            DayRider {
                id: *id,
                vehicle,
                capacity,
                at: *at,
            }
        })
        .collect();
    riders.sort_by_key(|r| r.id);
    if riders.is_empty() {
        anyhow::bail!("the log holds no rider shifts: nothing to dispatch to");
    }
    let times: Vec<(f64, bool)> = requests
        .iter()
        .filter_map(|(stream, r)| {
            delivered_at.get(stream).map(|t| {
                (
                    (*t - r.ready_at).num_seconds() as f64 / 60.0,
                    *t <= r.deadline,
                )
            })
        })
        .collect();
    let recorded = Recorded {
        orders: demand.len(),
        delivered: times.len(),
        on_time_rate: times.iter().filter(|(_, ok)| *ok).count() as f64 / demand.len() as f64,
        mean_delivery_min: times.iter().map(|(m, _)| m).sum::<f64>() / times.len().max(1) as f64,
    };
    Ok((
        Day {
            start,
            riders,
            demand,
            tick_s,
        },
        recorded,
    ))
}

/// Runs `o2ohub replay`.
pub async fn run(data_dir: &Path, policy: Policy, json: bool) -> Result<()> {
    let store = EmbeddedStore::open(data_dir).with_context(|| {
        format!(
            "cannot open the store in {} (is a hub running on it? stop it first)",
            data_dir.display()
        )
    })?;
    let (day, recorded) = recorded_day(&store, 10).await?;
    store.shutdown().await;
    let other = match policy {
        Policy::Global => Policy::Greedy,
        Policy::Greedy => Policy::Global,
    };
    let (chosen, compared) = tokio::task::spawn_blocking({
        let day = day.clone();
        move || (play(&day, policy), play(&day, other))
    })
    .await?;
    if json {
        println!(
            "{}",
            serde_json::json!({"riders": day.riders.len(), "recorded": recorded, "replayed": chosen, "compared": compared})
        );
        return Ok(());
    }
    println!(
        "replaying {} deliveries with {} riders from {}",
        day.demand.len(),
        day.riders.len(),
        data_dir.display()
    );
    let col = |r: &SimReport| format!("{:?}", r.policy).to_lowercase();
    println!(
        "{:<22} {:>12} {:>12} {:>12}",
        "",
        "recorded",
        format!("{} (sim)", col(&chosen)),
        format!("{} (sim)", col(&compared))
    );
    println!(
        "{:<22} {:>12} {:>12} {:>12}",
        "delivered",
        format!("{}/{}", recorded.delivered, recorded.orders),
        format!("{}/{}", chosen.delivered, chosen.orders),
        format!("{}/{}", compared.delivered, compared.orders)
    );
    println!(
        "{:<22} {:>11.1}% {:>11.1}% {:>11.1}%",
        "on time",
        recorded.on_time_rate * 100.0,
        chosen.on_time_rate * 100.0,
        compared.on_time_rate * 100.0
    );
    println!(
        "{:<22} {:>12.1} {:>12.1} {:>12.1}",
        "ready → door (min)",
        recorded.mean_delivery_min,
        chosen.mean_delivery_min,
        compared.mean_delivery_min
    );
    println!(
        "{:<22} {:>12} {:>12.1} {:>12.1}",
        "rider distance (km)", "—", chosen.distance_km, compared.distance_km
    );
    Ok(())
}
