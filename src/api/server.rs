//! The HTTP server around the router: every request gets an id (the
//! caller's `X-Request-Id` when it is a sane one, a fresh UUIDv7 otherwise)
//! that is echoed in the response and carried by the `tracing` span every
//! log line of the request is written in; a 405 names the methods the path
//! does serve in `Allow`; shutdown drains in-flight requests.
//!
//! This sits below warp (a hyper service wrapping `warp::service`) because a
//! warp filter cannot both open a span around the rest of the chain and hand
//! a generated id to the response.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use tracing::Instrument;
use warp::http::header::{HeaderName, HeaderValue, ALLOW};
use warp::http::StatusCode;
use warp::hyper::server::conn::AddrIncoming;
use warp::hyper::service::{make_service_fn, service_fn, Service};
use warp::hyper::{Body, Request, Response, Server};

use super::{routes, State};

/// The header carrying the request id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-chosen request id kept.
pub const MAX_REQUEST_ID: usize = 128;

/// The caller's id if it is 1 to [`MAX_REQUEST_ID`] characters of
/// `[A-Za-z0-9._:-]` (safe in logs and headers); otherwise a fresh one.
pub fn request_id(incoming: Option<&HeaderValue>) -> String {
    incoming
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Runs one request through the router inside its span, with the state in
/// its extensions for the handlers ([`super::with_state`]).
async fn handle<S>(
    mut router: S,
    state: State,
    mut req: Request<Body>,
) -> Result<Response<Body>, Infallible>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    let id = request_id(req.headers().get(&REQUEST_ID));
    let header = HeaderValue::from_str(&id).expect("request ids are visible ASCII");
    // Handlers see the id the response will carry.
    req.headers_mut().insert(REQUEST_ID, header.clone());
    req.extensions_mut().insert(state);
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = router.call(req).instrument(span).await?;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allow = routes::allowed_methods(&path).join(", ");
        if let Ok(value) = HeaderValue::from_str(&allow) {
            response.headers_mut().insert(ALLOW, value);
        }
    }
    response.headers_mut().insert(REQUEST_ID, header);
    Ok(response)
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
/// Returns the bound address and the server future.
pub fn serve(
    state: State,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()>), warp::hyper::Error> {
    let router = warp::service(super::routes());
    let make = make_service_fn(move |_conn| {
        let (router, state) = (router.clone(), state.clone());
        async move {
            Ok::<_, Infallible>(service_fn(move |req| {
                handle(router.clone(), state.clone(), req)
            }))
        }
    });
    let mut incoming = AddrIncoming::bind(&addr)?;
    // Small request/response exchanges: do not wait for Nagle.
    incoming.set_nodelay(true);
    let bound = incoming.local_addr();
    let server = Server::builder(incoming)
        .http1_pipeline_flush(true)
        .serve(make)
        .with_graceful_shutdown(shutdown);
    Ok((bound, async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "server error");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_and_others_replaced() {
        let kept = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(request_id(Some(&kept)), "abc-123_x.y:z");
        for bad in ["", "has space", "semi;colon", &"x".repeat(129)] {
            let value = HeaderValue::from_str(bad).unwrap();
            let id = request_id(Some(&value));
            assert_ne!(id, bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        }
        assert!(uuid::Uuid::parse_str(&request_id(None)).is_ok());
    }
}
