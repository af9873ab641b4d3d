//! Who may call what: every route × every role over a real socket, one
//! table. A row names a route, the thing it acts on (prepared fresh for each
//! cell when the call changes state, so every cell sees the same world) and
//! the expected answer per role:
//!
//! `A` allowed (the row's success status) · `1` 401 · `3` 403 · `4` 404
//!
//! in the order of [`ROLES`]: anonymous, consumer, another consumer, staff of
//! store A, staff of store B, rider, another rider, admin. Things belong to
//! the first consumer, store A and the first rider.

mod support;

use chrono::{Duration, Timelike, Utc};
use o2ohub_events::{MerchantId, Role};
use serde_json::{json, Value};
use support::Hub;

/// The callers, in the order of the expectation strings.
const ROLES: [&str; 8] = [
    "anonymous",
    "consumer",
    "other consumer",
    "staff A",
    "staff B",
    "rider",
    "other rider",
    "admin",
];

/// What a row's call acts on.
#[derive(Clone, Copy)]
enum Target {
    /// Nothing prepared; `{A}` and `{B}` in the path are the two stores.
    Fixed,
    /// A fresh merchant (to update or pause).
    FreshMerchant,
    /// A fresh, paused merchant (to resume).
    PausedMerchant,
    /// A fresh visit of the consumer at store A.
    Visit,
    /// A fresh visit of the consumer at store B.
    VisitAtB,
    /// A fresh visit at store A, redeemed.
    RedeemedVisit,
    /// A fresh order of the consumer at store A, placed.
    Order,
    /// … paid.
    PaidOrder,
    /// … paid and accepted.
    AcceptedOrder,
    /// A delivery of a ready order, offered to "rider".
    OfferedDelivery,
    /// … accepted by "rider".
    AssignedDelivery,
    /// … and picked up.
    PickedUpDelivery,
}

/// One row of the matrix.
struct Row {
    method: &'static str,
    /// `{A}`, `{B}`: the stores; `{m}`, `{visit}`, `{order}`: the target.
    path: &'static str,
    target: Target,
    /// The body, from the prepared target's redemption code.
    body: fn(&str) -> Option<Value>,
    /// Status of an allowed call.
    ok: u16,
    /// Expected answers, one character per role of [`ROLES`].
    expect: &'static str,
}

fn offer(offer_id: &str) -> Option<Value> {
    Some(json!({"offer_id": offer_id}))
}
fn none(_: &str) -> Option<Value> {
    None
}
fn empty(_: &str) -> Option<Value> {
    Some(json!({}))
}
fn code(code: &str) -> Option<Value> {
    Some(json!({ "code": code }))
}
fn reason(_: &str) -> Option<Value> {
    Some(json!({"reason": "test"}))
}
fn profile(_: &str) -> Option<Value> {
    Some(salon())
}
fn rider_body(_: &str) -> Option<Value> {
    Some(json!({"name": "Wei", "vehicle": "bicycle", "capacity": 2}))
}
fn book_at_a(_: &str) -> Option<Value> {
    None // filled in by `run_row`, which knows store A
}
fn reschedule(_: &str) -> Option<Value> {
    Some(json!({ "slot_start": slot_in_hours(3) }))
}
fn ready_by(_: &str) -> Option<Value> {
    Some(json!({ "ready_by": (Utc::now() + Duration::minutes(30)).to_rfc3339() }))
}
fn position(_: &str) -> Option<Value> {
    Some(json!({"position": {"lat": 31.23, "lng": 121.47}}))
}
fn fixes(_: &str) -> Option<Value> {
    Some(
        json!({"fixes": [{"position": {"lat": 31.23, "lng": 121.47}, "at": Utc::now().to_rfc3339()}]}),
    )
}

use Target::*;

#[rustfmt::skip]
const MATRIX: &[Row] = &[
    // anyone
    Row { method: "GET", path: "/healthz", target: Fixed, body: none, ok: 200, expect: "AAAAAAAA" },
    Row { method: "GET", path: "/readyz", target: Fixed, body: none, ok: 200, expect: "AAAAAAAA" },
    Row { method: "GET", path: "/metrics", target: Fixed, body: none, ok: 200, expect: "AAAAAAAA" },
    // any signed-in caller
    Row { method: "GET", path: "/v1/merchants/search?category=salon&lat=31.23&lng=121.47", target: Fixed, body: none, ok: 200, expect: "1AAAAAAA" },
    Row { method: "GET", path: "/v1/merchants/{A}/slots?service_id=haircut&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z", target: Fixed, body: none, ok: 200, expect: "1AAAAAAA" },
    // operators
    Row { method: "POST", path: "/v1/merchants", target: Fixed, body: profile, ok: 201, expect: "1333333A" },
    Row { method: "PUT", path: "/v1/merchants/{m}", target: FreshMerchant, body: profile, ok: 200, expect: "1333333A" },
    Row { method: "POST", path: "/v1/merchants/{m}/pause", target: FreshMerchant, body: reason, ok: 200, expect: "1333333A" },
    Row { method: "POST", path: "/v1/merchants/{m}/resume", target: PausedMerchant, body: none, ok: 200, expect: "1333333A" },
    Row { method: "POST", path: "/v1/merchants/{m}/staff", target: FreshMerchant, body: empty, ok: 201, expect: "1333333A" },
    Row { method: "POST", path: "/v1/riders", target: Fixed, body: rider_body, ok: 201, expect: "1333333A" },
    Row { method: "GET", path: "/v1/merchants/{A}/analytics", target: Fixed, body: none, ok: 200, expect: "1333333A" },
    Row { method: "GET", path: "/v1/supply?resolution=7", target: Fixed, body: none, ok: 200, expect: "1333333A" },
    // consumers (their own things)
    Row { method: "POST", path: "/v1/visits", target: Fixed, body: book_at_a, ok: 201, expect: "1AA33333" },
    Row { method: "POST", path: "/v1/visits/{visit}/reschedule", target: Visit, body: reschedule, ok: 200, expect: "1A333333" },
    Row { method: "POST", path: "/v1/visits/{visit}/cancel", target: Visit, body: reason, ok: 200, expect: "1A333333" },
    Row { method: "GET", path: "/v1/me/visits", target: Fixed, body: none, ok: 200, expect: "1AA33333" },
    Row { method: "GET", path: "/v1/me/orders", target: Fixed, body: none, ok: 200, expect: "1AA33333" },
    Row { method: "DELETE", path: "/v1/me", target: Fixed, body: none, ok: 200, expect: "1AA33333" },
    // store staff (their own store; admin for any)
    Row { method: "GET", path: "/v1/stores/{A}/day", target: Fixed, body: none, ok: 200, expect: "133A333A" },
    Row { method: "POST", path: "/v1/visits/{visit}/redeem", target: Visit, body: code, ok: 200, expect: "133A333A" },
    // staff of store A redeeming a code of store B: refused
    Row { method: "POST", path: "/v1/visits/{visit}/redeem", target: VisitAtB, body: code, ok: 200, expect: "1333A33A" },
    // a no-show is marked only once the slot has started: allowed callers reach the domain's 422
    Row { method: "POST", path: "/v1/visits/{visit}/no-show", target: Visit, body: none, ok: 422, expect: "133A333A" },
    Row { method: "POST", path: "/v1/visits/{visit}/complete", target: RedeemedVisit, body: none, ok: 200, expect: "133A333A" },
    // orders
    Row { method: "POST", path: "/v1/orders", target: Fixed, body: none, ok: 201, expect: "1AA33333" },
    Row { method: "GET", path: "/v1/orders/{order}", target: Order, body: none, ok: 200, expect: "1A3A333A" },
    Row { method: "POST", path: "/v1/orders/{order}/cancel", target: Order, body: reason, ok: 200, expect: "1A3A333A" },
    Row { method: "POST", path: "/v1/orders/{order}/accept", target: PaidOrder, body: ready_by, ok: 200, expect: "133A333A" },
    Row { method: "POST", path: "/v1/orders/{order}/reject", target: PaidOrder, body: reason, ok: 200, expect: "133A333A" },
    Row { method: "POST", path: "/v1/orders/{order}/ready", target: AcceptedOrder, body: none, ok: 200, expect: "133A333A" },
    Row { method: "GET", path: "/v1/orders/{order}", target: Fixed, body: none, ok: 200, expect: "14444334" },
    // the payment provider signs instead of a bearer token: no caller's token is enough
    Row { method: "POST", path: "/v1/payments/webhook", target: Order, body: none, ok: 200, expect: "11111111" },
    // riders (themselves). These rows change the riders and run in order:
    // start, report, board, end — both riders go through each step once.
    Row { method: "POST", path: "/v1/riders/me/shift/start", target: Fixed, body: position, ok: 200, expect: "13333AA3" },
    Row { method: "POST", path: "/v1/riders/me/positions", target: Fixed, body: fixes, ok: 200, expect: "13333AA3" },
    Row { method: "GET", path: "/v1/riders/me/board", target: Fixed, body: none, ok: 200, expect: "13333AA3" },
    Row { method: "POST", path: "/v1/riders/me/shift/end", target: Fixed, body: none, ok: 200, expect: "13333AA3" },
    // Dispatch: each rider sees only their own offers and route; only the
    // rider offered (or holding) a delivery may answer, collect, hand over.
    Row { method: "GET", path: "/v1/riders/me/offers", target: Fixed, body: none, ok: 200, expect: "13333AA3" },
    Row { method: "GET", path: "/v1/riders/me/route", target: Fixed, body: none, ok: 200, expect: "13333AA3" },
    Row { method: "POST", path: "/v1/deliveries/{delivery}/accept", target: OfferedDelivery, body: offer, ok: 200, expect: "13333A33" },
    Row { method: "POST", path: "/v1/deliveries/{delivery}/decline", target: OfferedDelivery, body: offer, ok: 200, expect: "13333A33" },
    Row { method: "POST", path: "/v1/deliveries/{delivery}/pickup", target: AssignedDelivery, body: empty, ok: 200, expect: "13333A33" },
    Row { method: "POST", path: "/v1/deliveries/{delivery}/deliver", target: PickedUpDelivery, body: code, ok: 200, expect: "13333A33" },
];

fn salon() -> Value {
    json!({
        "name": "Salon", "category": "salon",
        "location": {"lat": 31.2304, "lng": 121.4737},
        "opening_hours": {"utc_offset_minutes": 0, "intervals": [
            {"day": "mon", "open": 0, "close": 1440}, {"day": "tue", "open": 0, "close": 1440},
            {"day": "wed", "open": 0, "close": 1440}, {"day": "thu", "open": 0, "close": 1440},
            {"day": "fri", "open": 0, "close": 1440}, {"day": "sat", "open": 0, "close": 1440},
            {"day": "sun", "open": 0, "close": 1440}]},
        "services": [{"service_id": "haircut", "name": "Haircut", "duration_minutes": 30,
                      "price": {"minor": 2500, "currency": "EUR"}, "slot_capacity": 10000}],
        "service_area": {"kind": "radius", "meters": 3000},
        "rating_tenths": 45
    })
}

/// The start of the hour `h` hours from now (at least a few minutes ahead).
fn slot_in_hours(h: i64) -> String {
    let t = Utc::now() + Duration::hours(h);
    let t = t
        .date_naive()
        .and_hms_opt(t.hour(), 0, 0)
        .unwrap()
        .and_utc();
    t.to_rfc3339()
}

/// The stores, people and tokens every cell shares.
struct World {
    a: MerchantId,
    b: MerchantId,
    tokens: Vec<Option<String>>,
    admin: String,
    consumer: String,
    /// The id of "rider".
    rider: String,
}

async fn merchant(hub: &Hub, admin: &str) -> MerchantId {
    let answer = hub
        .call("POST", "/v1/merchants", Some(admin), Some(&salon()))
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.body["merchant_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn staff_token(hub: &Hub, admin: &str, store: MerchantId) -> String {
    let answer = hub
        .call(
            "POST",
            &format!("/v1/merchants/{store}/staff"),
            Some(admin),
            Some(&json!({})),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    hub.token(
        Role::Staff,
        answer.body["staff_id"].as_str().unwrap(),
        Some(store),
    )
}

async fn rider_token(hub: &Hub, admin: &str) -> (String, String) {
    let answer = hub
        .call("POST", "/v1/riders", Some(admin), rider_body("").as_ref())
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let id = answer.body["rider_id"].as_str().unwrap().to_owned();
    (hub.token(Role::Rider, &id, None), id)
}

impl World {
    async fn build(hub: &Hub) -> World {
        let admin = hub.token(Role::Admin, "ops", None);
        let a = merchant(hub, &admin).await;
        let b = merchant(hub, &admin).await;
        let consumer = hub.token(Role::Consumer, &uuid::Uuid::now_v7().to_string(), None);
        let other = hub.token(Role::Consumer, &uuid::Uuid::now_v7().to_string(), None);
        let (rider, rider_id) = rider_token(hub, &admin).await;
        let (other_rider, _) = rider_token(hub, &admin).await;
        let tokens = vec![
            None,
            Some(consumer.clone()),
            Some(other),
            Some(staff_token(hub, &admin, a).await),
            Some(staff_token(hub, &admin, b).await),
            Some(rider),
            Some(other_rider),
            Some(admin.clone()),
        ];
        World {
            a,
            b,
            tokens,
            admin,
            consumer,
            rider: rider_id,
        }
    }

    /// Books a visit of the consumer; returns its id and code.
    async fn visit(&self, hub: &Hub, store: MerchantId) -> (String, String) {
        let answer = hub
            .call(
                "POST",
                "/v1/visits",
                Some(&self.consumer),
                Some(&self.booking(store)),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        let body = answer.body;
        (
            body["visit_id"].as_str().unwrap().to_owned(),
            body["redemption_code"].as_str().unwrap().to_owned(),
        )
    }

    fn booking(&self, store: MerchantId) -> Value {
        json!({"merchant_id": store, "service_id": "haircut", "slot_start": slot_in_hours(1)})
    }

    fn order_body(&self) -> Value {
        json!({
            "merchant_id": self.a,
            "lines": [{"sku": "noodles", "quantity": 2, "unit_price": {"minor": 1800, "currency": "EUR"}}],
            "drop_off": {"lat": 31.2310, "lng": 121.4740},
            "contact": {"name": "Mei", "phone": "+8613800138000", "address": "1 Nanjing Rd"}
        })
    }

    /// A delivery of a fresh ready order, offered to "rider" through the
    /// command layer (the dispatcher's decision); returns the delivery id,
    /// the offer id and the order's hand-over code.
    async fn offered_delivery(&self, hub: &Hub) -> (String, String, String) {
        use o2ohub::command::{self, CommandContext};
        use o2ohub::domain::delivery::{Delivery, DeliveryCommand};
        use o2ohub_events::{Actor, DeliveryId, DeliveryOffered, OfferId, RiderId};
        let placed = hub
            .call(
                "POST",
                "/v1/orders",
                Some(&self.consumer),
                Some(&self.order_body()),
            )
            .await;
        assert_eq!(placed.status, 201, "{}", placed.body);
        let order = placed.body["order_id"].as_str().unwrap().to_owned();
        let code = placed.body["handover_code"].as_str().unwrap().to_owned();
        self.pay(hub, &order).await;
        let admin = Some(self.admin.as_str());
        let a = hub
            .call(
                "POST",
                &format!("/v1/orders/{order}/accept"),
                admin,
                ready_by("").as_ref(),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        let ready = hub
            .call("POST", &format!("/v1/orders/{order}/ready"), admin, None)
            .await;
        assert_eq!(ready.status, 200, "{}", ready.body);
        let delivery: DeliveryId = ready.body["delivery_id"].as_str().unwrap().parse().unwrap();
        let offer_id = OfferId(uuid::Uuid::now_v7());
        let now = Utc::now();
        let offer = DeliveryCommand::Offer(DeliveryOffered {
            offer_id,
            rider_id: RiderId::parse(&self.rider).unwrap(),
            expires_at: now + Duration::minutes(10),
            eta: now + Duration::minutes(30),
        });
        let ctx = CommandContext::new(Actor::system("dispatcher"), now);
        command::execute::<Delivery>(
            hub.state.hub.store.as_ref(),
            &delivery.stream(),
            &offer,
            &ctx,
        )
        .await
        .unwrap();
        (delivery.to_string(), offer_id.0.to_string(), code)
    }

    async fn order(&self, hub: &Hub) -> String {
        let answer = hub
            .call(
                "POST",
                "/v1/orders",
                Some(&self.consumer),
                Some(&self.order_body()),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body["order_id"].as_str().unwrap().to_owned()
    }

    async fn pay(&self, hub: &Hub, order: &str) {
        let body = json!({"order_id": order, "payment_ref": format!("pay-{order}"),
                          "amount": {"minor": 3600, "currency": "EUR"}})
        .to_string();
        let signature =
            o2ohub::api::payments::sign(&hub.payments, Utc::now().timestamp(), body.as_bytes());
        let resp = hub
            .client
            .post(format!("{}/v1/payments/webhook", hub.base))
            .header("O2O-Signature", signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    /// Prepares a row's target; returns the path and the code of its visit.
    async fn prepare(&self, hub: &Hub, row: &Row) -> (String, String) {
        let path = row
            .path
            .replace("{A}", &self.a.to_string())
            .replace("{B}", &self.b.to_string());
        let admin = Some(self.admin.as_str());
        match row.target {
            Fixed => (path, String::new()),
            FreshMerchant | PausedMerchant => {
                let m = merchant(hub, &self.admin).await;
                if matches!(row.target, PausedMerchant) {
                    let a = hub
                        .call(
                            "POST",
                            &format!("/v1/merchants/{m}/pause"),
                            admin,
                            reason("").as_ref(),
                        )
                        .await;
                    assert_eq!(a.status, 200, "{}", a.body);
                }
                (path.replace("{m}", &m.to_string()), String::new())
            }
            Visit | VisitAtB | RedeemedVisit => {
                let store = if matches!(row.target, VisitAtB) {
                    self.b
                } else {
                    self.a
                };
                let (visit, code) = self.visit(hub, store).await;
                if matches!(row.target, RedeemedVisit) {
                    let a = hub
                        .call(
                            "POST",
                            &format!("/v1/visits/{visit}/redeem"),
                            admin,
                            Some(&json!({"code": code})),
                        )
                        .await;
                    assert_eq!(a.status, 200, "{}", a.body);
                }
                (path.replace("{visit}", &visit), code)
            }
            Order | PaidOrder | AcceptedOrder => {
                let order = self.order(hub).await;
                if !matches!(row.target, Order) {
                    self.pay(hub, &order).await;
                }
                if matches!(row.target, AcceptedOrder) {
                    let a = hub
                        .call(
                            "POST",
                            &format!("/v1/orders/{order}/accept"),
                            admin,
                            ready_by("").as_ref(),
                        )
                        .await;
                    assert_eq!(a.status, 200, "{}", a.body);
                }
                (path.replace("{order}", &order), String::new())
            }
            OfferedDelivery | AssignedDelivery | PickedUpDelivery => {
                let (delivery, offer_id, code) = self.offered_delivery(hub).await;
                let rider = self.tokens[5].as_deref();
                if !matches!(row.target, OfferedDelivery) {
                    let a = hub
                        .call(
                            "POST",
                            &format!("/v1/deliveries/{delivery}/accept"),
                            rider,
                            offer(&offer_id).as_ref(),
                        )
                        .await;
                    assert_eq!(a.status, 200, "{}", a.body);
                }
                if matches!(row.target, PickedUpDelivery) {
                    let a = hub
                        .call(
                            "POST",
                            &format!("/v1/deliveries/{delivery}/pickup"),
                            rider,
                            Some(&json!({})),
                        )
                        .await;
                    assert_eq!(a.status, 200, "{}", a.body);
                }
                let carried = if matches!(row.target, PickedUpDelivery) {
                    code
                } else {
                    offer_id
                };
                (path.replace("{delivery}", &delivery), carried)
            }
        }
    }
}

#[tokio::test]
async fn every_route_by_every_role() {
    let hub = Hub::start().await;
    let world = World::build(&hub).await;
    let mut failures = Vec::new();
    let mut cells = 0;
    for row in MATRIX {
        assert_eq!(row.expect.len(), ROLES.len(), "{} {}", row.method, row.path);
        for (i, expected) in row.expect.chars().enumerate() {
            let (mut path, code) = world.prepare(&hub, row).await;
            if row.path == "/v1/orders/{order}" && matches!(row.target, Fixed) {
                // A well-formed id of no order: refused as missing, to everyone signed in.
                path = format!("/v1/orders/{}", uuid::Uuid::now_v7());
            }
            let body = match row.path {
                "/v1/visits" => Some(world.booking(world.a)),
                "/v1/orders" => Some(world.order_body()),
                "/v1/payments/webhook" => {
                    Some(json!({"order_id": uuid::Uuid::now_v7(), "payment_ref": "p",
                                                      "amount": {"minor": 1, "currency": "EUR"}}))
                }
                _ => (row.body)(&code),
            };
            let answer = hub
                .call(row.method, &path, world.tokens[i].as_deref(), body.as_ref())
                .await;
            let want = match expected {
                'A' => row.ok,
                '1' => 401,
                '3' => 403,
                '4' => 404,
                other => panic!("unknown expectation {other}"),
            };
            cells += 1;
            if answer.status.as_u16() != want {
                failures.push(format!(
                    "{} {} as {}: expected {want}, got {} {}",
                    row.method, row.path, ROLES[i], answer.status, answer.body
                ));
            } else if want >= 400 {
                let problem = answer
                    .headers
                    .get("content-type")
                    .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
                if !problem {
                    failures.push(format!(
                        "{} {} as {}: {want} is not problem+json",
                        row.method, row.path, ROLES[i]
                    ));
                }
            }
        }
    }
    assert!(cells >= 250, "{cells} cells");
    assert!(
        failures.is_empty(),
        "{} of {cells} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_matrix_covers_every_route_of_the_spec() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml")).unwrap();
    let spec: Value = serde_norway::from_str(&text).unwrap();
    let covered: std::collections::BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|r| {
            (
                r.method.to_lowercase(),
                r.path.split('?').next().unwrap().to_owned(),
            )
        })
        .map(|(m, p)| {
            let p = p
                .replace("{A}", "{merchant_id}")
                .replace("{m}", "{merchant_id}")
                .replace("{visit}", "{visit_id}")
                .replace("{order}", "{order_id}")
                .replace("{delivery}", "{delivery_id}");
            (m, p)
        })
        .collect();
    let mut missing = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for m in ["get", "put", "post", "delete", "patch"] {
            if item.get(m).is_some() && !covered.contains(&(m.to_owned(), path.clone())) {
                missing.push(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes without a row in the authz matrix: {missing:?}"
    );
}
