//! Rider supply from event sequences: shifts, moves, routes, demand; and
//! "riders within R of P" equal to a brute-force scan on random cities.

use chrono::{DateTime, Duration, TimeZone, Utc};
use o2ohub_events::*;
use o2ohub_projections::supply::{Supply, SupplyQueryError};
use o2ohub_projections::Projection;
use proptest::prelude::*;

struct Log {
    position: u64,
    at: DateTime<Utc>,
}

impl Log {
    fn new() -> Self {
        Log {
            position: 0,
            at: Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap(),
        }
    }

    fn envelope(&mut self, stream: String, event: impl Into<Event>) -> Envelope {
        self.position += 1;
        self.at += Duration::seconds(1);
        Envelope {
            event_id: uuid::Uuid::from_u128(self.position as u128),
            stream_id: stream,
            stream_version: 1,
            global_position: self.position,
            schema_version: 1,
            occurred_at: self.at,
            recorded_at: self.at,
            correlation_id: uuid::Uuid::nil(),
            causation_id: None,
            actor: Actor::system("test"),
            event: event.into(),
        }
    }
}

fn p(lat: f64, lng: f64) -> LatLng {
    LatLng::parse(lat, lng).unwrap()
}

fn on_shift(supply: &mut Supply, log: &mut Log, rider: RiderId, at: LatLng, capacity: u32) {
    let registered = RiderRegistered {
        rider_id: rider,
        name: "r".into(),
        vehicle: VehicleType::Scooter,
        capacity,
    };
    supply.apply(&log.envelope(rider.stream(), RiderEvent::Registered(registered)));
    supply.apply(&log.envelope(
        rider.stream(),
        RiderEvent::ShiftStarted(ShiftStarted { position: at }),
    ));
}

#[test]
fn shifts_moves_routes_and_demand() {
    let (mut supply, mut log) = (Supply::default(), Log::new());
    let centre = p(31.2304, 121.4737);
    let (near, far) = (
        RiderId(uuid::Uuid::from_u128(1)),
        RiderId(uuid::Uuid::from_u128(2)),
    );
    on_shift(&mut supply, &mut log, near, p(31.2310, 121.4740), 2);
    on_shift(&mut supply, &mut log, far, p(31.30, 121.60), 2);

    let within: Vec<_> = supply
        .riders_within(&centre, 2_000.0)
        .unwrap()
        .into_iter()
        .map(|(r, _)| r.rider_id)
        .collect();
    assert_eq!(within, vec![near]);
    // The far rider moves into town.
    let moved = PositionReported {
        position: p(31.2320, 121.4750),
        fixed_at: log.at,
    };
    supply.apply(&log.envelope(far.stream(), RiderEvent::PositionReported(moved)));
    let within: Vec<_> = supply
        .riders_within(&centre, 2_000.0)
        .unwrap()
        .into_iter()
        .map(|(r, _)| r.rider_id)
        .collect();
    assert_eq!(within, vec![near, far], "nearest first");

    // Demand appears, is offered, accepted: the rider's route and load change.
    let delivery = DeliveryId(uuid::Uuid::from_u128(9));
    let request = DeliveryRequested {
        delivery_id: delivery,
        order_id: OrderId(uuid::Uuid::from_u128(8)),
        merchant_id: MerchantId(uuid::Uuid::from_u128(7)),
        pickup: centre,
        drop_off: p(31.24, 121.48),
        ready_at: log.at,
        deadline: log.at + Duration::minutes(40),
        load: 1,
    };
    supply.apply(&log.envelope(delivery.stream(), DeliveryEvent::Requested(request)));
    let balance = supply.balance(8).unwrap();
    assert_eq!(balance.iter().map(|b| b.open_deliveries).sum::<u32>(), 1);
    assert_eq!(balance.iter().map(|b| b.riders).sum::<u32>(), 2);
    assert_eq!(
        supply
            .balance(7)
            .unwrap()
            .iter()
            .map(|b| b.riders)
            .sum::<u32>(),
        2
    );
    assert_eq!(supply.balance(9).unwrap_err(), SupplyQueryError::Resolution);

    let offer = OfferId(uuid::Uuid::from_u128(6));
    let offered = DeliveryOffered {
        offer_id: offer,
        rider_id: near,
        expires_at: log.at,
        eta: log.at,
    };
    supply.apply(&log.envelope(delivery.stream(), DeliveryEvent::Offered(offered)));
    assert_eq!(supply.open_deliveries()[0].offered_to, Some(near));
    supply.apply(&log.envelope(
        delivery.stream(),
        DeliveryEvent::OfferAccepted(OfferAccepted {
            offer_id: offer,
            rider_id: near,
        }),
    ));
    assert!(supply.open_deliveries().is_empty());
    assert_eq!(supply.rider(&near).unwrap().free(), 1);
    supply.apply(&log.envelope(
        delivery.stream(),
        DeliveryEvent::PickedUp(DeliveryPickedUp { rider_id: near }),
    ));
    assert!(supply.rider(&near).unwrap().route[0].picked_up);
    let proof = DeliveryProof {
        handover_code_verified: true,
        photo_ref: None,
    };
    supply.apply(&log.envelope(
        delivery.stream(),
        DeliveryEvent::Delivered(DeliveryDelivered {
            rider_id: near,
            proof,
        }),
    ));
    assert_eq!(supply.rider(&near).unwrap().free(), 2);

    supply.apply(&log.envelope(near.stream(), RiderEvent::ShiftEnded(ShiftEnded {})));
    let within: Vec<_> = supply
        .riders_within(&centre, 2_000.0)
        .unwrap()
        .into_iter()
        .map(|(r, _)| r.rider_id)
        .collect();
    assert_eq!(within, vec![far]);
    assert_eq!(
        supply.riders_within(&centre, 0.0).unwrap_err(),
        SupplyQueryError::Radius
    );
    assert_eq!(
        supply.riders_within(&centre, 60_000.0).unwrap_err(),
        SupplyQueryError::Radius
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn riders_within_equals_a_brute_force_scan(
        riders in prop::collection::vec((-0.15f64..0.15, -0.15f64..0.15), 1..300),
        queries in prop::collection::vec((-0.15f64..0.15, -0.15f64..0.15, 100.0f64..20_000.0), 1..20),
    ) {
        let (mut supply, mut log) = (Supply::default(), Log::new());
        let mut positions = Vec::new();
        for (i, (dlat, dlng)) in riders.iter().enumerate() {
            let id = RiderId(uuid::Uuid::from_u128(i as u128 + 1));
            let at = p(31.23 + dlat, 121.47 + dlng);
            on_shift(&mut supply, &mut log, id, at, 2);
            positions.push((id, at));
        }
        for (dlat, dlng, radius) in queries {
            let q = p(31.23 + dlat, 121.47 + dlng);
            let got: Vec<RiderId> = supply.riders_within(&q, radius).unwrap().into_iter().map(|(r, _)| r.rider_id).collect();
            let mut want: Vec<(RiderId, f64)> = positions.iter()
                .map(|(id, at)| (*id, at.distance_m(&q)))
                .filter(|(_, d)| *d <= radius)
                .collect();
            want.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            prop_assert_eq!(got, want.into_iter().map(|(id, _)| id).collect::<Vec<_>>());
        }
    }
}
