//! Booking through the command layer on the real embedded store: the slot
//! capacity invariant under 64 concurrent clients, atomic cancel and
//! reschedule, and idempotent retries.

use chrono::{Duration, Utc};
use o2ohub::command::{self, BookVisit, CommandContext, CommandError, IdempotencyKey};
use o2ohub::domain::merchant::{Merchant, MerchantCommand};
use o2ohub::domain::slot::Slot;
use o2ohub::domain::visit::Visit;
use o2ohub::domain::DomainError;
use o2ohub::store::embedded::EmbeddedStore;
use o2ohub::store::EventStore;
use o2ohub_events::*;
use std::sync::Arc;

struct City {
    store: Arc<dyn EventStore>,
    merchant: MerchantId,
    slot: SlotStart,
    _dir: tempfile::TempDir,
}

fn admin() -> CommandContext {
    CommandContext::new(
        Actor {
            role: Role::Admin,
            subject: "ops".into(),
        },
        Utc::now(),
    )
}

fn consumer(id: ConsumerId) -> CommandContext {
    CommandContext::new(
        Actor {
            role: Role::Consumer,
            subject: id.to_string(),
        },
        Utc::now(),
    )
}

/// A store with one salon whose `haircut` slots hold `capacity` people.
async fn city(capacity: u32) -> City {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let merchant = MerchantId::new();
    let profile = MerchantProfile {
        name: "Salon".into(),
        category: Category::Salon,
        location: LatLng::parse(31.23, 121.47).unwrap(),
        opening_hours: OpeningHours::daily(0, 0, 1440),
        services: vec![Service {
            service_id: "haircut".into(),
            name: "Haircut".into(),
            duration_minutes: 30,
            price: Money::parse(2500, "EUR").unwrap(),
            slot_capacity: capacity,
        }],
        service_area: ServiceArea::Radius { meters: 3000 },
        rating_tenths: 45,
    };
    command::execute::<Merchant>(
        store.as_ref(),
        &merchant.stream(),
        &MerchantCommand::Register {
            merchant_id: merchant,
            profile,
        },
        &admin(),
    )
    .await
    .unwrap();
    // Tomorrow at 10:00 UTC: on the grid and in the future.
    let day = (Utc::now() + Duration::days(1)).date_naive();
    let slot = SlotStart::parse(day.and_hms_opt(10, 0, 0).unwrap().and_utc()).unwrap();
    City {
        store,
        merchant,
        slot,
        _dir: dir,
    }
}

fn booking(city: &City) -> BookVisit {
    BookVisit {
        visit_id: VisitId::new(),
        consumer_id: ConsumerId::new(),
        merchant_id: city.merchant,
        service_id: "haircut".into(),
        slot: city.slot,
        code: CodeDigest("digest".into()),
    }
}

async fn seats_taken(city: &City) -> usize {
    let stream = slot_stream(city.merchant, "haircut", city.slot);
    command::load::<Slot>(city.store.as_ref(), &stream)
        .await
        .unwrap()
        .0
        .holders
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_racing_for_the_last_seats_never_overbook() {
    for last_seats in [1u32, 3, 8] {
        let capacity = 10;
        let city = Arc::new(city(capacity).await);
        for _ in 0..capacity - last_seats {
            let b = booking(&city);
            command::book_visit(city.store.as_ref(), &b, &consumer(b.consumer_id))
                .await
                .unwrap();
        }
        let clients: Vec<_> = (0..64)
            .map(|_| {
                let city = city.clone();
                tokio::spawn(async move {
                    let b = booking(&city);
                    command::book_visit(city.store.as_ref(), &b, &consumer(b.consumer_id)).await
                })
            })
            .collect();
        let (mut booked, mut full) = (0, 0);
        for c in clients {
            match c.await.unwrap() {
                Ok(_) => booked += 1,
                Err(CommandError::Domain(DomainError::SlotFull { capacity: 10 })) => full += 1,
                Err(e) => panic!("not a clean rejection: {e}"),
            }
        }
        assert_eq!(
            (booked, full),
            (last_seats, 64 - last_seats),
            "last {last_seats} seats"
        );
        assert_eq!(seats_taken(&city).await, capacity as usize);
    }
}

#[tokio::test]
async fn cancelling_frees_the_seat_and_rescheduling_moves_it_atomically() {
    let city = city(1).await;
    let first = booking(&city);
    command::book_visit(city.store.as_ref(), &first, &consumer(first.consumer_id))
        .await
        .unwrap();
    let second = booking(&city);
    let err = command::book_visit(city.store.as_ref(), &second, &consumer(second.consumer_id))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        CommandError::Domain(DomainError::SlotFull { .. })
    ));

    let later = SlotStart::parse(city.slot.at() + Duration::hours(1)).unwrap();
    command::reschedule_visit(
        city.store.as_ref(),
        first.visit_id,
        later,
        &consumer(first.consumer_id),
    )
    .await
    .unwrap();
    assert_eq!(seats_taken(&city).await, 0, "the old seat was released");
    command::book_visit(city.store.as_ref(), &second, &consumer(second.consumer_id))
        .await
        .unwrap();

    command::cancel_visit(
        city.store.as_ref(),
        second.visit_id,
        "ill",
        &consumer(second.consumer_id),
    )
    .await
    .unwrap();
    assert_eq!(seats_taken(&city).await, 0);
    let (visit, _) = command::load::<Visit>(city.store.as_ref(), &second.visit_id.stream())
        .await
        .unwrap();
    assert!(matches!(visit, Visit::Cancelled(_)));
    let err = command::cancel_visit(
        city.store.as_ref(),
        second.visit_id,
        "again",
        &consumer(second.consumer_id),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            CommandError::Domain(DomainError::IllegalTransition { .. })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_retried_booking_returns_the_first_outcome_and_appends_nothing() {
    let city = city(5).await;
    let b = booking(&city);
    let mut ctx = consumer(b.consumer_id);
    ctx.idempotency = Some(IdempotencyKey {
        key: format!("consumer:{}:k1", b.consumer_id),
        fingerprint: "f1".into(),
    });
    let first = command::book_visit(city.store.as_ref(), &b, &ctx)
        .await
        .unwrap();
    let head = city.store.head().await.unwrap();
    let again = command::book_visit(city.store.as_ref(), &b, &ctx)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.streams, first.streams);
    assert_eq!(city.store.head().await.unwrap(), head);
    assert_eq!(seats_taken(&city).await, 1);

    ctx.idempotency.as_mut().unwrap().fingerprint = "another request".into();
    let err = command::book_visit(city.store.as_ref(), &booking(&city), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, CommandError::KeyReused));
}

/// A new booking at `city`'s salon fails because the store is unavailable.
async fn assert_a_booking_is_refused_as_unavailable(city: &City) {
    let b = booking(city);
    let err = command::book_visit(city.store.as_ref(), &b, &consumer(b.consumer_id))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CommandError::Domain(DomainError::MerchantUnavailable { .. })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn paused_or_closed_merchants_and_unknown_services_refuse_bookings() {
    let city = city(5).await;
    let mut b = booking(&city);
    b.service_id = "massage".into();
    let err = command::book_visit(city.store.as_ref(), &b, &consumer(b.consumer_id))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CommandError::Domain(DomainError::Invalid(ref v)) if v.field == "service_id"),
        "{err}"
    );

    command::execute::<Merchant>(
        city.store.as_ref(),
        &city.merchant.stream(),
        &MerchantCommand::Pause {
            reason: "holiday".into(),
        },
        &admin(),
    )
    .await
    .unwrap();
    assert_a_booking_is_refused_as_unavailable(&city).await;
}

#[tokio::test]
async fn a_remembered_fold_still_sees_what_was_appended_behind_it() {
    use o2ohub::store::{EventMetadata, ExpectedVersion, NewEvent};
    let city = city(5).await;
    let b = booking(&city);
    command::book_visit(city.store.as_ref(), &b, &consumer(b.consumer_id))
        .await
        .unwrap();
    // The booking folded the merchant and the store remembers that fold.
    let stream = city.merchant.stream();
    let remembered = city.store.folds().unwrap().get(&stream).unwrap();
    assert_eq!(remembered.version, 1);
    assert!(matches!(
        remembered.state.downcast_ref::<Merchant>(),
        Some(Merchant::Active(_))
    ));

    // Another writer (here: a raw append, not the command layer) pauses it.
    let meta = EventMetadata {
        occurred_at: Utc::now(),
        correlation_id: uuid::Uuid::now_v7(),
        causation_id: None,
        actor: admin().actor,
    };
    let paused = MerchantEvent::Paused(MerchantPaused {
        reason: "behind the memo's back".into(),
    });
    city.store
        .append(
            &stream,
            ExpectedVersion::Exact(1),
            vec![NewEvent::from_event(&paused.into(), &meta)],
        )
        .await
        .unwrap();

    let (merchant, version) = command::load::<Merchant>(city.store.as_ref(), &stream)
        .await
        .unwrap();
    assert_eq!(version, 2);
    assert!(matches!(merchant, Merchant::Paused(_)), "{merchant:?}");
    assert_a_booking_is_refused_as_unavailable(&city).await;
    assert_eq!(city.store.folds().unwrap().get(&stream).unwrap().version, 2);

    // A fold of another type on the same stream is not taken for this one.
    let (slot, _) = command::load::<Slot>(city.store.as_ref(), &stream)
        .await
        .unwrap();
    assert_eq!(slot, Slot::default());
}

/// The state a fold of the whole stream from the log gives.
async fn folded_from_log<A: o2ohub::domain::Aggregate>(store: &dyn EventStore, stream: &str) -> A {
    let mut state = A::default();
    for recorded in store.read_stream(stream, 1).await.unwrap() {
        if let Some(e) = A::select(recorded.decode().unwrap().event) {
            state = state.evolve(&e);
        }
    }
    state
}

#[tokio::test]
async fn a_landed_commit_leaves_the_memo_holding_what_the_log_folds_to() {
    let city = city(5).await;
    let slot = slot_stream(city.merchant, "haircut", city.slot);
    // A slot is shared by every booking of it: remembered from its first
    // seat on, so no booking reads it back. A visit is remembered once it
    // is read, not on its creation (one per booking, they would crowd the
    // slots out).
    for seats in 1..=3u64 {
        let b = booking(&city);
        command::book_visit(city.store.as_ref(), &b, &consumer(b.consumer_id))
            .await
            .unwrap();
        let memo = city.store.folds().unwrap();
        let remembered = memo.get(&slot).expect("the slot's fold is remembered");
        assert_eq!(remembered.version, seats);
        assert_eq!(
            remembered.state.downcast_ref::<Slot>(),
            Some(&folded_from_log::<Slot>(city.store.as_ref(), &slot).await)
        );
        assert!(memo.get(&b.visit_id.stream()).is_none());
    }
    assert_eq!(seats_taken(&city).await, 3);
}
