//! Store staff's routes, scoped to their store: the day's visits and open
//! orders; redeem a consumer's code, mark a no-show, complete a visit.
//! Wrong codes are recorded as events (a visit locks after five) and are
//! rate-limited per store.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use o2ohub_events::{MerchantId, Role, StaffId, VisitId};
use serde::Deserialize;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use warp::{Filter, Rejection, Reply};

use super::auth::{principal, Principal};
use super::problem::Problem;
use super::request::{context, idempotency_key, json, Body};
use super::{with_state, State};
use crate::command;
use crate::domain::code::OneTimeCode;
use crate::domain::visit::{Visit, VisitCommand};

/// Wrong codes a store may enter per minute before it must wait.
pub const GUESSES_PER_MINUTE: usize = 20;

/// Recent wrong codes per store, to slow down guessing across visits.
#[derive(Default)]
pub struct GuessLimiter {
    recent: Mutex<HashMap<MerchantId, VecDeque<DateTime<Utc>>>>,
}

impl GuessLimiter {
    /// Whether the store may try another code now.
    pub fn allowed(&self, store: MerchantId, now: DateTime<Utc>) -> bool {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let q = recent.entry(store).or_default();
        while q.front().is_some_and(|t| *t < now - Duration::minutes(1)) {
            q.pop_front();
        }
        q.len() < GUESSES_PER_MINUTE
    }

    /// Notes a wrong code.
    pub fn failed(&self, store: MerchantId, now: DateTime<Utc>) {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(store)
            .or_default()
            .push_back(now);
    }
}

/// Redemption request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    /// The code the consumer shows, e.g. `7K3M-Q9TD`.
    pub code: String,
}

/// Query of the store's day.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayQuery {
    /// The store-local date, `YYYY-MM-DD` (default: today, UTC).
    pub date: Option<NaiveDate>,
}

/// The caller as staff of a store (or an operator acting for any store).
fn staff_of(p: &Principal) -> Result<(StaffId, Option<MerchantId>), Rejection> {
    p.require(&[Role::Staff, Role::Admin])
        .map_err(warp::reject::custom)?;
    if p.role == Role::Admin {
        return Ok((StaffId(uuid::Uuid::nil()), None));
    }
    Ok((
        p.subject_id(StaffId::parse).map_err(warp::reject::custom)?,
        p.merchant,
    ))
}

/// The merchant of a visit, and the staff command's scope for it.
async fn visit_scope(
    s: &State,
    p: &Principal,
    id: VisitId,
) -> Result<(StaffId, MerchantId), Rejection> {
    let (staff, scope) = staff_of(p)?;
    let (visit, _) = command::load::<Visit>(s.hub.store.as_ref(), &id.stream())
        .await
        .map_err(|e| warp::reject::custom(Problem::from(e)))?;
    let merchant = visit
        .details()
        .map(|v| v.merchant_id)
        .ok_or_else(|| warp::reject::custom(Problem::not_found("no such visit")))?;
    // Staff act with their own store as scope; the visit refuses another store's staff.
    Ok((staff, scope.unwrap_or(merchant)))
}

/// Staff routes.
pub fn routes() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let day = warp::path!("v1" / "stores" / MerchantId / "day")
        .and(warp::get())
        .and(principal())
        .and(warp::query::<DayQuery>())
        .and(with_state())
        .and_then(
            |store: MerchantId, p: Principal, q: DayQuery, s: State| async move {
                let (_, scope) = staff_of(&p)?;
                if scope.is_some_and(|m| m != store) {
                    return Err(warp::reject::custom(Problem::forbidden(
                        "staff see only their own store",
                    )));
                }
                let date = q.date.unwrap_or_else(|| crate::clock::now().date_naive());
                let day = s
                    .hub
                    .read
                    .stores
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .model
                    .day(&store, date);
                Ok::<_, Rejection>(warp::reply::json(&day))
            },
        );
    let redeem = warp::path!("v1" / "visits" / VisitId / "redeem")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<RedeemRequest>())
        .and(with_state())
        .and_then(redeem);
    let no_show = warp::path!("v1" / "visits" / VisitId / "no-show")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(with_state())
        .and_then(|id: VisitId, p: Principal, key, s: State| async move {
            let (staff_id, staff_merchant) = visit_scope(&s, &p, id).await?;
            let ctx = context(&p, key, &format!("POST /v1/visits/{id}/no-show"), b"");
            let c = VisitCommand::MarkNoShow {
                staff_id,
                staff_merchant,
            };
            command::execute::<Visit>(s.hub.store.as_ref(), &id.stream(), &c, &ctx)
                .await
                .map_err(|e| warp::reject::custom(Problem::from(e)))?;
            Ok::<_, Rejection>(warp::reply::json(
                &json!({"visit_id": id, "status": "no_show"}),
            ))
        });
    let complete = warp::path!("v1" / "visits" / VisitId / "complete")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(with_state())
        .and_then(|id: VisitId, p: Principal, key, s: State| async move {
            let (staff_id, staff_merchant) = visit_scope(&s, &p, id).await?;
            let ctx = context(&p, key, &format!("POST /v1/visits/{id}/complete"), b"");
            let c = VisitCommand::Complete {
                staff_id,
                staff_merchant,
            };
            command::execute::<Visit>(s.hub.store.as_ref(), &id.stream(), &c, &ctx)
                .await
                .map_err(|e| warp::reject::custom(Problem::from(e)))?;
            Ok::<_, Rejection>(warp::reply::json(
                &json!({"visit_id": id, "status": "completed"}),
            ))
        });
    day.or(redeem).or(no_show).or(complete)
}

async fn redeem(
    id: VisitId,
    p: Principal,
    key: Option<String>,
    body: Body<RedeemRequest>,
    s: State,
) -> Result<impl Reply, Rejection> {
    let (staff_id, staff_merchant) = visit_scope(&s, &p, id).await?;
    let now = crate::clock::now();
    if !s.guesses.allowed(staff_merchant, now) {
        return Err(warp::reject::custom(Problem::too_many(format!(
            "more than {GUESSES_PER_MINUTE} wrong codes in a minute at this store; wait a minute"
        ))));
    }
    let code =
        OneTimeCode::parse(&body.value.code).map_err(|e| warp::reject::custom(Problem::from(e)))?;
    let ctx = context(&p, key, &format!("POST /v1/visits/{id}/redeem"), &body.raw);
    let c = VisitCommand::Redeem {
        staff_id,
        staff_merchant,
        entered: code.digest(&s.code_key),
    };
    let done = command::execute::<Visit>(s.hub.store.as_ref(), &id.stream(), &c, &ctx)
        .await
        .map_err(|e| warp::reject::custom(Problem::from(e)))?;
    if done.events.iter().any(|e| e == "VisitRedemptionFailed") {
        s.guesses.failed(staff_merchant, now);
        let (visit, _) = command::load::<Visit>(s.hub.store.as_ref(), &id.stream())
            .await
            .map_err(|e| warp::reject::custom(Problem::from(e)))?;
        let failures = visit.details().map_or(0, |v| v.failures);
        return Err(warp::reject::custom(
            Problem::new(
                warp::http::StatusCode::UNPROCESSABLE_ENTITY,
                "wrong-code",
                "The code does not match this visit",
                format!(
                    "wrong code ({failures} of {} attempts used)",
                    crate::domain::visit::MAX_REDEMPTION_FAILURES
                ),
            )
            .field("code"),
        ));
    }
    Ok(warp::reply::json(
        &json!({"visit_id": id, "status": "redeemed"}),
    ))
}
