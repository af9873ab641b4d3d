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
            let mut de = serde_json::Deserializer::from_slice(&raw);
            let value = serde_path_to_error::deserialize::<_, T>(&mut de)
                .map_err(|e| warp::reject::custom(body_problem(&e)))?;
            de.end().map_err(|e| {
                warp::reject::custom(Problem::bad_request(format!(
                    "the body is not valid JSON: {e}"
                )))
            })?;
            Ok::<_, Rejection>(Body { value, raw })
        })
}

/// A 400 (not JSON) or 422 (JSON of the wrong shape) naming the field at
/// fault: the path serde was at (`lines[0].unit_price.minor`), or the field
/// a missing/unknown-field or value error names.
fn body_problem(e: &serde_path_to_error::Error<serde_json::Error>) -> Problem {
    let inner = e.inner();
    let text = inner.to_string();
    if !inner.is_data() {
        return Problem::bad_request(format!("the body is not valid JSON: {text}"));
    }
    let path = e.path().to_string();
    let named = if text.starts_with("missing field `") || text.starts_with("unknown field `") {
        text.split('`').nth(1).map(str::to_owned)
    } else {
        // The domain's value errors read "field: reason".
        text.split_once(": ").and_then(|(head, _)| {
            head.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                .then(|| head.to_owned())
        })
    };
    let field = match (path.as_str(), named) {
        (".", Some(f)) => f,
        (".", None) => "body".to_owned(),
        (p, Some(f)) if !p.ends_with(&f) => format!("{p}.{f}"),
        (p, _) => p.to_owned(),
    };
    Problem::new(
        warp::http::StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-body",
        "The body does not match the schema",
        text,
    )
    .field(field)
}

/// The optional `Idempotency-Key` header.
pub fn idempotency_key() -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("idempotency-key").and_then(|key: Option<String>| async move {
        match key {
            Some(k)
                if k.is_empty()
                    || k.len() > 255
                    || !k.bytes().all(|b| (0x20..=0x7e).contains(&b)) =>
            {
                Err(warp::reject::custom(
                    Problem::bad_request(
                        "an Idempotency-Key is 1 to 255 printable ASCII characters",
                    )
                    .field("Idempotency-Key"),
                ))
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn problem<T: DeserializeOwned>(body: &str) -> Problem {
        let mut de = serde_json::Deserializer::from_str(body);
        let e = serde_path_to_error::deserialize::<_, T>(&mut de)
            .err()
            .expect("the body is refused");
        body_problem(&e)
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        sku: String,
        unit_price: o2ohub_events::Money,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        lines: Vec<Line>,
        drop_off: o2ohub_events::LatLng,
    }

    #[test]
    fn body_errors_name_the_field_at_fault() {
        let cases = [
            (
                r#"{"lines":[{"sku":"a","unit_price":{"minor":1e30,"currency":"EUR"}}],"drop_off":{"lat":0,"lng":0}}"#,
                "lines[0].unit_price.minor",
            ),
            (
                r#"{"lines":[],"drop_off":{"lat":100,"lng":0}}"#,
                "drop_off.lat",
            ),
            (r#"{"lines":[]}"#, "drop_off"),
            (
                r#"{"lines":[{"sku":"a"}],"drop_off":{"lat":0,"lng":0}}"#,
                "lines[0].unit_price",
            ),
            (
                r#"{"lines":[],"drop_off":{"lat":0,"lng":0},"extra":1}"#,
                "extra",
            ),
        ];
        for (body, field) in cases {
            let p = problem::<Order>(body);
            assert_eq!(
                (p.status, p.field.as_deref()),
                (422, Some(field)),
                "{body}: {}",
                p.detail
            );
        }
        let p = problem::<Order>("{not json");
        assert_eq!(p.status, 400);
    }

    #[tokio::test]
    async fn idempotency_keys_are_printable_ascii() {
        async fn key(value: &str) -> Result<Option<String>, Rejection> {
            warp::test::request()
                .header("idempotency-key", value)
                .filter(&idempotency_key())
                .await
        }
        assert_eq!(key("retry-1").await.unwrap(), Some("retry-1".to_owned()));
        assert!(key("tab\there").await.is_err(), "a tab is not printable");
    }
}
