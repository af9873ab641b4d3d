//! Every request has an id: the caller's `X-Request-Id` when it is a sane
//! one, a fresh one otherwise; it comes back in the response and is on the
//! log lines written while the request was handled.

mod support;

use o2ohub_events::Role;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Log output, shared with the subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines_with(&self, needle: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn ids_are_echoed_and_on_the_requests_log_lines() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("o2ohub=debug"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let hub = support::Hub::start().await;
    let admin = hub.token(Role::Admin, "ops", None);

    // The caller's id is kept, echoed, and on the request's log line.
    let resp = hub
        .client
        .get(format!("{}/v1/supply", hub.base))
        .bearer_auth(&admin)
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-me-123");
    let lines = logs.lines_with("trace-me-123");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("status=200") && l.contains("/v1/supply")),
        "no log line of the request carries its id: {lines:?}"
    );

    // Without one (or with an unsafe one) the hub makes one up, and logs it.
    for sent in [None, Some("bad id; drop table")] {
        let mut req = hub.client.get(format!("{}/v1/nowhere", hub.base));
        if let Some(id) = sent {
            req = req.header("x-request-id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 404);
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        let lines = logs.lines_with(&id);
        assert!(
            lines.iter().any(|l| l.contains("status=404")),
            "no log line carries the generated id {id}"
        );
        assert!(
            logs.lines_with("drop table").is_empty(),
            "an unsafe id was logged"
        );
    }

    // Two requests, two ids.
    let a = hub.call("GET", "/healthz", None, None).await;
    let b = hub.call("GET", "/healthz", None, None).await;
    assert_ne!(a.headers["x-request-id"], b.headers["x-request-id"]);
}
