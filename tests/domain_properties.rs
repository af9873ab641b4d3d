//! Property tests of the aggregates: random command sequences (at advancing
//! times) never take a state machine along a transition outside its table,
//! never break the aggregate's invariants, and replaying the produced events
//! from scratch reproduces the final state.

use chrono::{DateTime, Duration, Utc};
use o2ohub::domain::delivery::{Delivery, DeliveryCommand};
use o2ohub::domain::order::{Order, OrderCommand, OrderStatus};
use o2ohub::domain::rider::{Rider, RiderCommand};
use o2ohub::domain::slot::{Slot, SlotCommand};
use o2ohub::domain::visit::{Visit, VisitCommand, MAX_REDEMPTION_FAILURES};
use o2ohub::domain::{replay, Aggregate};
use o2ohub_events::schedule::utc;
use o2ohub_events::*;
use proptest::prelude::*;

/// Runs commands (each with a time step in minutes) and checks, after every
/// accepted command, the transition table and the invariant.
fn check<A: Aggregate>(
    steps: &[(A::Command, i64)],
    allowed: &[(&str, &str)],
    invariant: impl Fn(&A) -> Result<(), String>,
) -> Result<(), TestCaseError> {
    let mut now: DateTime<Utc> = utc(2026, 11, 25, 8, 0);
    let mut state = A::default();
    let mut log = Vec::new();
    for (command, minutes) in steps {
        now += Duration::minutes(*minutes);
        let Ok(events) = state.decide(command, now) else {
            continue;
        };
        for e in events {
            let from = state.state_name();
            state = state.evolve(&e);
            let to = state.state_name();
            prop_assert!(
                from == to || allowed.contains(&(from, to)),
                "illegal transition {from} -> {to} by {command:?}"
            );
            log.push(e);
        }
        invariant(&state).map_err(TestCaseError::fail)?;
    }
    prop_assert_eq!(replay::<A>(&log), state);
    Ok(())
}

fn slot_at(hour: u32) -> SlotStart {
    SlotStart::parse(utc(2026, 11, 25, hour, 0)).unwrap()
}

const MERCHANT_A: MerchantId = MerchantId(uuid::Uuid::from_u128(0xA));
const MERCHANT_B: MerchantId = MerchantId(uuid::Uuid::from_u128(0xB));

fn code(n: u8) -> CodeDigest {
    CodeDigest(format!("digest-{n}"))
}

fn visit_command() -> impl Strategy<Value = VisitCommand> {
    let staff = StaffId(uuid::Uuid::from_u128(1));
    let merchant = prop_oneof![Just(MERCHANT_A), Just(MERCHANT_B)];
    prop_oneof![
        (9u32..20).prop_map(|h| VisitCommand::Book {
            visit_id: VisitId(uuid::Uuid::from_u128(7)),
            consumer_id: ConsumerId(uuid::Uuid::from_u128(8)),
            merchant_id: MERCHANT_A,
            service_id: "haircut".into(),
            slot: slot_at(h),
            duration_minutes: 30,
            price: Money::parse(2500, "EUR").unwrap(),
            code: code(1),
        }),
        (9u32..20).prop_map(|h| VisitCommand::Reschedule { to: slot_at(h) }),
        prop_oneof![Just(Role::Consumer), Just(Role::Staff)].prop_map(|by| VisitCommand::Cancel {
            reason: "r".into(),
            by
        }),
        (merchant.clone(), 0u8..3).prop_map(move |(m, c)| VisitCommand::Redeem {
            staff_id: staff,
            staff_merchant: m,
            entered: code(c)
        }),
        merchant
            .clone()
            .prop_map(move |m| VisitCommand::MarkNoShow {
                staff_id: staff,
                staff_merchant: m
            }),
        merchant.prop_map(move |m| VisitCommand::Complete {
            staff_id: staff,
            staff_merchant: m
        }),
    ]
}

fn order_command() -> impl Strategy<Value = OrderCommand> {
    let eur = |m| Money::parse(m, "EUR").unwrap();
    let placed = OrderPlaced {
        order_id: OrderId(uuid::Uuid::from_u128(3)),
        consumer_id: ConsumerId(uuid::Uuid::from_u128(4)),
        merchant_id: MERCHANT_A,
        lines: vec![OrderLine {
            sku: "tea".into(),
            quantity: 2,
            unit_price: eur(300),
        }],
        total: eur(600),
        drop_off: LatLng::parse(31.2, 121.4).unwrap(),
        drop_off_details: Sealed {
            key_id: "k".into(),
            ciphertext: "c".into(),
        },
        handover_code: code(1),
        promised_by: utc(2026, 11, 25, 23, 0),
    };
    let role = prop_oneof![Just(Role::Consumer), Just(Role::Staff), Just(Role::Admin)];
    prop_oneof![
        Just(OrderCommand::Place(Box::new(placed))),
        prop_oneof![Just(600i64), Just(500)].prop_map(move |m| OrderCommand::Pay {
            payment_ref: "p".into(),
            amount: eur(m)
        }),
        Just(OrderCommand::Accept {
            ready_by: utc(2026, 11, 25, 23, 30)
        }),
        Just(OrderCommand::Reject { reason: "r".into() }),
        Just(OrderCommand::MarkReady),
        role.prop_map(|by| OrderCommand::Cancel {
            reason: "r".into(),
            by
        }),
        Just(OrderCommand::Refund),
        Just(OrderCommand::Complete),
    ]
}

fn delivery_command() -> impl Strategy<Value = DeliveryCommand> {
    let rider = |n: u128| RiderId(uuid::Uuid::from_u128(n));
    let offer = |n: u128| OfferId(uuid::Uuid::from_u128(n));
    let requested = DeliveryRequested {
        delivery_id: DeliveryId(uuid::Uuid::from_u128(5)),
        order_id: OrderId(uuid::Uuid::from_u128(3)),
        merchant_id: MERCHANT_A,
        pickup: LatLng::parse(31.2, 121.4).unwrap(),
        drop_off: LatLng::parse(31.21, 121.41).unwrap(),
        ready_at: utc(2026, 11, 25, 9, 0),
        deadline: utc(2026, 11, 25, 10, 0),
        load: 1,
    };
    prop_oneof![
        Just(DeliveryCommand::Request(Box::new(requested))),
        (1u128..3, 1u128..3, 1i64..30).prop_map(move |(r, o, mins)| DeliveryCommand::Offer(
            DeliveryOffered {
                offer_id: offer(o),
                rider_id: rider(r),
                // Offers expire some minutes after 08:00 plus however far the clock ran.
                expires_at: utc(2026, 11, 26, 0, 0) + Duration::minutes(mins),
                eta: utc(2026, 11, 25, 9, 30),
            }
        )),
        (1u128..3, 1u128..3).prop_map(move |(r, o)| DeliveryCommand::Accept {
            offer_id: offer(o),
            rider_id: rider(r)
        }),
        (1u128..3, 1u128..3).prop_map(move |(r, o)| DeliveryCommand::Decline {
            offer_id: offer(o),
            rider_id: rider(r),
            reason: String::new()
        }),
        (1u128..3).prop_map(move |o| DeliveryCommand::Expire { offer_id: offer(o) }),
        (1u128..3).prop_map(move |r| DeliveryCommand::PickUp { rider_id: rider(r) }),
        (1u128..3, 0u8..2).prop_map(move |(r, c)| DeliveryCommand::Deliver {
            rider_id: rider(r),
            entered: code(c),
            expected: code(1),
            photo_ref: None
        }),
        (1u128..3).prop_map(move |r| DeliveryCommand::Release {
            rider_id: rider(r),
            reason: "shift ended".into()
        }),
        Just(DeliveryCommand::Fail { reason: "r".into() }),
    ]
}

fn minutes() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), 1i64..90, Just(600)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn visits_follow_their_state_machine(steps in prop::collection::vec((visit_command(), minutes()), 0..40)) {
        check::<Visit>(
            &steps,
            &[("not booked", "booked"), ("booked", "redeemed"), ("booked", "cancelled"),
              ("booked", "a no-show"), ("redeemed", "completed")],
            |v| match v.details() {
                Some(d) if d.failures > MAX_REDEMPTION_FAILURES => Err(format!("{} failures", d.failures)),
                Some(d) if d.merchant_id != MERCHANT_A => Err("visit moved store".into()),
                _ => Ok(()),
            },
        )?;
    }

    #[test]
    fn orders_follow_their_state_machine(steps in prop::collection::vec((order_command(), minutes()), 0..40)) {
        check::<Order>(
            &steps,
            &[("not placed", "placed"), ("placed", "paid"), ("placed", "rejected"), ("placed", "cancelled"),
              ("paid", "accepted"), ("paid", "rejected"), ("paid", "cancelled"), ("accepted", "ready"),
              ("accepted", "cancelled"), ("ready", "cancelled"), ("ready", "completed")],
            |o| match o {
                Order::NotPlaced => Ok(()),
                Order::Placed(o) => {
                    if o.refunded && !(o.paid.is_some() && matches!(o.status, OrderStatus::Cancelled | OrderStatus::Rejected)) {
                        return Err("refund without payment or before cancellation".into());
                    }
                    if matches!(o.status, OrderStatus::Accepted | OrderStatus::Ready | OrderStatus::Completed) && o.paid.is_none() {
                        return Err("accepted an unpaid order".into());
                    }
                    if o.paid.is_some_and(|p| p != o.placed.total) {
                        return Err("paid amount differs from the total".into());
                    }
                    Ok(())
                }
            },
        )?;
    }

    #[test]
    fn deliveries_follow_their_state_machine(steps in prop::collection::vec((delivery_command(), minutes()), 0..40)) {
        check::<Delivery>(
            &steps,
            &[("not requested", "open"), ("open", "offered"), ("offered", "open"), ("offered", "assigned"), ("assigned", "open"),
              ("assigned", "picked up"), ("picked up", "delivered"), ("open", "failed"), ("offered", "failed"),
              ("assigned", "failed"), ("picked up", "failed")],
            |_| Ok(()),
        )?;
    }

    #[test]
    fn slots_never_hold_more_than_their_capacity(
        steps in prop::collection::vec(((0u128..12, 1u32..5, any::<bool>()), Just(0i64)), 0..60)
    ) {
        let steps: Vec<(SlotCommand, i64)> = steps
            .into_iter()
            .map(|((v, capacity, take), m)| {
                let visit_id = VisitId(uuid::Uuid::from_u128(v));
                (if take { SlotCommand::Take { visit_id, capacity } } else { SlotCommand::Release { visit_id } }, m)
            })
            .collect();
        // A capacity lowered later may leave more holders than the new
        // capacity (bookings are kept), so the bound is checked per Take below.
        check::<Slot>(&steps, &[("empty", "holding seats"), ("holding seats", "empty")], |_| Ok(()))?;
        // Stronger: every accepted Take left the slot within the capacity it was given.
        let mut slot = Slot::default();
        for (c, _) in &steps {
            if let Ok(events) = slot.decide(c, utc(2026, 11, 25, 8, 0)) {
                for e in &events { slot = slot.clone().evolve(e); }
                if let SlotCommand::Take { capacity, .. } = c {
                    prop_assert!(slot.holders.len() as u32 <= *capacity);
                }
            }
        }
    }

    #[test]
    fn riders_follow_their_state_machine(steps in prop::collection::vec((
        prop_oneof![
            Just(RiderCommand::Register { rider_id: RiderId(uuid::Uuid::from_u128(9)), name: "Li".into(), vehicle: VehicleType::Bicycle, capacity: 2 }),
            Just(RiderCommand::StartShift { position: LatLng::parse(31.2, 121.4).unwrap() }),
            Just(RiderCommand::EndShift),
            Just(RiderCommand::ReportPosition { position: LatLng::parse(31.3, 121.5).unwrap(), fixed_at: utc(2026, 11, 25, 8, 0) }),
        ],
        minutes(),
    ), 0..30)) {
        check::<Rider>(
            &steps,
            &[("unregistered", "off shift"), ("off shift", "on shift"), ("on shift", "off shift")],
            |r| match r {
                Rider::OnShift(s) if s.position.is_none() => Err("on shift without a position".into()),
                _ => Ok(()),
            },
        )?;
    }
}

#[test]
fn wrong_codes_lock_redemption_and_are_recorded() {
    let now = utc(2026, 11, 25, 9, 0);
    let staff = StaffId::new();
    let mut visit = Visit::default();
    let book = VisitCommand::Book {
        visit_id: VisitId::new(),
        consumer_id: ConsumerId::new(),
        merchant_id: MERCHANT_A,
        service_id: "haircut".into(),
        slot: slot_at(10),
        duration_minutes: 30,
        price: Money::parse(2500, "EUR").unwrap(),
        code: code(1),
    };
    for e in visit.decide(&book, now).unwrap() {
        visit = visit.evolve(&e);
    }
    let wrong = VisitCommand::Redeem {
        staff_id: staff,
        staff_merchant: MERCHANT_A,
        entered: code(2),
    };
    for n in 1..=MAX_REDEMPTION_FAILURES {
        let events = visit.decide(&wrong, now).unwrap();
        assert!(matches!(&events[..], [VisitEvent::RedemptionFailed(f)] if f.failures == n));
        visit = visit.evolve(&events[0]);
    }
    let right = VisitCommand::Redeem {
        staff_id: staff,
        staff_merchant: MERCHANT_A,
        entered: code(1),
    };
    assert!(matches!(
        visit.decide(&right, now),
        Err(o2ohub::domain::DomainError::RedemptionLocked { .. })
    ));
    let other_store = VisitCommand::Redeem {
        staff_id: staff,
        staff_merchant: MERCHANT_B,
        entered: code(1),
    };
    assert!(matches!(
        visit.decide(&other_store, now),
        Err(o2ohub::domain::DomainError::NotYours(_))
    ));
}
