//! The real-time dispatcher: every tick it reads open deliveries and
//! on-shift riders from the supply read model, decides who is offered what
//! ([`plan`]), and records each decision as an event through the `Delivery`
//! aggregate — offers with an expiry, expired offers, deliveries released by
//! riders who went off shift before pickup. Every decision is an event, so a
//! recorded day can be replayed.
//!
//! - [`travel`]: riding distance and time per vehicle type.
//! - [`route`]: a rider's route in its best order, and the cheapest feasible
//!   insertion of one more delivery.
//! - [`assign`]: the min-cost matching (auction algorithm) on the sparse
//!   candidate graph.
//! - [`plan`]: one tick's decisions, a pure function of the read model.
//! - [`sim`]: a simulated hour of riders and orders, to compare policies.
//!
//! One dispatcher runs per hub (it is the only writer of offers; two would
//! offer the same rider twice). Declined and expired offers return to the
//! pool and are planned again next tick, never to the same rider.

pub mod assign;
pub mod plan;
pub mod route;
pub mod sim;
pub mod travel;

use chrono::{DateTime, Utc};
use o2ohub_events::{Actor, DeliveryId, DeliveryOffered, OfferId};
use o2ohub_projections::supply::Supply;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

use crate::command::{self, CommandContext, CommandError};
use crate::domain::delivery::{Delivery, DeliveryCommand};
use crate::runner::Shared;
use crate::store::EventStore;
pub use plan::{PlanConfig, Policy};

/// How the dispatcher runs.
#[derive(Debug, Clone, Copy)]
pub struct DispatchConfig {
    /// Whether this process dispatches (`O2OHUB_DISPATCHER=off` on API
    /// replicas: exactly one process per hub may).
    pub active: bool,
    /// Wall-clock time between ticks.
    pub tick: Duration,
    /// Business time a rider has to answer an offer.
    pub offer_ttl: chrono::Duration,
    /// The planner's knobs.
    pub plan: PlanConfig,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            active: true,
            tick: Duration::from_secs(2),
            offer_ttl: chrono::Duration::seconds(45),
            plan: PlanConfig::default(),
        }
    }
}

impl DispatchConfig {
    /// Defaults overridden by `O2OHUB_DISPATCHER` (`active`|`off`),
    /// `O2OHUB_DISPATCH_TICK_MS`,
    /// `O2OHUB_OFFER_TTL_S` and `O2OHUB_DISPATCH_POLICY` (`global`|`greedy`).
    pub fn from_env() -> anyhow::Result<DispatchConfig> {
        let mut c = DispatchConfig::default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(v) = var("O2OHUB_DISPATCHER") {
            c.active = match v.as_str() {
                "active" | "on" => true,
                "off" => false,
                _ => anyhow::bail!("O2OHUB_DISPATCHER is `active` or `off`, got `{v}`"),
            };
        }
        if let Some(v) = var("O2OHUB_DISPATCH_TICK_MS") {
            let ms: u64 = v.parse().ok().filter(|ms| *ms > 0).ok_or_else(|| {
                anyhow::anyhow!(
                    "O2OHUB_DISPATCH_TICK_MS must be a positive number of milliseconds, got `{v}`"
                )
            })?;
            c.tick = Duration::from_millis(ms);
        }
        if let Some(v) = var("O2OHUB_OFFER_TTL_S") {
            let s: i64 = v.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                anyhow::anyhow!(
                    "O2OHUB_OFFER_TTL_S must be a positive number of seconds, got `{v}`"
                )
            })?;
            c.offer_ttl = chrono::Duration::seconds(s);
        }
        if let Some(v) = var("O2OHUB_DISPATCH_POLICY") {
            c.plan.policy = match v.as_str() {
                "global" => Policy::Global,
                "greedy" => Policy::Greedy,
                _ => anyhow::bail!("O2OHUB_DISPATCH_POLICY is `global` or `greedy`, got `{v}`"),
            };
        }
        Ok(c)
    }
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickReport {
    /// Offers made.
    pub offered: usize,
    /// Offers that lapsed unanswered.
    pub expired: usize,
    /// Deliveries released by riders who went off shift.
    pub released: usize,
    /// Deliveries waiting without an offer before the tick.
    pub open: usize,
    /// Riders able to take one more.
    pub available: usize,
    /// Time spent planning.
    pub plan_ms: f64,
}

/// Runs one tick at business time `now`.
pub async fn tick(
    store: &Arc<dyn EventStore>,
    supply: &Shared<Supply>,
    config: &DispatchConfig,
    now: DateTime<Utc>,
) -> TickReport {
    let started = Instant::now();
    let (expired, stranded, plan) = {
        let model = supply.read().unwrap_or_else(|p| p.into_inner());
        let supply = &model.model;
        let expired: Vec<(DeliveryId, OfferId)> = supply
            .open_deliveries()
            .iter()
            .filter_map(|d| match d.offer {
                Some((offer, expires)) if expires <= now => Some((d.request.delivery_id, offer)),
                _ => None,
            })
            .collect();
        let plan = plan::plan(supply, now, &config.plan, |r| route::RiderRoute::of(r, now));
        (expired, supply.stranded(), plan)
    };
    let plan_ms = started.elapsed().as_secs_f64() * 1e3;
    metrics::histogram!("o2ohub_dispatch_plan_seconds").record(plan_ms / 1e3);

    let mut work: Vec<(DeliveryId, DeliveryCommand)> = Vec::new();
    work.extend(expired.iter().map(|(d, offer_id)| {
        (
            *d,
            DeliveryCommand::Expire {
                offer_id: *offer_id,
            },
        )
    }));
    work.extend(stranded.iter().map(|(d, rider_id)| {
        (
            *d,
            DeliveryCommand::Release {
                rider_id: *rider_id,
                reason: "the rider went off shift before pickup".into(),
            },
        )
    }));
    work.extend(plan.offers.iter().map(|o| {
        (
            o.delivery,
            DeliveryCommand::Offer(DeliveryOffered {
                offer_id: OfferId(uuid::Uuid::now_v7()),
                rider_id: o.rider,
                expires_at: now + config.offer_ttl,
                eta: o.eta,
            }),
        )
    }));
    let mut tasks = JoinSet::new();
    for (delivery, cmd) in work {
        let store = store.clone();
        tasks.spawn(async move {
            let ctx = CommandContext::new(Actor::system("dispatcher"), now);
            let kind = match &cmd {
                DeliveryCommand::Offer(_) => "offer",
                DeliveryCommand::Expire { .. } => "expire",
                _ => "release",
            };
            let outcome =
                command::execute::<Delivery>(&*store, &delivery.stream(), &cmd, &ctx).await;
            (kind, outcome)
        });
    }
    let mut report = TickReport {
        open: plan.open,
        available: plan.available,
        plan_ms,
        ..TickReport::default()
    };
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((kind, Ok(_))) => {
                metrics::counter!("o2ohub_dispatch_decisions_total", "kind" => kind).increment(1);
                match kind {
                    "offer" => report.offered += 1,
                    "expire" => report.expired += 1,
                    _ => report.released += 1,
                }
            }
            // The read model lagged a rider's answer: the aggregate refused
            // a decision that no longer applies. Next tick sees the truth.
            Ok((kind, Err(CommandError::Domain(e)))) => {
                tracing::debug!(kind, error = %e, "dispatch decision overtaken");
            }
            Ok((kind, Err(e))) => tracing::warn!(kind, error = %e, "dispatch decision failed"),
            Err(e) => tracing::error!(error = %e, "dispatch task panicked"),
        }
    }
    metrics::gauge!("o2ohub_dispatch_open_deliveries").set(report.open as f64);
    metrics::gauge!("o2ohub_dispatch_available_riders").set(report.available as f64);
    report
}

/// Runs ticks until the task is aborted. Before each tick it waits (up to a
/// tick) for the supply read model to apply the previous tick's decisions,
/// so it never offers a rider twice from a stale view.
pub async fn run(store: Arc<dyn EventStore>, supply: Shared<Supply>, config: DispatchConfig) {
    let mut interval = tokio::time::interval(config.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Ok(head) = store.head().await {
            let deadline = Instant::now() + config.tick;
            while supply.read().unwrap_or_else(|p| p.into_inner()).position < head
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        let report = tick(&store, &supply, &config, crate::clock::now()).await;
        if report.offered + report.expired + report.released > 0 {
            tracing::debug!(?report, "dispatch tick");
        }
    }
}
