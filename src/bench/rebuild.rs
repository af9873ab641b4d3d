//! `o2ohub bench rebuild`: writes a synthetic day of realistic events (merchants,
//! riders, bookings, orders, deliveries) into a fresh store, then rebuilds
//! every read model from position 1 and reports events folded per second —
//! the speed at which a new or changed projection catches up.

use anyhow::Result;
use chrono::{Duration, TimeZone, Utc};
use o2ohub_events::*;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use std::path::PathBuf;

use crate::rebuild::{rebuild_one, Rebuilt};
use crate::store::embedded::EmbeddedStore;
use crate::store::{Commit, EventMetadata, EventStore, ExpectedVersion, NewEvent, StreamWrite};
use o2ohub_projections::analytics::Analytics;
use o2ohub_projections::search::MerchantSearch;
use o2ohub_projections::supply::Supply;
use o2ohub_projections::views::consumer::ConsumerActivity;
use o2ohub_projections::views::rider::RiderBoards;
use o2ohub_projections::views::store::StoreDays;

/// Options of the rebuild bench.
#[derive(Debug, Clone)]
pub struct RebuildBench {
    /// Approximate number of events to write.
    pub events: u64,
    /// Scratch directory.
    pub dir: PathBuf,
    /// One JSON object per measurement.
    pub json: bool,
    /// Seed of the synthetic day.
    pub seed: u64,
}

/// Writes the synthetic day; returns the number of events written.
pub async fn write_day(store: &dyn EventStore, target: u64, seed: u64) -> Result<u64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let start = Utc
        .with_ymd_and_hms(2026, 11, 25, 6, 0, 0)
        .single()
        .unwrap_or_default();
    let meta = |minute: i64| EventMetadata {
        occurred_at: start + Duration::minutes(minute),
        correlation_id: uuid::Uuid::nil(),
        causation_id: None,
        actor: Actor::system("bench"),
    };
    let eur = |m| Money::parse(m, "EUR").expect("valid money");
    let here = |rng: &mut rand::rngs::StdRng| {
        LatLng::parse(
            31.23 + rng.random_range(-0.1..0.1),
            121.47 + rng.random_range(-0.1..0.1),
        )
        .expect("valid point")
    };
    let merchants: Vec<MerchantId> = (0..2_000)
        .map(|i| MerchantId(uuid::Uuid::from_u128(0x1000_0000 + i)))
        .collect();
    let riders: Vec<RiderId> = (0..500)
        .map(|i| RiderId(uuid::Uuid::from_u128(0x2000_0000 + i)))
        .collect();
    let mut written = 0u64;
    let mut writes: Vec<StreamWrite> = Vec::new();
    let single = |stream: String, events: Vec<Event>, minute: i64| StreamWrite {
        stream,
        expected: ExpectedVersion::Any,
        events: events
            .iter()
            .map(|e| NewEvent::from_event(e, &meta(minute)))
            .collect(),
    };
    for (i, m) in merchants.iter().enumerate() {
        let profile = MerchantProfile {
            name: format!("merchant {i}"),
            category: Category::ALL[i % 5],
            location: here(&mut rng),
            opening_hours: OpeningHours::daily(480, 0, 1440),
            services: vec![Service {
                service_id: "standard".into(),
                name: "Standard".into(),
                duration_minutes: 30,
                price: eur(2500),
                slot_capacity: 4,
            }],
            service_area: ServiceArea::Radius { meters: 3000 },
            rating_tenths: (i % 50) as u8,
        };
        writes.push(single(
            m.stream(),
            vec![MerchantEvent::Registered(MerchantRegistered {
                merchant_id: *m,
                profile,
            })
            .into()],
            0,
        ));
    }
    for r in &riders {
        let reg = RiderRegistered {
            rider_id: *r,
            name: "rider".into(),
            vehicle: VehicleType::Scooter,
            capacity: 3,
        };
        let shift = ShiftStarted {
            position: here(&mut rng),
        };
        writes.push(single(
            r.stream(),
            vec![
                RiderEvent::Registered(reg).into(),
                RiderEvent::ShiftStarted(shift).into(),
            ],
            0,
        ));
    }
    let mut minute = 0;
    while written + writes.iter().map(|w| w.events.len() as u64).sum::<u64>() < target {
        minute = (minute + 1) % 900;
        let m = merchants[rng.random_range(0..merchants.len())];
        let consumer = ConsumerId(uuid::Uuid::from_u128(rng.random()));
        if rng.random_bool(0.5) {
            let visit = VisitId(uuid::Uuid::from_u128(rng.random()));
            let slot =
                SlotStart::parse(start + Duration::minutes(60 + 15 * rng.random_range(0..40)))?;
            let booked = VisitBooked {
                visit_id: visit,
                consumer_id: consumer,
                merchant_id: m,
                service_id: "standard".into(),
                slot,
                duration_minutes: 30,
                price: eur(2500),
                code: CodeDigest("00".repeat(32)),
            };
            let seat = SeatTaken {
                visit_id: visit,
                capacity: 4,
            };
            writes.push(single(
                slot_stream(m, "standard", slot),
                vec![SlotEvent::SeatTaken(seat).into()],
                minute,
            ));
            let staff = StaffId(uuid::Uuid::nil());
            let end: Event = if rng.random_bool(0.1) {
                VisitEvent::NoShow(VisitNoShow { staff_id: staff }).into()
            } else {
                VisitEvent::Completed(VisitCompleted { staff_id: staff }).into()
            };
            let redeemed: Event = VisitEvent::Redeemed(VisitRedeemed { staff_id: staff }).into();
            writes.push(single(
                visit.stream(),
                vec![VisitEvent::Booked(booked).into(), redeemed, end],
                minute,
            ));
        } else {
            let order = OrderId(uuid::Uuid::from_u128(rng.random()));
            let delivery = DeliveryId(uuid::Uuid::from_u128(rng.random()));
            let rider = riders[rng.random_range(0..riders.len())];
            let at = start + Duration::minutes(minute);
            let placed = OrderPlaced {
                order_id: order,
                consumer_id: consumer,
                merchant_id: m,
                lines: vec![OrderLine {
                    sku: "dish".into(),
                    quantity: 1,
                    unit_price: eur(1500),
                }],
                total: eur(1500),
                drop_off: here(&mut rng),
                drop_off_details: Sealed {
                    key_id: "k".into(),
                    ciphertext: "AAAA".into(),
                },
                handover_code: CodeDigest("00".repeat(32)),
                promised_by: at + Duration::minutes(45),
            };
            let order_events: Vec<Event> = vec![
                OrderEvent::Placed(placed).into(),
                OrderEvent::Paid(OrderPaid {
                    payment_ref: "pay".into(),
                    amount: eur(1500),
                })
                .into(),
                OrderEvent::Accepted(OrderAccepted {
                    ready_by: at + Duration::minutes(15),
                })
                .into(),
                OrderEvent::Ready(OrderReady {}).into(),
                OrderEvent::Completed(OrderCompleted {}).into(),
            ];
            let offer = OfferId(uuid::Uuid::from_u128(rng.random()));
            let delivery_events: Vec<Event> = vec![
                DeliveryEvent::Requested(DeliveryRequested {
                    delivery_id: delivery,
                    order_id: order,
                    merchant_id: m,
                    pickup: here(&mut rng),
                    drop_off: here(&mut rng),
                    ready_at: at + Duration::minutes(15),
                    deadline: at + Duration::minutes(45),
                    load: 1,
                })
                .into(),
                DeliveryEvent::Offered(DeliveryOffered {
                    offer_id: offer,
                    rider_id: rider,
                    expires_at: at,
                    eta: at,
                })
                .into(),
                DeliveryEvent::OfferAccepted(OfferAccepted {
                    offer_id: offer,
                    rider_id: rider,
                })
                .into(),
                DeliveryEvent::PickedUp(DeliveryPickedUp { rider_id: rider }).into(),
                DeliveryEvent::Delivered(DeliveryDelivered {
                    rider_id: rider,
                    proof: DeliveryProof {
                        handover_code_verified: true,
                        photo_ref: None,
                    },
                })
                .into(),
            ];
            writes.push(single(order.stream(), order_events, minute));
            writes.push(single(delivery.stream(), delivery_events, minute));
            let moved = PositionReported {
                position: here(&mut rng),
                fixed_at: at,
            };
            writes.push(single(
                rider.stream(),
                vec![RiderEvent::PositionReported(moved).into()],
                minute,
            ));
        }
        if writes.len() >= 512 {
            written += writes.iter().map(|w| w.events.len() as u64).sum::<u64>();
            store
                .commit(Commit {
                    writes: std::mem::take(&mut writes),
                    idempotency: None,
                })
                .await?;
        }
    }
    written += writes.iter().map(|w| w.events.len() as u64).sum::<u64>();
    if !writes.is_empty() {
        store
            .commit(Commit {
                writes,
                idempotency: None,
            })
            .await?;
    }
    Ok(written)
}

/// Runs the bench.
pub async fn run(opts: RebuildBench) -> Result<()> {
    let dir = opts.dir.join("rebuild");
    let _ = std::fs::remove_dir_all(&dir);
    let store = EmbeddedStore::open(&dir)?;
    eprintln!(
        "bench rebuild: writing about {} synthetic events...",
        opts.events
    );
    let written = write_day(&store, opts.events, opts.seed).await?;
    store.shutdown().await;
    drop(store);
    // Reopen so the fold reads the log from disk, as a rebuild after a restart does.
    let store = EmbeddedStore::open(&dir)?;
    let show = !opts.json;
    let results: Vec<(&str, Rebuilt)> = vec![
        (
            "consumer_activity",
            rebuild_one(&store, ConsumerActivity::default(), None, show).await?,
        ),
        (
            "store_days",
            rebuild_one(&store, StoreDays::default(), None, show).await?,
        ),
        (
            "rider_boards",
            rebuild_one(&store, RiderBoards::default(), None, show).await?,
        ),
        (
            "supply",
            rebuild_one(&store, Supply::default(), None, show).await?,
        ),
        (
            "analytics",
            rebuild_one(&store, Analytics::default(), None, show).await?,
        ),
        (
            "merchant_search",
            rebuild_one(&store, MerchantSearch::new(), None, show).await?,
        ),
    ];
    store.shutdown().await;
    for (name, r) in results {
        let rate = r.events as f64 / r.seconds.max(1e-9);
        if opts.json {
            println!(
                "{}",
                json!({"measurement": "rebuild", "projection": name, "events": r.events, "seconds": r.seconds, "events_per_sec": rate.round()})
            );
        } else {
            println!("{name:>18}: {} events in {:.3} s = {rate:.0} events/s (read from disk, decoded, folded)", r.events, r.seconds);
        }
    }
    if !opts.json {
        println!("({written} events written)");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
