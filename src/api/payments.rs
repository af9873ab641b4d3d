//! The payment provider's callback: `POST /v1/payments/webhook`, signed with
//! HMAC-SHA256 over `<timestamp>.<body>` in the `O2O-Signature: t=…,v1=…`
//! header. A bad signature, or a timestamp more than five minutes away from
//! now (a replay), is refused; a retried callback for the same payment is
//! answered like the first and changes nothing.

use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use o2ohub_events::{Actor, Money, OrderId, Role};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use warp::{Filter, Rejection, Reply};

use super::problem::Problem;
use super::request::{json, Body};
use super::{with_state, State};
use crate::command::{self, CommandContext, IdempotencyKey};
use crate::domain::order::{Order, OrderCommand};

/// How far a callback's timestamp may be from now, in seconds.
pub const REPLAY_WINDOW_S: i64 = 300;

/// The callback body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentCallback {
    /// The order paid for.
    pub order_id: OrderId,
    /// The provider's payment reference (unique per payment).
    pub payment_ref: String,
    /// The amount captured.
    pub amount: Money,
}

/// The signature header value for `body` at `timestamp`, as the provider
/// computes it (used by tests and by the provider simulator).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Checks a signature header against the body.
fn verify(secret: &[u8], header: &str, body: &[u8], now: i64) -> Result<(), Problem> {
    let bad = |why: &str| {
        Problem::unauthorized(format!("payment signature rejected: {why}")).field("O2O-Signature")
    };
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(bad("expected t=<unix seconds>,v1=<hex>"));
    };
    if (now - t).abs() > REPLAY_WINDOW_S {
        return Err(bad(
            "the timestamp is outside the 5-minute window (a replay?)",
        ));
    }
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&v1)
        .map_err(|_| bad("the signature does not match"))
}

/// The webhook route.
pub fn routes() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "payments" / "webhook")
        .and(warp::post())
        .and(warp::header::optional::<String>("o2o-signature"))
        .and(json::<PaymentCallback>())
        .and(with_state())
        .and_then(
            |signature: Option<String>, body: Body<PaymentCallback>, s: State| async move {
                let header = signature.ok_or_else(|| {
                    warp::reject::custom(
                        Problem::unauthorized("missing O2O-Signature").field("O2O-Signature"),
                    )
                })?;
                verify(
                    &s.payment_secret,
                    &header,
                    &body.raw,
                    Utc::now().timestamp(),
                )
                .map_err(warp::reject::custom)?;
                let c = body.value;
                let mut ctx = CommandContext::new(
                    Actor {
                        role: Role::PaymentProvider,
                        subject: "psp".into(),
                    },
                    Utc::now(),
                );
                // One payment reference pays once: a retried callback replays the first outcome.
                ctx.idempotency = Some(IdempotencyKey {
                    key: format!("payment_provider:psp:{}", c.payment_ref),
                    fingerprint: hex::encode(Sha256::digest(&body.raw)),
                });
                let pay = OrderCommand::Pay {
                    payment_ref: c.payment_ref.clone(),
                    amount: c.amount,
                };
                let done = command::execute::<Order>(
                    s.hub.store.as_ref(),
                    &c.order_id.stream(),
                    &pay,
                    &ctx,
                )
                .await
                .map_err(|e| warp::reject::custom(Problem::from(e)))?;
                Ok::<_, Rejection>(warp::reply::json(&json!({
                    "order_id": c.order_id, "status": "paid", "replayed": done.replayed,
                })))
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_within_the_window_only() {
        let secret = b"provider secret";
        let body = br#"{"order_id":"x"}"#;
        let header = sign(secret, 1_000_000, body);
        assert!(verify(secret, &header, body, 1_000_100).is_ok());
        assert!(
            verify(secret, &header, body, 1_000_400).is_err(),
            "replay outside the window"
        );
        assert!(
            verify(secret, &header, br#"{"order_id":"y"}"#, 1_000_100).is_err(),
            "tampered body"
        );
        assert!(
            verify(b"other", &header, body, 1_000_100).is_err(),
            "wrong secret"
        );
        assert!(
            verify(secret, "v1=00", body, 1_000_100).is_err(),
            "no timestamp"
        );
    }
}
