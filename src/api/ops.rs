//! Operations routes: liveness, readiness and Prometheus metrics.

use serde_json::json;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::problem::Problem;
use super::{with_state, State};

/// Read models further behind the log than this are not ready.
const READY_LAG: u64 = 1_000;

/// `GET /healthz`, `GET /readyz`, `GET /metrics`.
pub fn routes() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let health = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&json!({"status": "ok"})));
    let ready = warp::path!("readyz")
        .and(warp::get())
        .and(with_state())
        .and_then(ready);
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_state())
        .and_then(|s: State| async move {
            // The read models' lag is read at scrape time, as a collector would
            // (the relay reports its own every second).
            if let Ok(head) = s.hub.store.head().await {
                metrics::gauge!("o2ohub_store_head_position").set(head as f64);
                metrics::gauge!("o2ohub_projection_lag")
                    .set(head.saturating_sub(s.hub.read.position()) as f64);
            }
            let text = s.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
            Ok::<_, Rejection>(warp::reply::with_header(
                text,
                "content-type",
                "text/plain; version=0.0.4",
            ))
        });
    health.or(ready).or(metrics)
}

async fn ready(state: State) -> Result<warp::reply::Response, Rejection> {
    // Kafka lag is reported, not gated on: a broker outage delays
    // publication, and the hub keeps accepting commands meanwhile.
    let relay_lag = state.hub.relay_lag().await.ok().flatten();
    match state.hub.lag().await {
        Ok(lag) if lag <= READY_LAG => Ok(warp::reply::json(
            &json!({"status": "ready", "projection_lag": lag, "relay_lag": relay_lag}),
        )
        .into_response()),
        Ok(lag) => Ok(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "Read models are catching up",
            format!("read models are {lag} events behind the log"),
        )
        .reply()),
        Err(e) => Ok(Problem::from(e).reply()),
    }
}
