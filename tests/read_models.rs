//! Read models fed by real event sequences: commands go through the command
//! layer into the embedded store, the runner folds the log, and the views
//! show what happened. Also: a restart resumes from the snapshot, a changed
//! fold version replays from zero, and applying an event twice has no effect.

use chrono::{Duration, Utc};
use o2ohub::command::{self, BookVisit, CommandContext};
use o2ohub::domain::delivery::{Delivery, DeliveryCommand};
use o2ohub::domain::merchant::{Merchant, MerchantCommand};
use o2ohub::domain::order::{Order, OrderCommand};
use o2ohub::domain::visit::{Visit, VisitCommand};
use o2ohub::runner::{self, Snapshots};
use o2ohub::store::embedded::EmbeddedStore;
use o2ohub::store::{EventStore, SubscribedEvent};
use o2ohub_events::*;
use o2ohub_projections::views::consumer::ConsumerActivity;
use o2ohub_projections::views::rider::{LegStatus, RiderBoards};
use o2ohub_projections::views::store::StoreDays;
use o2ohub_projections::views::{OrderStatus, VisitStatus};
use o2ohub_projections::{Checkpointed, Projection};
use std::sync::{Arc, RwLock};

fn ctx(role: Role, subject: &str) -> CommandContext {
    CommandContext::new(
        Actor {
            role,
            subject: subject.into(),
        },
        Utc::now(),
    )
}

struct Day {
    store: Arc<dyn EventStore>,
    merchant: MerchantId,
    consumer: ConsumerId,
    rider: RiderId,
    slot: SlotStart,
    visits: [VisitId; 2],
    order: OrderId,
    delivery: DeliveryId,
    _dir: tempfile::TempDir,
}

/// A short day: two bookings (one cancelled, one served), one delivered order.
/// `until` stops the story after that many steps of the order's delivery.
async fn day(until: usize) -> Day {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let s = store.as_ref();
    let (merchant, consumer, rider, staff) = (
        MerchantId::new(),
        ConsumerId::new(),
        RiderId::new(),
        StaffId::new(),
    );
    let eur = |m| Money::parse(m, "EUR").unwrap();
    let here = LatLng::parse(31.23, 121.47).unwrap();
    let profile = MerchantProfile {
        name: "Noodles & Nails".into(),
        category: Category::Salon,
        location: here,
        opening_hours: OpeningHours::daily(480, 0, 1440),
        services: vec![Service {
            service_id: "manicure".into(),
            name: "Manicure".into(),
            duration_minutes: 45,
            price: eur(3000),
            slot_capacity: 2,
        }],
        service_area: ServiceArea::Radius { meters: 5000 },
        rating_tenths: 47,
    };
    let admin = ctx(Role::Admin, "ops");
    command::execute::<Merchant>(
        s,
        &merchant.stream(),
        &MerchantCommand::Register {
            merchant_id: merchant,
            profile,
        },
        &admin,
    )
    .await
    .unwrap();
    let tomorrow = (Utc::now() + Duration::days(1)).date_naive();
    let slot = SlotStart::parse(tomorrow.and_hms_opt(2, 0, 0).unwrap().and_utc()).unwrap();
    let visits = [VisitId::new(), VisitId::new()];
    let me = ctx(Role::Consumer, &consumer.to_string());
    for v in visits {
        let book = BookVisit {
            visit_id: v,
            consumer_id: consumer,
            merchant_id: merchant,
            service_id: "manicure".into(),
            slot,
            code: CodeDigest(format!("code-{v}")),
        };
        command::book_visit(s, &book, &me).await.unwrap();
    }
    command::cancel_visit(s, visits[1], "changed plans", &me)
        .await
        .unwrap();
    let staff_ctx = ctx(Role::Staff, &staff.to_string());
    // The consumer arrives half an hour before the slot.
    let mut at_the_counter = staff_ctx.clone();
    at_the_counter.now = slot.at() - Duration::minutes(30);
    let redeem = VisitCommand::Redeem {
        staff_id: staff,
        staff_merchant: merchant,
        entered: CodeDigest(format!("code-{}", visits[0])),
    };
    command::execute::<Visit>(s, &visits[0].stream(), &redeem, &at_the_counter)
        .await
        .unwrap();
    let complete = VisitCommand::Complete {
        staff_id: staff,
        staff_merchant: merchant,
    };
    command::execute::<Visit>(s, &visits[0].stream(), &complete, &at_the_counter)
        .await
        .unwrap();

    let order = OrderId::new();
    let placed = OrderPlaced {
        order_id: order,
        consumer_id: consumer,
        merchant_id: merchant,
        lines: vec![OrderLine {
            sku: "ramen".into(),
            quantity: 1,
            unit_price: eur(1200),
        }],
        total: eur(1200),
        drop_off: LatLng::parse(31.24, 121.48).unwrap(),
        drop_off_details: Sealed {
            key_id: "k".into(),
            ciphertext: "c".into(),
        },
        handover_code: CodeDigest("handover".into()),
        promised_by: Utc::now() + Duration::hours(1),
    };
    let o = order.stream();
    command::execute::<Order>(s, &o, &OrderCommand::Place(Box::new(placed)), &me)
        .await
        .unwrap();
    command::execute::<Order>(
        s,
        &o,
        &OrderCommand::Pay {
            payment_ref: "p1".into(),
            amount: eur(1200),
        },
        &admin,
    )
    .await
    .unwrap();
    command::execute::<Order>(
        s,
        &o,
        &OrderCommand::Accept {
            ready_by: Utc::now() + Duration::minutes(10),
        },
        &staff_ctx,
    )
    .await
    .unwrap();
    command::execute::<Order>(s, &o, &OrderCommand::MarkReady, &staff_ctx)
        .await
        .unwrap();

    let delivery = DeliveryId::new();
    let d = delivery.stream();
    let offer = OfferId::new();
    let dispatcher = ctx(Role::System, "dispatcher");
    let rider_ctx = ctx(Role::Rider, &rider.to_string());
    let steps: Vec<(DeliveryCommand, &CommandContext)> = vec![
        (
            DeliveryCommand::Request(Box::new(DeliveryRequested {
                delivery_id: delivery,
                order_id: order,
                merchant_id: merchant,
                pickup: here,
                drop_off: LatLng::parse(31.24, 121.48).unwrap(),
                ready_at: Utc::now(),
                deadline: Utc::now() + Duration::hours(1),
                load: 1,
            })),
            &dispatcher,
        ),
        (
            DeliveryCommand::Offer(DeliveryOffered {
                offer_id: offer,
                rider_id: rider,
                expires_at: Utc::now() + Duration::minutes(2),
                eta: Utc::now() + Duration::minutes(30),
            }),
            &dispatcher,
        ),
        (
            DeliveryCommand::Accept {
                offer_id: offer,
                rider_id: rider,
            },
            &rider_ctx,
        ),
        (DeliveryCommand::PickUp { rider_id: rider }, &rider_ctx),
        (
            DeliveryCommand::Deliver {
                rider_id: rider,
                entered: CodeDigest("handover".into()),
                expected: CodeDigest("handover".into()),
                photo_ref: None,
            },
            &rider_ctx,
        ),
    ];
    for (command, who) in steps.into_iter().take(until) {
        command::execute::<Delivery>(s, &d, &command, who)
            .await
            .unwrap();
    }
    if until >= 5 {
        command::execute::<Order>(s, &o, &OrderCommand::Complete, &dispatcher)
            .await
            .unwrap();
    }
    Day {
        store,
        merchant,
        consumer,
        rider,
        slot,
        visits,
        order,
        delivery,
        _dir: dir,
    }
}

async fn fold<P: Projection>(store: &dyn EventStore, fresh: P) -> P {
    let model = RwLock::new(Checkpointed::new(fresh));
    runner::catch_up(store, &model).await.unwrap();
    model.into_inner().unwrap().model
}

#[tokio::test]
async fn a_consumer_sees_their_visits_and_orders() {
    let day = day(5).await;
    let activity = fold(day.store.as_ref(), ConsumerActivity::default())
        .await
        .of(&day.consumer);
    let visits: Vec<_> = activity
        .visits
        .iter()
        .map(|v| (v.visit_id, v.status))
        .collect();
    assert_eq!(
        visits,
        vec![
            (day.visits[0], VisitStatus::Completed),
            (day.visits[1], VisitStatus::Cancelled)
        ]
    );
    assert_eq!(activity.orders.len(), 1);
    assert_eq!(
        (activity.orders[0].order_id, activity.orders[0].status),
        (day.order, OrderStatus::Completed)
    );
    assert!(fold(day.store.as_ref(), ConsumerActivity::default())
        .await
        .of(&ConsumerId::new())
        .visits
        .is_empty());
}

#[tokio::test]
async fn a_store_sees_its_day_and_open_orders() {
    let day = day(3).await;
    let days = fold(day.store.as_ref(), StoreDays::default()).await;
    // The slot is 02:00 UTC = 10:00 at the store's UTC+8.
    let local_date = (day.slot.at() + Duration::hours(8)).date_naive();
    let today = days.day(&day.merchant, local_date);
    assert_eq!(
        today
            .visits
            .iter()
            .map(|v| v.status)
            .collect::<Vec<_>>()
            .len(),
        2
    );
    assert!(today
        .visits
        .iter()
        .any(|v| v.status == VisitStatus::Completed));
    assert_eq!(today.open_orders.len(), 1, "ready, not yet delivered");
    assert_eq!(today.open_orders[0].status, OrderStatus::Ready);
    assert!(days
        .day(&day.merchant, local_date.succ_opt().unwrap())
        .visits
        .is_empty());
    assert_eq!(days.visit_counts(&day.merchant).get("cancelled"), Some(&1));
}

#[tokio::test]
async fn a_rider_sees_offers_then_the_route_then_nothing() {
    let offered = day(2).await;
    let board = fold(offered.store.as_ref(), RiderBoards::default())
        .await
        .of(&offered.rider);
    assert_eq!((board.offers.len(), board.route.len()), (1, 0));

    let picked = day(4).await;
    let board = fold(picked.store.as_ref(), RiderBoards::default())
        .await
        .of(&picked.rider);
    assert!(board.offers.is_empty());
    assert_eq!(board.route.len(), 1);
    assert_eq!(
        (board.route[0].delivery_id, board.route[0].status),
        (picked.delivery, LegStatus::ToDropOff)
    );

    let done = day(5).await;
    let board = fold(done.store.as_ref(), RiderBoards::default())
        .await
        .of(&done.rider);
    assert!(board.route.is_empty() && board.offers.is_empty());
}

#[tokio::test]
async fn applying_the_log_twice_changes_nothing() {
    let day = day(5).await;
    let mut model = Checkpointed::new(ConsumerActivity::default());
    let all = SubscribedEvent::each(day.store.read_all(1, 10_000).await.unwrap());
    assert_eq!(runner::fold(&mut model, &all), all.len() as u64);
    let once = model.model.of(&day.consumer);
    assert_eq!(
        runner::fold(&mut model, &all),
        0,
        "every event is skipped the second time"
    );
    assert_eq!(model.model.of(&day.consumer), once);
}

#[tokio::test]
async fn a_restart_resumes_from_the_snapshot_and_a_new_version_replays() {
    let day = day(5).await;
    let snaps = tempfile::tempdir().unwrap();
    let snapshots = Snapshots {
        dir: snaps.path().to_path_buf(),
        every: std::time::Duration::from_secs(1),
    };
    let model = RwLock::new(runner::load(ConsumerActivity::default(), Some(&snapshots)));
    runner::catch_up(day.store.as_ref(), &model).await.unwrap();
    let model = model.into_inner().unwrap();
    runner::save(&model, &snapshots.dir).unwrap();

    // Restart: the snapshot brings the state and the position back.
    let resumed = runner::load(ConsumerActivity::default(), Some(&snapshots));
    assert_eq!(resumed.position, day.store.head().await.unwrap());
    assert_eq!(
        resumed.model.of(&day.consumer),
        model.model.of(&day.consumer)
    );

    // A snapshot of another fold version is not trusted: replay from zero.
    let path = snaps.path().join("consumer_activity.json");
    let text =
        std::fs::read_to_string(&path)
            .unwrap()
            .replacen("\"version\":1", "\"version\":0", 1);
    std::fs::write(&path, text).unwrap();
    assert_eq!(
        runner::load(ConsumerActivity::default(), Some(&snapshots)).position,
        0
    );
}

#[tokio::test]
async fn the_live_runner_follows_new_events() {
    let day = day(1).await;
    let model: runner::Shared<RiderBoards> =
        Arc::new(RwLock::new(Checkpointed::new(RiderBoards::default())));
    let task = tokio::spawn(runner::run(day.store.clone(), model.clone(), None));
    let offer = OfferId::new();
    let offered = DeliveryCommand::Offer(DeliveryOffered {
        offer_id: offer,
        rider_id: day.rider,
        expires_at: Utc::now() + Duration::minutes(2),
        eta: Utc::now() + Duration::minutes(30),
    });
    command::execute::<Delivery>(
        day.store.as_ref(),
        &day.delivery.stream(),
        &offered,
        &ctx(Role::System, "dispatcher"),
    )
    .await
    .unwrap();
    let head = day.store.head().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while model.read().unwrap().position < head {
        assert!(
            std::time::Instant::now() < deadline,
            "runner did not follow"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        model.read().unwrap().model.of(&day.rider).offers[0].offer_id,
        offer
    );
    task.abort();
}

#[tokio::test]
async fn analytics_count_orders_gmv_visits_and_deliveries() {
    use o2ohub_projections::analytics::Analytics;
    let day = day(5).await;
    let analytics = fold(day.store.as_ref(), Analytics::default()).await;
    let f = analytics.merchant(&day.merchant);
    assert_eq!((f.orders, f.gmv_minor.get("EUR").copied()), (1, Some(1200)));
    assert_eq!((f.visits_booked, f.visits_completed, f.no_shows), (2, 1, 0));
    assert_eq!(f.no_show_rate(), Some(0.0));
    assert_eq!((f.deliveries, f.on_time_rate()), (1, Some(1.0)));
    assert!(f.mean_delivery_seconds().unwrap() < 60.0);
    let areas = analytics.areas();
    assert_eq!(areas.len(), 1, "one merchant, one area");
    assert_eq!(
        areas.values().next().unwrap(),
        &f,
        "the area adds up its merchants"
    );
    let today = Utc::now().date_naive();
    assert_eq!(analytics.ranking(today, 10), vec![(day.merchant, 1200)]);
    assert!(analytics.ranking(today.pred_opt().unwrap(), 10).is_empty());
}
