//! The demo's HTTP client: every actor talks to the hub through the public
//! API over a real socket, with its own bearer token. Requests share a
//! bounded number of in-flight slots, carry an `Idempotency-Key` (so a
//! retried POST after a dropped connection changes nothing), and every
//! failure is counted by route and status instead of stopping the day.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Attempts of a request whose connection failed or that got a 5xx.
const ATTEMPTS: u32 = 3;

/// What a call got back.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The JSON body (problem+json on errors; `Null` when there was none).
    pub body: Value,
}

impl Reply {
    /// Whether the hub said yes.
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The string field `name` of the body.
    pub fn text(&self, name: &str) -> Option<String> {
        self.body
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

/// Counts of requests and of failures by kind.
#[derive(Default)]
pub struct Errors {
    /// Requests sent (after retries, one per call).
    pub requests: AtomicU64,
    /// Calls that ended in an unexpected status or no answer.
    pub failed: AtomicU64,
    /// Failures by "METHOD route → status: detail".
    kinds: Mutex<BTreeMap<String, u64>>,
}

impl Errors {
    /// Notes a failure of `what`.
    pub fn note(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        *self
            .kinds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(what)
            .or_default() += 1;
    }

    /// Failures by kind, most frequent first.
    pub fn kinds(&self) -> Vec<(String, u64)> {
        let mut kinds: Vec<_> = self
            .kinds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        kinds
    }

    /// Whether failures are systematic rather than incidental: more than
    /// half of at least fifty requests failed.
    pub fn systematic(&self) -> bool {
        let (n, f) = (
            self.requests.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        n >= 50 && f * 2 > n
    }
}

/// A client of one hub.
pub struct Hub {
    /// `http://host:port`.
    base: String,
    /// The connection pool.
    http: reqwest::Client,
    /// Bounds requests in flight, so the day cannot swamp the hub.
    slots: Semaphore,
    /// Failures seen.
    pub errors: Errors,
}

/// Routes are named without their ids in error counts (`/v1/orders/{id}/ready`).
fn route_name(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    path.split('/')
        .map(|seg| {
            if uuid::Uuid::parse_str(seg).is_ok() {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl Hub {
    /// A client of the hub at `base` with at most `in_flight` requests at once.
    pub fn new(base: String, in_flight: usize) -> Hub {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(in_flight)
            .build()
            .expect("a plain HTTP client builds");
        Hub {
            base,
            http,
            slots: Semaphore::new(in_flight.max(1)),
            errors: Errors::default(),
        }
    }

    /// The hub's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The underlying HTTP client (for streams that hold no slot).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends a request built elsewhere (one that is not bearer-authenticated,
    /// like the payment provider's callback) within the in-flight bound;
    /// counts it, and notes a failure under `route`.
    pub async fn send(&self, route: &str, req: reqwest::RequestBuilder) -> bool {
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        self.errors.requests.fetch_add(1, Ordering::Relaxed);
        match req.send().await {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                self.errors.note(format!("{route} → {}", r.status()));
                false
            }
            Err(e) => {
                self.errors.note(format!("{route} → no answer: {e}"));
                false
            }
        }
    }

    /// Sends one request; retries connection failures and 5xx with the same
    /// idempotency key. `expected` statuses (besides 2xx) are answers, not
    /// failures — a full slot is part of the day.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        key: Option<&str>,
        expected: &[StatusCode],
    ) -> Option<Reply> {
        let _slot = self.slots.acquire().await.ok()?;
        self.errors.requests.fetch_add(1, Ordering::Relaxed);
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(token);
            if let Some(k) = key {
                req = req.header("idempotency-key", k);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    if status.is_server_error() {
                        last = format!("{status}: {}", detail(&body));
                        continue;
                    }
                    if !status.is_success() && !expected.contains(&status) {
                        self.errors.note(format!(
                            "{method} {} → {status}: {}",
                            route_name(path),
                            detail(&body)
                        ));
                    }
                    return Some(Reply { status, body });
                }
                Err(e) => last = format!("no answer: {e}"),
            }
        }
        self.errors
            .note(format!("{method} {} → {last}", route_name(path)));
        None
    }

    /// A POST with a JSON body and an idempotency key.
    pub async fn post(&self, path: &str, token: &str, body: &Value, key: &str) -> Option<Reply> {
        self.call(Method::POST, path, token, Some(body), Some(key), &[])
            .await
    }

    /// A POST that needs no idempotency key (position fixes: the newest wins).
    pub async fn post_unkeyed(&self, path: &str, token: &str, body: &Value) -> Option<Reply> {
        self.call(Method::POST, path, token, Some(body), None, &[])
            .await
    }

    /// A GET.
    pub async fn get(&self, path: &str, token: &str) -> Option<Reply> {
        self.call(Method::GET, path, token, None, None, &[]).await
    }
}

/// The `detail` of a problem+json body, shortened.
fn detail(body: &Value) -> String {
    let d = body
        .get("detail")
        .and_then(Value::as_str)
        .unwrap_or("(no detail)");
    d.chars().take(90).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_counted_without_their_ids() {
        assert_eq!(
            route_name("/v1/orders/0190f2a4-8d9c-7f3e-9a41-3c2b1d0e5f67/ready"),
            "/v1/orders/{id}/ready"
        );
        assert_eq!(
            route_name("/v1/merchants/search?lat=1"),
            "/v1/merchants/search"
        );
    }

    #[test]
    fn failures_are_systematic_only_when_most_requests_fail() {
        let e = Errors::default();
        e.requests.store(100, Ordering::Relaxed);
        for _ in 0..10 {
            e.note("POST /v1/visits → 500".into());
        }
        assert!(!e.systematic());
        for _ in 0..50 {
            e.note("GET /v1/riders/me/board → no answer".into());
        }
        assert!(e.systematic());
        assert_eq!(e.kinds()[0].1, 50);
    }
}
