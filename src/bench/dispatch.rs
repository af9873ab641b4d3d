//! `o2ohub bench dispatch`: (1) one dispatcher tick over a synthetic city —
//! 5,000 open deliveries, 2,000 on-shift riders (a third already carrying an
//! order) — timed on one core, for each policy; (2) a simulated hour of the
//! same city under the global policy and under greedy nearest-rider, with
//! total rider distance and on-time rate side by side.

use anyhow::Result;
use chrono::{Duration, TimeZone, Utc};
use o2ohub_events::{
    DeliveryId, DeliveryRequested, LatLng, MerchantId, OrderId, RiderId, VehicleType,
};
use rand::{RngExt as _, SeedableRng};
use serde_json::json;
use std::time::Instant;

use crate::dispatch::plan::{plan, PlanConfig, Policy};
use crate::dispatch::route::RiderRoute;
use crate::dispatch::sim::{self, city_point, Feed, SimConfig};

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct DispatchBench {
    /// Open deliveries in the timed tick.
    pub deliveries: usize,
    /// On-shift riders in the timed tick.
    pub riders: usize,
    /// Ticks timed (the median is reported).
    pub repeats: usize,
    /// The simulated hour's size.
    pub sim: SimConfig,
    /// Skip the simulated hour.
    pub no_sim: bool,
    /// Print JSON.
    pub json: bool,
}

/// Runs the benchmark.
pub fn run(b: &DispatchBench) -> Result<()> {
    if b.deliveries == 0 || b.riders == 0 || b.repeats == 0 {
        anyhow::bail!("--deliveries, --riders and --repeats must be at least 1");
    }
    let now = Utc
        .with_ymd_and_hms(2026, 11, 30, 12, 0, 0)
        .single()
        .expect("valid");
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(b.sim.seed);
    let mut feed = Feed::new();
    let mut riders = Vec::with_capacity(b.riders);
    for n in 0..b.riders {
        let id = RiderId(uuid::Uuid::from_u128(0x7000_0000 + n as u128));
        let vehicle = if n % 3 == 0 {
            VehicleType::Bicycle
        } else {
            VehicleType::Scooter
        };
        feed.rider_on_shift(
            id,
            vehicle,
            3,
            city_point(&mut rng),
            now - Duration::minutes(30),
        );
        riders.push(id);
    }
    let request = |n: usize, rng: &mut rand::rngs::Xoshiro256PlusPlus| {
        let pickup = city_point(rng);
        let drop_off = city_point(rng);
        let drop_off = LatLng::parse(
            pickup.lat + (drop_off.lat - pickup.lat) * 0.2,
            pickup.lng + (drop_off.lng - pickup.lng) * 0.2,
        )
        .unwrap_or(pickup);
        let ready_at = now - Duration::seconds(rng.random_range(0..600));
        DeliveryRequested {
            delivery_id: DeliveryId(uuid::Uuid::from_u128(0xd000_0000 + n as u128)),
            order_id: OrderId(uuid::Uuid::from_u128(n as u128)),
            merchant_id: MerchantId(uuid::Uuid::from_u128(1)),
            pickup,
            drop_off,
            ready_at,
            deadline: ready_at + Duration::minutes(rng.random_range(35..50)),
            load: 1,
        }
    };
    // A third of the riders already carry an accepted order.
    for (n, rider) in riders.iter().enumerate().filter(|(n, _)| n % 3 == 1) {
        let r = request(1_000_000 + n, &mut rng);
        let id = r.delivery_id;
        feed.request(r, now - Duration::minutes(5));
        feed.offer_accepted(
            id,
            *rider,
            now + Duration::minutes(20),
            now - Duration::minutes(4),
        );
    }
    for n in 0..b.deliveries {
        let r = request(n, &mut rng);
        feed.request(r, now);
    }

    let mut results = Vec::new();
    for policy in [Policy::Global, Policy::Greedy] {
        let config = PlanConfig {
            policy,
            ..PlanConfig::default()
        };
        let mut times = Vec::with_capacity(b.repeats);
        let mut last = None;
        for _ in 0..b.repeats {
            let started = Instant::now();
            let tick = plan(&feed.supply, now, &config, |r| RiderRoute::of(r, now));
            times.push(started.elapsed().as_secs_f64() * 1e3);
            last = Some(tick);
        }
        times.sort_by(f64::total_cmp);
        let tick = last.expect("at least one repeat");
        let added_km: f64 = tick.offers.iter().map(|o| o.added_m).sum::<f64>() / 1000.0;
        let row = json!({
            "bench": "dispatch_tick", "policy": policy, "deliveries": b.deliveries,
            "riders": b.riders, "tick_ms": round2(times[times.len() / 2]),
            "tick_ms_max": round2(times[times.len() - 1]), "assigned": tick.offers.len(),
            "available_riders": tick.available, "candidate_pairs": tick.pairs,
            "added_km": round2(added_km),
        });
        if b.json {
            println!("{row}");
        } else {
            println!(
                "tick ({policy:?}): {} deliveries × {} riders → {} offers in {:.1} ms (median of {}, max {:.1} ms); {} candidate pairs; routes grow {:.1} km",
                b.deliveries, b.riders, tick.offers.len(), times[times.len() / 2], b.repeats,
                times[times.len() - 1], tick.pairs, added_km
            );
        }
        results.push(row);
    }

    if !b.no_sim {
        if !b.json {
            println!(
                "simulating {} minutes: {} riders, {} orders, a tick every {} s …",
                b.sim.minutes, b.sim.riders, b.sim.orders, b.sim.tick_s
            );
        }
        let global = sim::run(&b.sim, Policy::Global);
        let greedy = sim::run(&b.sim, Policy::Greedy);
        let saving = 1.0 - global.distance_km / greedy.distance_km.max(1e-9);
        let row = json!({
            "bench": "dispatch_hour", "riders": b.sim.riders, "orders": b.sim.orders,
            "global": global, "greedy": greedy,
            "distance_saving": round4(saving),
            "on_time_delta": round4(global.on_time_rate - greedy.on_time_rate),
        });
        if b.json {
            println!("{row}");
        } else {
            for r in [&global, &greedy] {
                println!(
                    "  {:<7} delivered {}/{}  on time {:>5.1}%  distance {:>8.1} km  mean delivery {:>5.1} min  plan {:.1} ms/tick",
                    format!("{:?}", r.policy).to_lowercase(), r.delivered, r.orders,
                    r.on_time_rate * 100.0, r.distance_km, r.mean_delivery_min, r.mean_plan_ms
                );
            }
            println!(
                "  global rides {:.1}% less than greedy, on-time rate {:+.1} points",
                saving * 100.0,
                (global.on_time_rate - greedy.on_time_rate) * 100.0
            );
        }
    }
    Ok(())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}
