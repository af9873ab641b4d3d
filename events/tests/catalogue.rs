//! The catalogue's contract: every event type round-trips through its JSON
//! payload, names are unique, future versions are refused and old versions
//! are upcast.

use chrono::{TimeZone, Utc};
use o2ohub_events::*;
use std::collections::HashSet;

fn sample_events() -> Vec<Event> {
    let at = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
    let eur = |minor| Money::parse(minor, "EUR").unwrap();
    let here = LatLng::parse(31.2304, 121.4737).unwrap();
    let slot = SlotStart::parse(at).unwrap();
    let profile = MerchantProfile {
        name: "Chen's Salon".into(),
        category: Category::Salon,
        location: here,
        opening_hours: OpeningHours::daily(480, 540, 1080),
        services: vec![Service {
            service_id: "haircut".into(),
            name: "Haircut".into(),
            duration_minutes: 30,
            price: eur(2500),
            slot_capacity: 3,
        }],
        service_area: ServiceArea::Radius { meters: 3000 },
        rating_tenths: 46,
    };
    let sealed = Sealed {
        key_id: "k1".into(),
        ciphertext: "AAEC".into(),
    };
    let digest = CodeDigest("ab12".into());
    let (rider, offer) = (RiderId::new(), OfferId::new());
    vec![
        MerchantEvent::Registered(MerchantRegistered {
            merchant_id: MerchantId::new(),
            profile: profile.clone(),
        })
        .into(),
        MerchantEvent::Updated(MerchantUpdated { profile }).into(),
        MerchantEvent::Paused(MerchantPaused {
            reason: "holiday".into(),
        })
        .into(),
        MerchantEvent::Resumed(MerchantResumed {}).into(),
        MerchantEvent::StaffAdded(StaffAdded {
            staff_id: StaffId::new(),
        })
        .into(),
        RiderEvent::Registered(RiderRegistered {
            rider_id: rider,
            name: "Li".into(),
            vehicle: VehicleType::Scooter,
            capacity: 3,
        })
        .into(),
        RiderEvent::ShiftStarted(ShiftStarted { position: here }).into(),
        RiderEvent::ShiftEnded(ShiftEnded {}).into(),
        RiderEvent::PositionReported(PositionReported {
            position: here,
            fixed_at: at,
        })
        .into(),
        OrderEvent::Placed(OrderPlaced {
            order_id: OrderId::new(),
            consumer_id: ConsumerId::new(),
            merchant_id: MerchantId::new(),
            lines: vec![OrderLine {
                sku: "noodles".into(),
                quantity: 2,
                unit_price: eur(800),
            }],
            total: eur(1600),
            drop_off: here,
            drop_off_details: sealed,
            handover_code: digest.clone(),
            promised_by: at,
        })
        .into(),
        OrderEvent::Paid(OrderPaid {
            payment_ref: "pay_1".into(),
            amount: eur(1600),
        })
        .into(),
        OrderEvent::Accepted(OrderAccepted { ready_by: at }).into(),
        OrderEvent::Rejected(OrderRejected {
            reason: "sold out".into(),
        })
        .into(),
        OrderEvent::Ready(OrderReady {}).into(),
        OrderEvent::Cancelled(OrderCancelled {
            reason: "changed mind".into(),
            by: Role::Consumer,
        })
        .into(),
        OrderEvent::Refunded(OrderRefunded { amount: eur(1600) }).into(),
        OrderEvent::Completed(OrderCompleted {}).into(),
        VisitEvent::Booked(VisitBooked {
            visit_id: VisitId::new(),
            consumer_id: ConsumerId::new(),
            merchant_id: MerchantId::new(),
            service_id: "haircut".into(),
            slot,
            duration_minutes: 30,
            price: eur(2500),
            code: digest,
        })
        .into(),
        VisitEvent::Rescheduled(VisitRescheduled {
            from: slot,
            to: slot,
        })
        .into(),
        VisitEvent::Cancelled(VisitCancelled {
            reason: "ill".into(),
            by: Role::Consumer,
        })
        .into(),
        VisitEvent::Redeemed(VisitRedeemed {
            staff_id: StaffId::new(),
        })
        .into(),
        VisitEvent::RedemptionFailed(RedemptionFailed {
            staff_id: StaffId::new(),
            failures: 2,
        })
        .into(),
        VisitEvent::NoShow(VisitNoShow {
            staff_id: StaffId::new(),
        })
        .into(),
        VisitEvent::Completed(VisitCompleted {
            staff_id: StaffId::new(),
        })
        .into(),
        SlotEvent::SeatTaken(SeatTaken {
            visit_id: VisitId::new(),
            capacity: 3,
        })
        .into(),
        SlotEvent::SeatReleased(SeatReleased {
            visit_id: VisitId::new(),
        })
        .into(),
        DeliveryEvent::Requested(DeliveryRequested {
            delivery_id: DeliveryId::new(),
            order_id: OrderId::new(),
            merchant_id: MerchantId::new(),
            pickup: here,
            drop_off: here,
            ready_at: at,
            deadline: at,
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
        DeliveryEvent::OfferDeclined(OfferDeclined {
            offer_id: offer,
            rider_id: rider,
            reason: "too far".into(),
        })
        .into(),
        DeliveryEvent::OfferExpired(OfferExpired {
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
        DeliveryEvent::Failed(DeliveryFailed {
            reason: "nobody home".into(),
        })
        .into(),
        DeliveryEvent::Released(DeliveryReleased {
            rider_id: RiderId(uuid::Uuid::nil()),
            reason: "the rider went off shift before pickup".into(),
        })
        .into(),
    ]
}

#[test]
fn every_type_round_trips_and_every_type_has_a_sample() {
    let samples = sample_events();
    let mut seen = HashSet::new();
    for event in &samples {
        let back = Event::decode(event.event_type(), event.schema_version(), &event.encode())
            .unwrap_or_else(|e| panic!("{}: {e}", event.event_type()));
        assert_eq!(&back, event);
        seen.insert(event.event_type());
    }
    let catalogue: HashSet<_> = Event::all_types().map(|(name, _)| name).collect();
    assert_eq!(seen, catalogue, "a sample per catalogue type");
    assert_eq!(
        catalogue.len(),
        Event::all_types().count(),
        "type names are unique"
    );
}

#[test]
fn stream_prefixes_map_to_topics() {
    assert_eq!(
        AggregateKind::of_stream(&OrderId::new().stream())
            .unwrap()
            .topic(),
        "orders"
    );
    assert_eq!(
        AggregateKind::of_stream("slot-x-haircut-1")
            .unwrap()
            .topic(),
        "visits"
    );
    assert_eq!(AggregateKind::of_stream("nonsense"), None);
}

#[test]
fn a_v1_merchant_registration_reads_as_the_current_type() {
    // As written by the first release: flat lat/lng, no rating.
    let v1 = r#"{
        "merchant_id": "01936f5e-1c2a-7cc0-8a4b-3f1e2d3c4b5a",
        "lat": 31.2304, "lng": 121.4737,
        "profile": {
            "name": "Old Noodle House", "category": "food_delivery",
            "opening_hours": {"utc_offset_minutes": 480, "intervals": []},
            "services": [], "service_area": {"kind": "radius", "meters": 2500}
        }
    }"#;
    let event = Event::decode("MerchantRegistered", 1, v1).expect("v1 upcasts");
    let Event::Merchant(MerchantEvent::Registered(r)) = event else {
        panic!("wrong type")
    };
    assert_eq!(
        r.profile.location,
        LatLng::parse(31.2304, 121.4737).unwrap()
    );
    assert_eq!(r.profile.rating_tenths, 0);
    assert_eq!(r.profile.name, "Old Noodle House");
}

#[test]
fn future_versions_and_unknown_types_are_refused_with_reasons() {
    let err = Event::decode("OrderReady", 7, "{}").unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::FutureVersion {
                found: 7,
                current: 1,
                ..
            }
        ),
        "{err}"
    );
    let err = Event::decode("OrderTeleported", 1, "{}").unwrap_err();
    assert!(matches!(err, DecodeError::UnknownType(_)));
    let err = Event::decode("OrderPaid", 1, r#"{"payment_ref": 5}"#).unwrap_err();
    assert!(err.to_string().contains("OrderPaid"), "{err}");
}
