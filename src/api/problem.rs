//! Every error the API returns, as RFC 9457 `application/problem+json`: a
//! stable `type`, a `title`, the HTTP `status`, a readable `detail`, and the
//! `field` at fault when one is. All mapping from domain, command, store and
//! request errors to statuses happens here, in one place.

use serde::Serialize;
use std::convert::Infallible;
use warp::http::StatusCode;
use warp::reject::Reject;
use warp::{Rejection, Reply};

use crate::command::CommandError;
use crate::domain::DomainError;
use crate::store::StoreError;
use o2ohub_events::ValueError;

/// Base of the problem `type` URIs.
const TYPE_BASE: &str = "https://o2ohub.dev/problems/";

/// An API error.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Stable identifier of the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short human summary of the kind.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time, and what to do.
    pub detail: String,
    /// The request field at fault, dotted for nested fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Reject for Problem {}

impl Problem {
    /// A problem of a kind.
    pub fn new(
        status: StatusCode,
        kind: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            kind: format!("{TYPE_BASE}{kind}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
        }
    }

    /// Names the field at fault.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400: the request cannot be read.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request could not be read",
            detail,
        )
    }

    /// 401: no or bad credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed", detail)
    }

    /// 404: no such thing.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 422: a value is invalid.
    pub fn invalid(e: &ValueError) -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-value",
            "A value is invalid",
            e.reason.clone(),
        )
        .field(e.field.clone())
    }

    /// 429: slow down.
    pub fn too_many(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            detail,
        )
    }

    /// 500/503: our fault; the detail is logged, not shown.
    pub fn internal(status: StatusCode, context: &str) -> Self {
        Problem::new(
            status,
            "internal",
            "The hub could not complete the request",
            format!("{context}; retry later"),
        )
    }

    /// The reply.
    pub fn reply(&self) -> warp::reply::Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = warp::reply::json(self);
        let reply = warp::reply::with_header(body, "content-type", "application/problem+json");
        warp::reply::with_status(reply, status).into_response()
    }
}

impl From<&ValueError> for Problem {
    fn from(e: &ValueError) -> Self {
        Problem::invalid(e)
    }
}

impl From<ValueError> for Problem {
    fn from(e: ValueError) -> Self {
        Problem::invalid(&e)
    }
}

impl From<DomainError> for Problem {
    fn from(e: DomainError) -> Self {
        let detail = e.to_string();
        match e {
            DomainError::NotFound { .. } => Problem::not_found(detail),
            DomainError::AlreadyExists { .. } => Problem::new(
                StatusCode::CONFLICT,
                "already-exists",
                "It exists already",
                detail,
            ),
            DomainError::IllegalTransition { .. } => Problem::new(
                StatusCode::CONFLICT,
                "illegal-transition",
                "Not possible in the current state",
                detail,
            ),
            DomainError::SlotFull { .. } => Problem::new(
                StatusCode::CONFLICT,
                "slot-full",
                "The slot is fully booked",
                detail,
            )
            .field("slot_start"),
            DomainError::MerchantUnavailable { .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "merchant-unavailable",
                "The merchant cannot take this now",
                detail,
            ),
            DomainError::NotYours(_) => Problem::forbidden(detail),
            DomainError::RedemptionLocked { .. } => Problem::new(
                StatusCode::LOCKED,
                "redemption-locked",
                "Too many wrong codes for this visit",
                detail,
            )
            .field("code"),
            DomainError::Invalid(v) => Problem::invalid(&v),
        }
    }
}

impl From<CommandError> for Problem {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Domain(d) => d.into(),
            CommandError::Contended { .. } => Problem::new(
                StatusCode::CONFLICT,
                "contended",
                "Too many concurrent changes",
                e.to_string(),
            ),
            CommandError::KeyReused => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "The idempotency key was used for another request",
                "use a fresh Idempotency-Key for a different request",
            )
            .field("Idempotency-Key"),
            CommandError::Decode(d) => {
                tracing::error!(error = %d, "stored event unreadable");
                Problem::internal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "a stored event could not be read",
                )
            }
            CommandError::Store(s) => s.into(),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "event store failure");
        match e {
            StoreError::Closed => {
                Problem::internal(StatusCode::SERVICE_UNAVAILABLE, "the hub is shutting down")
            }
            _ => Problem::internal(
                StatusCode::SERVICE_UNAVAILABLE,
                "the event store is unavailable",
            ),
        }
    }
}

/// Turns any rejection into a problem reply; nothing a client sends yields
/// a 5xx from here.
pub async fn recover(rejection: Rejection) -> Result<warp::reply::Response, Infallible> {
    let problem = if let Some(p) = rejection.find::<Problem>() {
        p.clone()
    } else if rejection.find::<warp::ext::MissingExtension>().is_some() {
        // The router ran without the state `serve` puts into every request
        // (`super::with_state`): a wiring fault of ours, never the client's.
        tracing::error!("a request reached the router without the hub's state");
        Problem::internal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the router is not wired to the hub",
        )
    } else if rejection.is_not_found() {
        // Its own type, so a client (and tests/openapi.rs) can tell a path
        // the router does not serve from a thing that does not exist.
        Problem::new(
            StatusCode::NOT_FOUND,
            "no-route",
            "No such route",
            "no route matches this path; see docs/openapi.yaml",
        )
    } else if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        Problem::bad_request(format!("the JSON body does not match the schema: {e}"))
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        Problem::bad_request(format!("the query string does not match the schema: {e}"))
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "The body is too large",
            "bodies are limited to 64 KiB",
        )
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Send JSON",
            "the body must be application/json",
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "see docs/openapi.yaml",
        )
    } else if let Some(e) = rejection.find::<warp::reject::MissingHeader>() {
        Problem::unauthorized(format!("missing header {}", e.name())).field(e.name().to_owned())
    } else if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        Problem::bad_request(format!("invalid header {}", e.name())).field(e.name().to_owned())
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        Problem::new(
            StatusCode::LENGTH_REQUIRED,
            "length-required",
            "Length required",
            "send a Content-Length",
        )
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        Problem::bad_request("the request could not be handled")
    };
    Ok(problem.reply())
}
