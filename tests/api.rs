//! The API over a real socket: a server on port 0 on a fresh data directory,
//! driven as clients would. Operator registers a merchant with staff and a
//! rider; a consumer books; staff redeem and complete; a rider works a shift;
//! and the error conventions: problem+json, 401/403/404/422, idempotent retries.

use o2ohub::api::auth::{Keys, Principal};
use o2ohub::api::AppState;
use o2ohub_events::{MerchantId, Role};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

struct Server {
    base: String,
    keys: Keys,
    payments: Vec<u8>,
    dir: std::path::PathBuf,
    state: Arc<AppState>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr, state, server) =
            o2ohub::serve::start("127.0.0.1:0".parse().unwrap(), dir.path(), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        tokio::spawn(server);
        let secrets = o2ohub::secrets::Secrets::load(dir.path()).unwrap();
        Server {
            base: format!("http://{addr}"),
            keys: Keys::from_secret(&secrets.jwt),
            payments: secrets.payments.clone(),
            dir: dir.path().to_path_buf(),
            state,
            _stop: stop,
            _dir: dir,
        }
    }

    fn token(&self, role: Role, subject: &str, merchant: Option<MerchantId>) -> String {
        self.keys
            .mint(
                &Principal {
                    role,
                    subject: subject.into(),
                    merchant,
                },
                600,
            )
            .unwrap()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let client = reqwest::Client::new();
        let mut req = client.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let problem = resp.headers().get("content-type").is_some_and(|v| {
            v.to_str()
                .unwrap_or("")
                .starts_with("application/problem+json")
        });
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_client_error() || status.is_server_error() {
            assert!(problem, "{status} without problem+json: {value}");
        }
        (status, value)
    }
}

fn salon(capacity: u32) -> Value {
    json!({
        "name": "Lin's Salon", "category": "salon",
        "location": {"lat": 31.2304, "lng": 121.4737},
        "opening_hours": {"utc_offset_minutes": 0, "intervals": [
            {"day": "mon", "open": 0, "close": 1440}, {"day": "tue", "open": 0, "close": 1440},
            {"day": "wed", "open": 0, "close": 1440}, {"day": "thu", "open": 0, "close": 1440},
            {"day": "fri", "open": 0, "close": 1440}, {"day": "sat", "open": 0, "close": 1440},
            {"day": "sun", "open": 0, "close": 1440}]},
        "services": [{"service_id": "haircut", "name": "Haircut", "duration_minutes": 30,
                      "price": {"minor": 2500, "currency": "EUR"}, "slot_capacity": capacity}],
        "service_area": {"kind": "radius", "meters": 3000},
        "rating_tenths": 45
    })
}

fn slot_in_hours(h: i64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::hours(h);
    let t = t
        .date_naive()
        .and_hms_opt(chrono::Timelike::hour(&t), 0, 0)
        .unwrap()
        .and_utc();
    t.to_rfc3339()
}

#[tokio::test]
async fn operator_consumer_staff_and_rider_flows() {
    let s = Server::start().await;
    let admin = s.token(Role::Admin, "ops-1", None);

    // Operator: a merchant, its staff, a rider.
    let (status, body) = s
        .call("POST", "/v1/merchants", Some(&admin), Some(salon(2)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let merchant: MerchantId = body["merchant_id"].as_str().unwrap().parse().unwrap();
    let (status, body) = s
        .call(
            "POST",
            &format!("/v1/merchants/{merchant}/staff"),
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let staff_id = body["staff_id"].as_str().unwrap().to_owned();
    let staff = s.token(Role::Staff, &staff_id, Some(merchant));
    let (status, body) = s
        .call(
            "POST",
            "/v1/riders",
            Some(&admin),
            Some(json!({"name": "Wei", "vehicle": "scooter", "capacity": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let rider = s.token(Role::Rider, body["rider_id"].as_str().unwrap(), None);

    // Consumer books; the code comes back once, and the slot counts down.
    let consumer_id = uuid::Uuid::now_v7().to_string();
    let consumer = s.token(Role::Consumer, &consumer_id, None);
    let booking =
        json!({"merchant_id": merchant, "service_id": "haircut", "slot_start": slot_in_hours(1)});
    let (status, body) = s
        .call("POST", "/v1/visits", Some(&consumer), Some(booking.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let visit = body["visit_id"].as_str().unwrap().to_owned();
    let code = body["redemption_code"].as_str().unwrap().to_owned();

    // Staff: a wrong code is refused and counted; the right one redeems.
    let (status, body) = s
        .call(
            "POST",
            &format!("/v1/visits/{visit}/redeem"),
            Some(&staff),
            Some(json!({"code": "0000-0000"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "code");
    let (status, body) = s
        .call(
            "POST",
            &format!("/v1/visits/{visit}/redeem"),
            Some(&staff),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = s
        .call(
            "POST",
            &format!("/v1/visits/{visit}/complete"),
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Staff of another store cannot redeem this store's visits.
    let (status, body) = s
        .call("POST", "/v1/merchants", Some(&admin), Some(salon(1)))
        .await;
    let other: MerchantId = body["merchant_id"].as_str().unwrap().parse().unwrap();
    let (_, body2) = s.call("POST", "/v1/visits", Some(&consumer), Some(json!({"merchant_id": merchant, "service_id": "haircut", "slot_start": slot_in_hours(2)}))).await;
    let stranger = s.token(Role::Staff, &uuid::Uuid::now_v7().to_string(), Some(other));
    let (status_other, _) = s
        .call(
            "POST",
            &format!("/v1/visits/{}/redeem", body2["visit_id"].as_str().unwrap()),
            Some(&stranger),
            Some(json!({"code": body2["redemption_code"]})),
        )
        .await;
    assert_eq!(
        (status, status_other),
        (StatusCode::CREATED, StatusCode::FORBIDDEN)
    );

    // The read side catches up: the consumer's visits, the store's day.
    s.state.hub.caught_up().await.unwrap();
    let (status, body) = s.call("GET", "/v1/me/visits", Some(&consumer), None).await;
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<&str> = body["visits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["completed", "booked"]);
    let (status, body) = s
        .call(
            "GET",
            &format!("/v1/stores/{merchant}/day?date={}", &slot_in_hours(1)[..10]),
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body["visits"].as_array().unwrap().is_empty());
    let (status, _) = s
        .call(
            "GET",
            &format!("/v1/stores/{other}/day"),
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "staff see only their own store"
    );

    // Rider: a shift with sampled positions.
    let here = json!({"position": {"lat": 31.23, "lng": 121.47}});
    assert_eq!(
        s.call(
            "POST",
            "/v1/riders/me/shift/start",
            Some(&rider),
            Some(here)
        )
        .await
        .0,
        StatusCode::OK
    );
    let now = chrono::Utc::now().to_rfc3339();
    let fixes = json!({"fixes": [{"position": {"lat": 31.2301, "lng": 121.4701}, "at": now}]});
    let (status, body) = s
        .call("POST", "/v1/riders/me/positions", Some(&rider), Some(fixes))
        .await;
    assert_eq!(
        (status, body["recorded"].as_bool()),
        (StatusCode::OK, Some(false)),
        "a 15 m move is not an event"
    );
    let far = json!({"fixes": [{"position": {"lat": 31.24, "lng": 121.48}, "at": now}]});
    assert_eq!(
        s.call("POST", "/v1/riders/me/positions", Some(&rider), Some(far))
            .await
            .1["recorded"],
        true
    );
    assert_eq!(
        s.call("POST", "/v1/riders/me/shift/end", Some(&rider), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        s.call("POST", "/v1/riders/me/shift/end", Some(&rider), None)
            .await
            .0,
        StatusCode::CONFLICT
    );
}

/// A salon registered on `s`, a consumer's token, and a booking of its
/// haircut three hours from now.
async fn salon_and_booking(s: &Server) -> (String, Value) {
    let admin = s.token(Role::Admin, "ops", None);
    let (_, body) = s
        .call("POST", "/v1/merchants", Some(&admin), Some(salon(3)))
        .await;
    let merchant = body["merchant_id"].as_str().unwrap().to_owned();
    let consumer = s.token(Role::Consumer, &uuid::Uuid::now_v7().to_string(), None);
    let booking =
        json!({"merchant_id": merchant, "service_id": "haircut", "slot_start": slot_in_hours(3)});
    (consumer, booking)
}

#[tokio::test]
async fn a_retried_booking_returns_the_same_visit_and_code_and_appends_nothing() {
    let s = Server::start().await;
    let (consumer, booking) = salon_and_booking(&s).await;
    let client = reqwest::Client::new();
    let send = |b: Value| {
        client
            .post(format!("{}/v1/visits", s.base))
            .bearer_auth(&consumer)
            .header("Idempotency-Key", "booking-1")
            .json(&b)
            .send()
    };
    let first: Value = send(booking.clone()).await.unwrap().json().await.unwrap();
    let head = s.state.hub.store.head().await.unwrap();
    let again = send(booking.clone()).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["visit_id"], again["visit_id"]);
    assert_eq!(first["redemption_code"], again["redemption_code"]);
    assert_eq!(
        s.state.hub.store.head().await.unwrap(),
        head,
        "the retry appended nothing"
    );
    let mut other = booking;
    other["slot_start"] = json!(slot_in_hours(4));
    let reused = send(other).await.unwrap();
    assert_eq!(
        reused.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "same key, different request"
    );
}

/// The text of the server's `/metrics`.
async fn scrape(client: &reqwest::Client, base: &str) -> String {
    let response = client.get(format!("{base}/metrics")).send().await.unwrap();
    response.text().await.unwrap()
}

/// The value of the first sample of `metric` whose labels contain `labels`.
fn sample(text: &str, metric: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let name = l.split(['{', ' ']).next().unwrap_or("");
            name == metric && l.contains(labels)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_commits_by_outcome_the_disk_syncs_and_the_read_models_lag() {
    let s = Server::start().await;
    let (consumer, booking) = salon_and_booking(&s).await;
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let sent = client
            .post(format!("{}/v1/visits", s.base))
            .bearer_auth(&consumer)
            .header("Idempotency-Key", "metered-booking")
            .json(&booking)
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), StatusCode::CREATED);
    }
    s.state.hub.caught_up().await.unwrap();
    let text = scrape(&client, &s.base).await;
    // Other tests of this binary share the process's recorder: at least.
    let at_least = |metric: &str, labels: &str, least: f64| {
        let value = sample(&text, metric, labels)
            .unwrap_or_else(|| panic!("no {metric}{{{labels}}} in /metrics:\n{text}"));
        assert!(
            value >= least,
            "{metric}{{{labels}}} = {value}, expected >= {least}"
        );
    };
    at_least("o2ohub_commits_total", r#"outcome="committed""#, 2.0);
    // Requests by method, route template and status.
    let booked = r#"method="POST",route="/v1/visits",status="201""#;
    at_least("o2ohub_http_requests_total", booked, 2.0);
    at_least("o2ohub_http_request_seconds_count", booked, 2.0);
    let unknown = client
        .get(format!(
            "{}/v1/no-such-route/{}",
            s.base,
            uuid::Uuid::now_v7()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let text = scrape(&client, &s.base).await;
    assert!(
        sample(
            &text,
            "o2ohub_http_requests_total",
            r#"route="unmatched",status="404""#
        )
        .is_some(),
        "a path no route serves is counted as unmatched, not by its path:\n{text}"
    );
    assert!(!text.contains("no-such-route"));
    at_least("o2ohub_commits_total", r#"outcome="replayed""#, 1.0);
    at_least("o2ohub_appended_events_total", "", 3.0);
    at_least("o2ohub_commit_seconds_count", "", 2.0);
    at_least("o2ohub_store_sync_seconds_count", "", 2.0);
    at_least("o2ohub_store_group_commits_count", "", 2.0);
    let head = s.state.hub.store.head().await.unwrap() as f64;
    assert_eq!(sample(&text, "o2ohub_store_head_position", ""), Some(head));
    assert_eq!(
        sample(&text, "o2ohub_projection_lag", ""),
        Some(0.0),
        "caught up before the scrape"
    );
}

#[tokio::test]
async fn bad_input_gets_a_named_4xx_and_writes_nothing() {
    let s = Server::start().await;
    let admin = s.token(Role::Admin, "ops", None);
    let consumer = s.token(Role::Consumer, &uuid::Uuid::now_v7().to_string(), None);
    let head = s.state.hub.store.head().await.unwrap();

    assert_eq!(
        s.call("POST", "/v1/merchants", None, Some(salon(1)))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.call("POST", "/v1/merchants", Some("garbage"), Some(salon(1)))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.call("POST", "/v1/merchants", Some(&consumer), Some(salon(1)))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    let mut bad = salon(1);
    bad["location"]["lat"] = json!(123.0);
    let (status, body) = s
        .call("POST", "/v1/merchants", Some(&admin), Some(bad))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("location.lat"))
    );

    let mut bad = salon(1);
    bad["service_area"] = json!({"kind": "polygon", "ring": [
        {"lat": 31.0, "lng": 121.0}, {"lat": 31.1, "lng": 121.1}, {"lat": 31.0, "lng": 121.1}, {"lat": 31.1, "lng": 121.0}]});
    let (status, body) = s
        .call("POST", "/v1/merchants", Some(&admin), Some(bad))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("service_area.ring")),
        "{body}"
    );

    let mut bad = salon(1);
    bad["service_area"] = json!({"kind": "radius", "meters": 0});
    assert_eq!(
        s.call("POST", "/v1/merchants", Some(&admin), Some(bad))
            .await
            .1["field"],
        "service_area.meters"
    );

    let (status, body) = s
        .call(
            "POST",
            "/v1/merchants",
            Some(&admin),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let resp = reqwest::Client::new()
        .post(format!("{}/v1/merchants", s.base))
        .bearer_auth(&admin)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let huge = json!({"name": "x".repeat(70_000)});
    assert_eq!(
        s.call("POST", "/v1/merchants", Some(&admin), Some(huge))
            .await
            .0,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let booking = json!({"merchant_id": MerchantId::new(), "service_id": "haircut", "slot_start": "2026-11-25T10:07:00Z"});
    let (status, body) = s
        .call("POST", "/v1/visits", Some(&consumer), Some(booking))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("slot_start")),
        "{body}"
    );
    let booking = json!({"merchant_id": MerchantId::new(), "service_id": "haircut", "slot_start": slot_in_hours(2)});
    assert_eq!(
        s.call("POST", "/v1/visits", Some(&consumer), Some(booking))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.call("GET", "/v1/nowhere", Some(&consumer), None).await.0,
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        s.state.hub.store.head().await.unwrap(),
        head,
        "nothing was written"
    );
}

#[tokio::test]
async fn consumers_find_merchants_and_free_slots() {
    let s = Server::start().await;
    let admin = s.token(Role::Admin, "ops", None);
    let consumer = s.token(Role::Consumer, &uuid::Uuid::now_v7().to_string(), None);
    let (_, body) = s
        .call("POST", "/v1/merchants", Some(&admin), Some(salon(1)))
        .await;
    let merchant = body["merchant_id"].as_str().unwrap().to_owned();
    let mut far = salon(1);
    far["location"] = json!({"lat": 31.30, "lng": 121.60});
    s.call("POST", "/v1/merchants", Some(&admin), Some(far))
        .await;
    s.state.hub.caught_up().await.unwrap();

    let near_me = "/v1/merchants/search?category=salon&lat=31.2310&lng=121.4740&k=5";
    let (status, body) = s.call("GET", near_me, Some(&consumer), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let found: Vec<&str> = body["merchants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["merchant_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        found,
        vec![merchant.as_str()],
        "only the salon whose 3 km area covers the point"
    );

    // One seat per slot: booking it removes the slot from the free list.
    let slot = slot_in_hours(2);
    let slots = format!(
        "/v1/merchants/{merchant}/slots?service_id=haircut&from={}&to={}",
        urlencode(&slot),
        urlencode(&slot)
    );
    let (status, body) = s.call("GET", &slots, Some(&consumer), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["slots"].as_array().unwrap().len(), 1);
    let booking = json!({"merchant_id": merchant, "service_id": "haircut", "slot_start": slot});
    assert_eq!(
        s.call("POST", "/v1/visits", Some(&consumer), Some(booking))
            .await
            .0,
        StatusCode::CREATED
    );
    s.state.hub.caught_up().await.unwrap();
    assert!(
        s.call("GET", &slots, Some(&consumer), None).await.1["slots"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    for (query, field) in [
        ("category=spa&lat=31.2&lng=121.4", "category"),
        ("category=salon&lat=95&lng=121.4", "lat"),
        ("category=salon&lat=31.2&lng=121.4&k=0", "k"),
        (
            "category=salon&lat=31.2&lng=121.4&max_distance_m=-1",
            "max_distance_m",
        ),
    ] {
        let (status, body) = s
            .call(
                "GET",
                &format!("/v1/merchants/search?{query}"),
                Some(&consumer),
                None,
            )
            .await;
        assert_eq!(
            (status, body["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{query}: {body}"
        );
    }
    assert_eq!(
        s.call(
            "GET",
            "/v1/merchants/search?category=salon",
            Some(&consumer),
            None
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// Every byte under `dir` (the log, snapshots, the vault).
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn an_order_is_paid_through_the_signed_webhook_made_ready_and_its_contact_erased() {
    let s = Server::start().await;
    let admin = s.token(Role::Admin, "ops", None);
    let (_, body) = s
        .call("POST", "/v1/merchants", Some(&admin), Some(salon(1)))
        .await;
    let merchant: MerchantId = body["merchant_id"].as_str().unwrap().parse().unwrap();
    let staff = s.token(
        Role::Staff,
        &uuid::Uuid::now_v7().to_string(),
        Some(merchant),
    );
    let consumer = s.token(Role::Consumer, &uuid::Uuid::now_v7().to_string(), None);
    let phone = "+8613912345678";
    let order = json!({
        "merchant_id": merchant,
        "lines": [{"sku": "noodles", "quantity": 2, "unit_price": {"minor": 1800, "currency": "CNY"}}],
        "drop_off": {"lat": 31.235, "lng": 121.48},
        "contact": {"name": "Mei", "phone": phone, "address": "Room 1203, 88 Century Avenue"}
    });
    let (status, body) = s
        .call("POST", "/v1/orders", Some(&consumer), Some(order.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["order_id"].as_str().unwrap().to_owned();
    assert_eq!(body["total"]["minor"], 3600);
    assert!(body["handover_code"].as_str().unwrap().len() == 9);

    // The payment provider's callback: a bad signature, a replay, then the real one (twice).
    let callback = json!({"order_id": id, "payment_ref": "pay_123", "amount": {"minor": 3600, "currency": "CNY"}}).to_string();
    let client = reqwest::Client::new();
    let post = |sig: String| {
        client
            .post(format!("{}/v1/payments/webhook", s.base))
            .header("O2O-Signature", sig)
            .body(callback.clone())
            .send()
    };
    let now = chrono::Utc::now().timestamp();
    let forged = o2ohub::api::payments::sign(b"not the secret", now, callback.as_bytes());
    assert_eq!(
        post(forged).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let stale = o2ohub::api::payments::sign(&s.payments, now - 3600, callback.as_bytes());
    assert_eq!(
        post(stale).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let good = o2ohub::api::payments::sign(&s.payments, now, callback.as_bytes());
    assert_eq!(post(good.clone()).await.unwrap().status(), StatusCode::OK);
    let head = s.state.hub.store.head().await.unwrap();
    let again: Value = post(good).await.unwrap().json().await.unwrap();
    assert_eq!(again["replayed"], true);
    assert_eq!(
        s.state.hub.store.head().await.unwrap(),
        head,
        "a retried callback changes nothing"
    );

    // The store accepts and marks it ready: a delivery enters the pool.
    let ready_by = (chrono::Utc::now() + chrono::Duration::minutes(15)).to_rfc3339();
    let (status, body) = s
        .call(
            "POST",
            &format!("/v1/orders/{id}/accept"),
            Some(&staff),
            Some(json!({"ready_by": ready_by})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .call(
            "POST",
            &format!("/v1/orders/{id}/ready"),
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["delivery_id"].is_string());
    s.state.hub.caught_up().await.unwrap();
    assert_eq!(
        s.state
            .hub
            .read
            .supply
            .read()
            .unwrap()
            .model
            .open_deliveries()
            .len(),
        1
    );
    let other_consumer = s.token(Role::Consumer, &uuid::Uuid::now_v7().to_string(), None);
    assert_eq!(
        s.call(
            "GET",
            &format!("/v1/orders/{id}"),
            Some(&other_consumer),
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    // The contact reads back until erasure; the phone number is nowhere on disk in the clear.
    let (_, body) = s
        .call("GET", &format!("/v1/orders/{id}"), Some(&consumer), None)
        .await;
    assert_eq!(body["contact"]["phone"], phone);
    assert!(
        !all_bytes(&s.dir)
            .windows(phone.len())
            .any(|w| w == phone.as_bytes()),
        "PII in the clear on disk"
    );
    assert!(!all_bytes(&s.dir).windows(11).any(|w| w == b"13912345678"));
    assert_eq!(
        s.call("DELETE", "/v1/me", Some(&consumer), None).await.0,
        StatusCode::OK
    );
    let (_, body) = s
        .call("GET", &format!("/v1/orders/{id}"), Some(&consumer), None)
        .await;
    assert_eq!(body["contact"], "erased");
    assert_eq!(body["status"], "ready", "the events stay");

    // Bad input on orders: a phone that is not E.164, an unknown merchant.
    let mut bad = order.clone();
    bad["contact"]["phone"] = json!("13912345678");
    let (status, body) = s
        .call("POST", "/v1/orders", Some(&consumer), Some(bad))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("contact.phone"))
    );
    let mut bad = order;
    bad["merchant_id"] = json!(MerchantId::new());
    assert_eq!(
        s.call("POST", "/v1/orders", Some(&consumer), Some(bad))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}
