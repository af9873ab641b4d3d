//! Consumers' routes: book, reschedule and cancel visits; see their own
//! visits and orders.

use o2ohub_events::{ConsumerId, MerchantId, Role, SlotStart, VisitId};
use serde::Deserialize;
use serde_json::json;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::{principal, Principal};
use super::operators::id_of;
use super::problem::Problem;
use super::request::{context, idempotency_key, json, Body};
use super::{with_state, State};
use crate::command::{self, BookVisit};
use crate::domain::code::OneTimeCode;
use crate::domain::visit::Visit;

/// Booking request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookRequest {
    /// The store.
    pub merchant_id: MerchantId,
    /// The service.
    pub service_id: String,
    /// The slot (RFC 3339, on the 15-minute grid).
    pub slot_start: SlotStart,
}

/// Reschedule request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    /// The new slot.
    pub slot_start: SlotStart,
}

/// Cancel request.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why (optional).
    #[serde(default)]
    pub reason: String,
}

/// The redemption code of a visit, derived from the hub's code key.
pub fn visit_code(key: &[u8], visit: &VisitId) -> OneTimeCode {
    OneTimeCode::derive(key, visit.stream().as_bytes())
}

fn consumer(p: &Principal) -> Result<ConsumerId, Rejection> {
    p.require(&[Role::Consumer]).map_err(warp::reject::custom)?;
    p.subject_id(ConsumerId::parse)
        .map_err(warp::reject::custom)
}

/// Loads a visit and checks it is the caller's.
async fn own_visit(s: &State, p: &Principal, id: VisitId) -> Result<(), Rejection> {
    let me = consumer(p)?;
    let (visit, _) = command::load::<Visit>(s.hub.store.as_ref(), &id.stream())
        .await
        .map_err(|e| warp::reject::custom(Problem::from(e)))?;
    match visit.details() {
        None => Err(warp::reject::custom(Problem::not_found("no such visit"))),
        Some(v) if v.consumer_id != me => Err(warp::reject::custom(Problem::forbidden(
            "this visit is another consumer's",
        ))),
        Some(_) => Ok(()),
    }
}

/// Consumer routes.
pub fn routes() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let book = warp::path!("v1" / "visits")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<BookRequest>())
        .and(with_state())
        .and_then(book);
    let reschedule = warp::path!("v1" / "visits" / VisitId / "reschedule")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<RescheduleRequest>())
        .and(with_state())
        .and_then(
            |id: VisitId, p: Principal, key, body: Body<RescheduleRequest>, s: State| async move {
                own_visit(&s, &p, id).await?;
                let ctx = context(
                    &p,
                    key,
                    &format!("POST /v1/visits/{id}/reschedule"),
                    &body.raw,
                );
                command::reschedule_visit(s.hub.store.as_ref(), id, body.value.slot_start, &ctx)
                    .await
                    .map_err(|e| warp::reject::custom(Problem::from(e)))?;
                Ok::<_, Rejection>(warp::reply::json(
                    &json!({"visit_id": id, "slot_start": body.value.slot_start}),
                ))
            },
        );
    let cancel = warp::path!("v1" / "visits" / VisitId / "cancel")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<CancelRequest>())
        .and(with_state())
        .and_then(
            |id: VisitId, p: Principal, key, body: Body<CancelRequest>, s: State| async move {
                own_visit(&s, &p, id).await?;
                let ctx = context(&p, key, &format!("POST /v1/visits/{id}/cancel"), &body.raw);
                command::cancel_visit(s.hub.store.as_ref(), id, &body.value.reason, &ctx)
                    .await
                    .map_err(|e| warp::reject::custom(Problem::from(e)))?;
                Ok::<_, Rejection>(warp::reply::json(
                    &json!({"visit_id": id, "status": "cancelled"}),
                ))
            },
        );
    let mine = warp::path!("v1" / "me" / "visits")
        .and(warp::get())
        .and(principal())
        .and(with_state())
        .and_then(|p: Principal, s: State| async move {
            let me = consumer(&p)?;
            let activity = s
                .hub
                .read
                .consumers
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .model
                .of(&me);
            Ok::<_, Rejection>(warp::reply::json(&json!({ "visits": activity.visits })))
        });
    let my_orders = warp::path!("v1" / "me" / "orders")
        .and(warp::get())
        .and(principal())
        .and(with_state())
        .and_then(|p: Principal, s: State| async move {
            let me = consumer(&p)?;
            let activity = s
                .hub
                .read
                .consumers
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .model
                .of(&me);
            Ok::<_, Rejection>(warp::reply::json(&json!({ "orders": activity.orders })))
        });
    let erase = warp::path!("v1" / "me")
        .and(warp::delete())
        .and(principal())
        .and(with_state())
        .and_then(|p: Principal, s: State| async move {
            let me = consumer(&p)?;
            let erased = s.vault.erase(&me).map_err(|e| {
                tracing::error!(error = %e, "vault failure during erasure");
                warp::reject::custom(Problem::internal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the PII vault is unavailable",
                ))
            })?;
            tracing::info!(consumer = %me, had_data = erased, "consumer erased");
            Ok::<_, Rejection>(warp::reply::json(
                &json!({"consumer_id": me, "erased": true}),
            ))
        });
    book.or(reschedule)
        .or(cancel)
        .or(mine)
        .or(my_orders)
        .or(erase)
}

async fn book(
    p: Principal,
    key: Option<String>,
    body: Body<BookRequest>,
    s: State,
) -> Result<impl Reply, Rejection> {
    let me = consumer(&p)?;
    let ctx = context(&p, key, "POST /v1/visits", &body.raw);
    let r = body.value;
    let visit_id = VisitId::new();
    let code = visit_code(&s.code_key, &visit_id);
    let booking = BookVisit {
        visit_id,
        consumer_id: me,
        merchant_id: r.merchant_id,
        service_id: r.service_id,
        slot: r.slot_start,
        code: code.digest(&s.code_key),
    };
    let done = command::book_visit(s.hub.store.as_ref(), &booking, &ctx)
        .await
        .map_err(|e| warp::reject::custom(Problem::from(e)))?;
    // A retry gets the visit of the first request, and its (derived) code.
    let visit_id = id_of(&done, "visit-")
        .and_then(|v| VisitId::parse(&v).ok())
        .unwrap_or(visit_id);
    let code = visit_code(&s.code_key, &visit_id);
    metrics::counter!("o2ohub_visits_booked_total").increment(u64::from(!done.replayed));
    Ok(warp::reply::with_status(
        warp::reply::json(&json!({
            "visit_id": visit_id, "merchant_id": r.merchant_id, "slot_start": r.slot_start,
            "redemption_code": code.display(),
        })),
        StatusCode::CREATED,
    ))
}
