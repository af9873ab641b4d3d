//! The HTTP API (warp). One shape per route: parse the request into a typed
//! command, let the aggregate decide through the command layer, map the
//! outcome to a response; errors become problem+json in [`problem`].
//!
//! - [`auth`]: bearer JWTs and the caller's role and scope.
//! - [`problem`]: RFC 9457 errors and the mapping of every error to a status.
//! - [`request`]: JSON bodies, idempotency keys, command contexts.
//! - [`server`]: the hyper service around the router: request ids, `Allow`, shutdown.
//! - [`routes`]: the route table (what the spec lists; the `Allow` of a 405).
//! - [`ops`]: health, readiness and Prometheus metrics.
//! - [`discovery`]: merchant search and free slots, from the search read model.
//! - [`operators`], [`consumers`], [`staff`], [`riders`]: each audience's routes.
//! - [`orders`]: delivery orders, from placement to the dispatch pool.
//! - [`deliveries`]: the rider's side of dispatch — offers over SSE, accept,
//!   decline, pickup, hand-over, route with ETAs.
//! - [`payments`]: the payment provider's signed callback.
//!
//! **Architecture Invariant:** only `src/api` knows HTTP.

pub mod access;
pub mod auth;
pub mod consumers;
pub mod deliveries;
pub mod discovery;
pub mod operators;
pub mod ops;
pub mod orders;
pub mod payments;
pub mod problem;
pub mod request;
pub mod riders;
pub mod routes;
pub mod server;
pub mod staff;

use std::convert::Infallible;
use std::sync::Arc;
use warp::{Filter, Reply};

use crate::hub::Hub;
use crate::secrets::Secrets;

/// Everything a handler needs.
pub struct AppState {
    /// The store and read models.
    pub hub: Hub,
    /// Token keys.
    pub keys: Arc<auth::Keys>,
    /// Derives and digests one-time codes.
    pub code_key: Vec<u8>,
    /// Renders `/metrics`.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Which position reports became events, per rider (sampling).
    pub positions: riders::Sampler,
    /// Recent wrong codes per store (rate limiting).
    pub guesses: staff::GuessLimiter,
    /// Consumer PII keys.
    pub vault: crate::vault::Vault,
    /// Checks the payment provider's signatures.
    pub payment_secret: Vec<u8>,
}

/// Shared state handle.
pub type State = Arc<AppState>;

impl AppState {
    /// State over a running hub.
    pub fn new(
        hub: Hub,
        secrets: &Secrets,
        vault: crate::vault::Vault,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Self {
        AppState {
            hub,
            vault,
            payment_secret: secrets.payments.clone(),
            keys: Arc::new(auth::Keys::from_secret(&secrets.jwt)),
            code_key: secrets.codes.clone(),
            metrics,
            positions: riders::Sampler::default(),
            guesses: staff::GuessLimiter::default(),
        }
    }
}

/// Passes the state into a handler: the server puts it in each request's
/// extensions ([`serve`]), so the filter tree captures nothing. warp clones
/// the untried branches of the tree for every request; a tree holding the
/// state would take and drop a reference to it per route per request, all
/// on one contended counter.
pub fn with_state() -> impl Filter<Extract = (State,), Error = warp::Rejection> + Copy {
    warp::ext::get::<State>()
}

/// Every route, with problem+json for every rejection and request metrics.
/// Handlers read the state from the request's extensions ([`with_state`]).
pub fn routes() -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let api = ops::routes()
        .or(discovery::routes())
        .or(operators::routes())
        .or(consumers::routes())
        .or(staff::routes())
        .or(orders::routes())
        .or(payments::routes())
        .or(riders::routes())
        .or(deliveries::routes());
    let access = access::Access::default();
    api.recover(problem::recover)
        .with(warp::log::custom(move |info| access.record(info)))
}

pub use server::serve;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_router_without_the_state_answers_500_not_a_client_error() {
        // `serve` always puts the state in; a router wired without it is our
        // fault, and must not look like the client's.
        let response = warp::test::request()
            .method("GET")
            .path("/v1/merchants/search?category=salon&lat=31.2&lng=121.4")
            .header("authorization", "Bearer x")
            .reply(&routes())
            .await;
        assert_eq!(response.status(), 500);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["title"], "The hub could not complete the request");
        // Paths no route serves are still a 404.
        let response = warp::test::request()
            .path("/nowhere")
            .reply(&routes())
            .await;
        assert_eq!(response.status(), 404);
    }
}
