//! Dispatch over a real socket, with the hub's own dispatcher ticking every
//! 100 ms: a rider on shift receives an offer over Server-Sent Events,
//! accepts, picks up and hands over with the consumer's code (a wrong code
//! is refused); a declined or expired offer goes to another rider; a
//! reconnect with `Last-Event-ID` resumes without losing an offer; a rider
//! who goes off shift before pickup releases the order to another.

use o2ohub_events::{MerchantId, Role};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

mod support;

/// The shared test hub, with the dispatcher ticking every 100 ms and offers
/// lapsing after 3 s.
struct Server {
    hub: support::Hub,
}

impl Server {
    async fn start() -> Server {
        // Every test here sets the same values before its hub starts.
        std::env::set_var("O2OHUB_DISPATCH_TICK_MS", "100");
        std::env::set_var("O2OHUB_OFFER_TTL_S", "3");
        Server {
            hub: support::Hub::start().await,
        }
    }

    fn token(&self, role: Role, subject: &str, merchant: Option<MerchantId>) -> String {
        self.hub.token(role, subject, merchant)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let answer = self
            .hub
            .call(method, path, Some(token), body.as_ref())
            .await;
        (answer.status, answer.body)
    }

    /// A restaurant at the centre, a rider near it and one further away.
    async fn city(&self) -> City {
        let admin = self.token(Role::Admin, "ops", None);
        let restaurant = json!({
            "name": "Noodle Bar", "category": "food_delivery",
            "location": {"lat": 31.2304, "lng": 121.4737},
            "opening_hours": {"utc_offset_minutes": 0, "intervals": [
                {"day": "mon", "open": 0, "close": 1440}, {"day": "tue", "open": 0, "close": 1440},
                {"day": "wed", "open": 0, "close": 1440}, {"day": "thu", "open": 0, "close": 1440},
                {"day": "fri", "open": 0, "close": 1440}, {"day": "sat", "open": 0, "close": 1440},
                {"day": "sun", "open": 0, "close": 1440}]},
            "services": [{"service_id": "table", "name": "Table", "duration_minutes": 60,
                          "price": {"minor": 0, "currency": "CNY"}, "slot_capacity": 4}],
            "service_area": {"kind": "radius", "meters": 5000}, "rating_tenths": 42
        });
        let (status, body) = self
            .call("POST", "/v1/merchants", &admin, Some(restaurant))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let merchant: MerchantId = body["merchant_id"].as_str().unwrap().parse().unwrap();
        let mut riders = Vec::new();
        for (name, lat) in [("near", 31.2314), ("far", 31.2404)] {
            let (status, body) = self
                .call(
                    "POST",
                    "/v1/riders",
                    &admin,
                    Some(json!({"name": name, "vehicle": "scooter", "capacity": 3})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let id = body["rider_id"].as_str().unwrap().to_owned();
            let token = self.token(Role::Rider, &id, None);
            let (status, body) = self
                .call(
                    "POST",
                    "/v1/riders/me/shift/start",
                    &token,
                    Some(json!({"position": {"lat": lat, "lng": 121.4737}})),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            riders.push((id, token));
        }
        City {
            staff: self.token(
                Role::Staff,
                &uuid::Uuid::now_v7().to_string(),
                Some(merchant),
            ),
            consumer: self.token(Role::Consumer, &uuid::Uuid::now_v7().to_string(), None),
            merchant,
            near: riders.remove(0),
            far: riders.remove(0),
        }
    }

    /// An order placed, paid, accepted and ready: (order id, hand-over code).
    async fn ready_order(&self, c: &City) -> (String, String) {
        let order = json!({
            "merchant_id": c.merchant,
            "lines": [{"sku": "noodles", "quantity": 1, "unit_price": {"minor": 1800, "currency": "CNY"}}],
            "drop_off": {"lat": 31.2354, "lng": 121.4800},
            "contact": {"name": "Mei", "phone": "+8613912345678", "address": "88 Century Avenue"}
        });
        let (status, body) = self
            .call("POST", "/v1/orders", &c.consumer, Some(order))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["order_id"].as_str().unwrap().to_owned();
        let code = body["handover_code"].as_str().unwrap().to_owned();
        let callback = json!({"order_id": id, "payment_ref": format!("pay-{id}"), "amount": {"minor": 1800, "currency": "CNY"}}).to_string();
        let sig = o2ohub::api::payments::sign(
            &self.hub.payments,
            chrono::Utc::now().timestamp(),
            callback.as_bytes(),
        );
        let paid = reqwest::Client::new()
            .post(format!("{}/v1/payments/webhook", self.hub.base))
            .header("O2O-Signature", sig)
            .body(callback)
            .send()
            .await
            .unwrap();
        assert_eq!(paid.status(), StatusCode::OK);
        let ready_by = (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
        let (status, body) = self
            .call(
                "POST",
                &format!("/v1/orders/{id}/accept"),
                &c.staff,
                Some(json!({"ready_by": ready_by})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = self
            .call("POST", &format!("/v1/orders/{id}/ready"), &c.staff, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (id, code)
    }
}

struct City {
    staff: String,
    consumer: String,
    merchant: MerchantId,
    near: (String, String),
    far: (String, String),
}

/// One Server-Sent Event.
#[derive(Debug)]
struct Sse {
    id: Option<u64>,
    data: Value,
}

/// Reads a rider's offer stream.
struct Stream {
    resp: reqwest::Response,
    buf: String,
}

impl Stream {
    async fn open(s: &Server, token: &str, last_event_id: Option<u64>) -> Stream {
        let mut req = reqwest::Client::new()
            .get(format!("{}/v1/riders/me/offers", s.hub.base))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Stream {
            resp,
            buf: String::new(),
        }
    }

    /// The next event named `name` (others skipped), within `wait`.
    async fn next(&mut self, name: &str, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if event == name {
                    return Some(Sse {
                        id,
                        data: serde_json::from_str(&data).unwrap(),
                    });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .ok()?
                .unwrap()?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_is_pushed_accepted_picked_up_and_delivered_with_the_right_code() {
    let s = Server::start().await;
    let c = s.city().await;
    let mut near = Stream::open(&s, &c.near.1, None).await;
    let (order, code) = s.ready_order(&c).await;

    // The nearest rider gets the offer, pushed.
    let offer = near
        .next("offer", Duration::from_secs(10))
        .await
        .expect("an offer within 10 s");
    assert_eq!(offer.data["order_id"], order.as_str());
    let delivery = offer.data["delivery_id"].as_str().unwrap().to_owned();
    let offer_id = offer.data["offer_id"].as_str().unwrap().to_owned();
    assert!(offer.data["expires_at"].is_string() && offer.data["eta"].is_string());

    // Another rider cannot answer it.
    let (status, _) = s
        .call(
            "POST",
            &format!("/v1/deliveries/{delivery}/accept"),
            &c.far.1,
            Some(json!({"offer_id": offer_id})),
        )
        .await;
    assert!(status.is_client_error(), "{status}");
    let (status, body) = s
        .call(
            "POST",
            &format!("/v1/deliveries/{delivery}/accept"),
            &c.near.1,
            Some(json!({"offer_id": offer_id})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let closed = near
        .next("offer_closed", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(closed.data["outcome"], "accepted");

    // The route shows the stops with ETAs; the consumer sees the rider coming.
    s.hub.state.hub.caught_up().await.unwrap();
    let (_, route) = s.call("GET", "/v1/riders/me/route", &c.near.1, None).await;
    let stops = route["stops"].as_array().unwrap();
    assert_eq!(stops.len(), 2, "{route}");
    assert_eq!(stops[0]["kind"], "pickup");
    assert_eq!(stops[1]["kind"], "drop_off");
    assert!(stops[0]["eta"].as_str().unwrap() < stops[1]["eta"].as_str().unwrap());
    let (_, seen) = s
        .call("GET", &format!("/v1/orders/{order}"), &c.consumer, None)
        .await;
    assert_eq!(seen["delivery"]["rider_id"], c.near.0.as_str(), "{seen}");
    assert!(seen["delivery"]["eta"].is_string());

    // Hand-over before pickup is refused; after pickup a wrong code is refused.
    let (status, _) = s
        .call(
            "POST",
            &format!("/v1/deliveries/{delivery}/deliver"),
            &c.near.1,
            Some(json!({"code": code})),
        )
        .await;
    assert!(status.is_client_error());
    let (status, body) = s
        .call(
            "POST",
            &format!("/v1/deliveries/{delivery}/pickup"),
            &c.near.1,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let wrong = if code.starts_with('A') {
        "BBBB-BBBB"
    } else {
        "AAAA-AAAA"
    };
    let (status, body) = s
        .call(
            "POST",
            &format!("/v1/deliveries/{delivery}/deliver"),
            &c.near.1,
            Some(json!({"code": wrong})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "code", "{body}");
    let (status, body) = s
        .call(
            "POST",
            &format!("/v1/deliveries/{delivery}/deliver"),
            &c.near.1,
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.hub.state.hub.caught_up().await.unwrap();
    let (_, route) = s.call("GET", "/v1/riders/me/route", &c.near.1, None).await;
    assert_eq!(route["stops"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_and_expired_offers_go_to_another_rider() {
    let s = Server::start().await;
    let c = s.city().await;
    let mut near = Stream::open(&s, &c.near.1, None).await;
    let mut far = Stream::open(&s, &c.far.1, None).await;

    // Declined by the nearest rider → offered to the other.
    let (first, _) = s.ready_order(&c).await;
    let offer = near.next("offer", Duration::from_secs(10)).await.unwrap();
    assert_eq!(offer.data["order_id"], first.as_str());
    let delivery = offer.data["delivery_id"].as_str().unwrap().to_owned();
    let (status, body) = s
        .call(
            "POST",
            &format!("/v1/deliveries/{delivery}/decline"),
            &c.near.1,
            Some(json!({"offer_id": offer.data["offer_id"], "reason": "flat tyre"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second_try = far
        .next("offer", Duration::from_secs(10))
        .await
        .expect("offered to the other rider");
    assert_eq!(second_try.data["delivery_id"], delivery.as_str());
    let (status, body) = s
        .call(
            "POST",
            &format!("/v1/deliveries/{delivery}/accept"),
            &c.far.1,
            Some(json!({"offer_id": second_try.data["offer_id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Not answered in time (3 s) → expires → offered to the other rider.
    let (second, _) = s.ready_order(&c).await;
    let offer = near.next("offer", Duration::from_secs(10)).await.unwrap();
    assert_eq!(offer.data["order_id"], second.as_str());
    let closed = near
        .next("offer_closed", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(closed.data["outcome"], "expired");
    let again = far
        .next("offer", Duration::from_secs(10))
        .await
        .expect("offered again after expiry");
    assert_eq!(again.data["order_id"], second.as_str());
    // The lapsed offer can no longer be accepted.
    let (status, _) = s
        .call(
            "POST",
            &format!(
                "/v1/deliveries/{}/accept",
                offer.data["delivery_id"].as_str().unwrap()
            ),
            &c.near.1,
            Some(json!({"offer_id": offer.data["offer_id"]})),
        )
        .await;
    assert!(status.is_client_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_with_last_event_id_loses_no_offer() {
    let s = Server::start().await;
    let c = s.city().await;
    let mut stream = Stream::open(&s, &c.near.1, None).await;
    let (order, _) = s.ready_order(&c).await;
    let offer = stream.next("offer", Duration::from_secs(10)).await.unwrap();
    let id = offer.id.expect("offers carry an id");
    drop(stream);

    // Resuming from just before it replays it; resuming from it does not.
    let mut before = Stream::open(&s, &c.near.1, Some(id - 1)).await;
    let replayed = before
        .next("offer", Duration::from_secs(5))
        .await
        .expect("resumed");
    assert_eq!(replayed.id, Some(id));
    assert_eq!(replayed.data["order_id"], order.as_str());
    let mut after = Stream::open(&s, &c.near.1, Some(id)).await;
    // The offer lapses after 3 s: the resumed stream sees that, not the offer again.
    let next = after
        .next("offer_closed", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(next.id.unwrap() > id);
    assert_eq!(next.data["offer_id"], offer.data["offer_id"]);

    // A Last-Event-ID that is not a number is a 400 naming the header.
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/riders/me/offers", s.hub.base))
        .bearer_auth(&c.near.1)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["field"], "Last-Event-ID");
    // Only riders have an offer stream.
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/riders/me/offers", s.hub.base))
        .bearer_auth(&c.consumer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rider_going_off_shift_before_pickup_releases_the_order() {
    let s = Server::start().await;
    let c = s.city().await;
    let mut near = Stream::open(&s, &c.near.1, None).await;
    let mut far = Stream::open(&s, &c.far.1, None).await;
    let (order, _) = s.ready_order(&c).await;
    let offer = near.next("offer", Duration::from_secs(10)).await.unwrap();
    let delivery = offer.data["delivery_id"].as_str().unwrap().to_owned();
    let (status, _) = s
        .call(
            "POST",
            &format!("/v1/deliveries/{delivery}/accept"),
            &c.near.1,
            Some(json!({"offer_id": offer.data["offer_id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .call("POST", "/v1/riders/me/shift/end", &c.near.1, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let again = far
        .next("offer", Duration::from_secs(10))
        .await
        .expect("released and offered again");
    assert_eq!(again.data["order_id"], order.as_str());
}
