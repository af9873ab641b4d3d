//! Request metrics and the access log: every response is counted and timed
//! by method, route (its template in [`ROUTES`](super::routes::ROUTES), or
//! `unmatched`, so a scan of random paths cannot grow the label set) and
//! status. The metric handles of each combination are made once and kept:
//! making them per request (a key, its labels, a registry look-up) was a
//! visible share of a cheap request's CPU.

use metrics::{Counter, Histogram};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use warp::log::Info;

use super::routes;

/// The route label of requests no route serves.
const UNMATCHED: &str = "unmatched";

/// The handles of one (method, route, status).
struct Handles {
    requests: Counter,
    seconds: Histogram,
}

/// What a request is counted by: method, route, status.
type Labels = (&'static str, &'static str, u16);

/// Request metrics, shared by the router's clones.
#[derive(Clone, Default)]
pub struct Access {
    handles: Arc<Mutex<HashMap<Labels, Handles>>>,
}

impl Access {
    /// Counts and times one answered request, and logs it at debug level.
    pub fn record(&self, info: Info<'_>) {
        let status = info.status().as_u16();
        let (method, route) = routes::route_of(info.method().as_str(), info.path())
            .map_or((known_method(info.method()), UNMATCHED), |(m, t)| (*m, *t));
        let mut handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        let of_request = handles.entry((method, route, status)).or_insert_with(|| {
            let labels = [
                ("method", method.to_owned()),
                ("route", route.to_owned()),
                ("status", status.to_string()),
            ];
            Handles {
                requests: metrics::counter!("o2ohub_http_requests_total", &labels),
                seconds: metrics::histogram!("o2ohub_http_request_seconds", &labels),
            }
        });
        of_request.requests.increment(1);
        of_request.seconds.record(info.elapsed().as_secs_f64());
        drop(handles);
        tracing::debug!(method = %info.method(), path = info.path(), status, "request");
    }
}

/// The method's name if it is one HTTP defines, else `OTHER` (so a client
/// cannot make up label values).
fn known_method(method: &warp::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "OTHER",
    }
}
