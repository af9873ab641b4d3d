//! What every command route shares: a JSON body read within a size limit
//! (kept as bytes too, for the idempotency fingerprint), the optional
//! `Idempotency-Key`, and the command context built from them.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use warp::{Filter, Rejection};

use super::auth::Principal;
use super::problem::Problem;
use crate::command::{CommandContext, IdempotencyKey};

/// Largest body accepted.
pub const MAX_BODY: u64 = 64 * 1024;

/// A parsed JSON body with its raw bytes.
pub struct Body<T> {
    /// The value.
    pub value: T,
    /// The bytes as sent.
    pub raw: Bytes,
}

/// Reads a JSON body of type `T` (at most [`MAX_BODY`] bytes).
pub fn json<T: DeserializeOwned + Send>(
) -> impl Filter<Extract = (Body<T>,), Error = Rejection> + Clone {
    warp::body::content_length_limit(MAX_BODY)
        .and(warp::body::bytes())
        .and_then(|raw: Bytes| async move {
            match serde_json::from_slice::<T>(&raw) {
                Ok(value) => Ok(Body { value, raw }),
                Err(e) => Err(warp::reject::custom(body_problem(&e))),
            }
        })
}

/// A 400 or 422 naming what serde could not read.
fn body_problem(e: &serde_json::Error) -> Problem {
    let text = e.to_string();
    // serde names the field in "missing field `x`" / "unknown field `x`";
    // the domain's value errors read "field: reason".
    let field = text.split('`').nth(1).map(str::to_owned).or_else(|| {
        let (head, _) = text.split_once(": ")?;
        head.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            .then(|| head.to_owned())
    });
    let problem = if e.is_data() {
        Problem::new(
            warp::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "The body does not match the schema",
            text.clone(),
        )
    } else {
        Problem::bad_request(format!("the body is not valid JSON: {text}"))
    };
    match field {
        Some(f) if e.is_data() => problem.field(f),
        _ => problem,
    }
}

/// The optional `Idempotency-Key` header.
pub fn idempotency_key() -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("idempotency-key").and_then(|key: Option<String>| async move {
        match key {
            Some(k) if k.is_empty() || k.len() > 255 || !k.is_ascii() => Err(warp::reject::custom(
                Problem::bad_request("an Idempotency-Key is 1 to 255 ASCII characters")
                    .field("Idempotency-Key"),
            )),
            other => Ok(other),
        }
    })
}

/// The context of a command sent by `principal`: its actor, a correlation id,
/// and its idempotency key scoped to the caller and fingerprinted with the
/// route and body, so a key reused for another request is refused.
pub fn context(
    principal: &Principal,
    key: Option<String>,
    route: &str,
    raw: &[u8],
) -> CommandContext {
    let mut ctx = CommandContext::new(principal.actor(), crate::clock::now());
    ctx.idempotency = key.map(|k| {
        let mut h = Sha256::new();
        h.update(route.as_bytes());
        h.update([0]);
        h.update(raw);
        IdempotencyKey {
            key: format!("{}:{}:{k}", principal.role, principal.subject),
            fingerprint: hex::encode(h.finalize()),
        }
    });
    ctx
}
