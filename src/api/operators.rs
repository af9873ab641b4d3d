//! Operators' routes (admin role): register and update merchants, pause and
//! resume them, add their staff, register riders; watch the city.

use geo::Validation;
use o2ohub_events::{MerchantId, MerchantProfile, Role, ServiceArea, StaffId, VehicleType};
use serde::Deserialize;
use serde_json::json;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::{principal, Principal};
use super::problem::Problem;
use super::request::{context, idempotency_key, json, Body};
use super::{with_state, State};
use crate::command::{self, Executed};
use crate::domain::merchant::{Merchant, MerchantCommand};
use crate::domain::rider::{Rider, RiderCommand};

/// Pause request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why (shown to operators).
    pub reason: String,
}

/// Rider registration request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiderRequest {
    /// Display name.
    pub name: String,
    /// How the rider moves.
    pub vehicle: VehicleType,
    /// Orders carried at once.
    pub capacity: u32,
}

/// Staff request: an existing staff id, or none to create one.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StaffRequest {
    /// The staff member to add; a new id when absent.
    pub staff_id: Option<StaffId>,
}

/// A polygon service area must be a valid simple polygon (checked with `geo`).
pub fn check_service_area(area: &ServiceArea) -> Result<(), Problem> {
    area.validate()?;
    if let ServiceArea::Polygon { ring } = area {
        if ring.len() > 1_000 {
            return Err(Problem::from(o2ohub_events::ValueError::new(
                "service_area.ring",
                "a polygon has at most 1000 points",
            )));
        }
        let polygon = geo::Polygon::new(
            ring.iter()
                .map(|p| geo::coord! { x: p.lng, y: p.lat })
                .collect(),
            vec![],
        );
        if !polygon.is_valid() {
            return Err(Problem::from(o2ohub_events::ValueError::new(
                "service_area.ring",
                "the polygon intersects itself or has no area",
            )));
        }
    }
    Ok(())
}

/// The id in the first stream of an outcome with this prefix (e.g. `merchant-`).
pub fn id_of(executed: &Executed, prefix: &str) -> Option<String> {
    executed
        .streams
        .iter()
        .find_map(|s| s.stream.strip_prefix(prefix).map(str::to_owned))
}

fn admin(p: &Principal) -> Result<(), Rejection> {
    p.require(&[Role::Admin]).map_err(warp::reject::custom)
}

/// Operator routes.
pub fn routes() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let register = warp::path!("v1" / "merchants")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<MerchantProfile>())
        .and(with_state())
        .and_then(register_merchant);
    let update = warp::path!("v1" / "merchants" / MerchantId)
        .and(warp::put())
        .and(principal())
        .and(idempotency_key())
        .and(json::<MerchantProfile>())
        .and(with_state())
        .and_then(
            |id: MerchantId, p: Principal, key, body: Body<MerchantProfile>, s: State| async move {
                admin(&p)?;
                check_service_area(&body.value.service_area).map_err(warp::reject::custom)?;
                let ctx = context(&p, key, &format!("PUT /v1/merchants/{id}"), &body.raw);
                merchant_command(
                    &s,
                    id,
                    MerchantCommand::Update {
                        profile: body.value,
                    },
                    &ctx,
                )
                .await
            },
        );
    let pause = warp::path!("v1" / "merchants" / MerchantId / "pause")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<PauseRequest>())
        .and(with_state())
        .and_then(
            |id: MerchantId, p: Principal, key, body: Body<PauseRequest>, s: State| async move {
                admin(&p)?;
                let ctx = context(
                    &p,
                    key,
                    &format!("POST /v1/merchants/{id}/pause"),
                    &body.raw,
                );
                merchant_command(
                    &s,
                    id,
                    MerchantCommand::Pause {
                        reason: body.value.reason,
                    },
                    &ctx,
                )
                .await
            },
        );
    let resume = warp::path!("v1" / "merchants" / MerchantId / "resume")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(with_state())
        .and_then(|id: MerchantId, p: Principal, key, s: State| async move {
            admin(&p)?;
            let ctx = context(&p, key, &format!("POST /v1/merchants/{id}/resume"), b"");
            merchant_command(&s, id, MerchantCommand::Resume, &ctx).await
        });
    let staff = warp::path!("v1" / "merchants" / MerchantId / "staff")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<StaffRequest>())
        .and(with_state())
        .and_then(
            |id: MerchantId, p: Principal, key, body: Body<StaffRequest>, s: State| async move {
                admin(&p)?;
                let staff_id = body.value.staff_id.unwrap_or_default();
                let ctx = context(
                    &p,
                    key,
                    &format!("POST /v1/merchants/{id}/staff"),
                    &body.raw,
                );
                command::execute::<Merchant>(
                    s.hub.store.as_ref(),
                    &id.stream(),
                    &MerchantCommand::AddStaff { staff_id },
                    &ctx,
                )
                .await
                .map_err(|e| warp::reject::custom(Problem::from(e)))?;
                Ok::<_, Rejection>(warp::reply::with_status(
                    warp::reply::json(&json!({"merchant_id": id, "staff_id": staff_id})),
                    StatusCode::CREATED,
                ))
            },
        );
    let rider = warp::path!("v1" / "riders")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<RiderRequest>())
        .and(with_state())
        .and_then(register_rider);
    let analytics = warp::path!("v1" / "merchants" / MerchantId / "analytics")
        .and(warp::get())
        .and(principal())
        .and(with_state())
        .and_then(|id: MerchantId, p: Principal, s: State| async move {
            admin(&p)?;
            let f = s.hub.read.analytics.read().unwrap_or_else(|e| e.into_inner()).model.merchant(&id);
            Ok::<_, Rejection>(warp::reply::json(&json!({
                "merchant_id": id, "figures": f, "no_show_rate": f.no_show_rate(),
                "on_time_rate": f.on_time_rate(), "mean_delivery_seconds": f.mean_delivery_seconds(),
            })))
        });
    let supply = warp::path!("v1" / "supply")
        .and(warp::get())
        .and(principal())
        .and(warp::query::<SupplyQuery>())
        .and(with_state())
        .and_then(|p: Principal, q: SupplyQuery, s: State| async move {
            admin(&p)?;
            let balance = s
                .hub
                .read
                .supply
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .model
                .balance(q.resolution.unwrap_or(8))
                .map_err(|e| {
                    warp::reject::custom(Problem::bad_request(e.to_string()).field("resolution"))
                })?;
            Ok::<_, Rejection>(warp::reply::json(&json!({ "cells": balance })))
        });
    register
        .or(update)
        .or(pause)
        .or(resume)
        .or(staff)
        .or(rider)
        .or(analytics)
        .or(supply)
}

/// Query of `GET /v1/supply`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplyQuery {
    /// H3 resolution, 7 or 8 (default 8).
    pub resolution: Option<u8>,
}

async fn register_merchant(
    p: Principal,
    key: Option<String>,
    body: Body<MerchantProfile>,
    s: State,
) -> Result<impl Reply, Rejection> {
    admin(&p)?;
    check_service_area(&body.value.service_area).map_err(warp::reject::custom)?;
    let ctx = context(&p, key, "POST /v1/merchants", &body.raw);
    let merchant_id = MerchantId::new();
    let done = command::execute::<Merchant>(
        s.hub.store.as_ref(),
        &merchant_id.stream(),
        &MerchantCommand::Register {
            merchant_id,
            profile: body.value,
        },
        &ctx,
    )
    .await
    .map_err(|e| warp::reject::custom(Problem::from(e)))?;
    // A replayed request answers with the merchant it created the first time.
    let id = id_of(&done, "merchant-").unwrap_or_else(|| merchant_id.to_string());
    Ok(warp::reply::with_status(
        warp::reply::json(&json!({ "merchant_id": id })),
        StatusCode::CREATED,
    ))
}

async fn merchant_command(
    s: &State,
    id: MerchantId,
    c: MerchantCommand,
    ctx: &command::CommandContext,
) -> Result<impl Reply, Rejection> {
    let done = command::execute::<Merchant>(s.hub.store.as_ref(), &id.stream(), &c, ctx)
        .await
        .map_err(|e| warp::reject::custom(Problem::from(e)))?;
    Ok(warp::reply::json(
        &json!({ "merchant_id": id, "events": done.events }),
    ))
}

async fn register_rider(
    p: Principal,
    key: Option<String>,
    body: Body<RiderRequest>,
    s: State,
) -> Result<impl Reply, Rejection> {
    admin(&p)?;
    let ctx = context(&p, key, "POST /v1/riders", &body.raw);
    let rider_id = o2ohub_events::RiderId::new();
    let r = body.value;
    let c = RiderCommand::Register {
        rider_id,
        name: r.name,
        vehicle: r.vehicle,
        capacity: r.capacity,
    };
    let done = command::execute::<Rider>(s.hub.store.as_ref(), &rider_id.stream(), &c, &ctx)
        .await
        .map_err(|e| warp::reject::custom(Problem::from(e)))?;
    let id = id_of(&done, "rider-").unwrap_or_else(|| rider_id.to_string());
    Ok(warp::reply::with_status(
        warp::reply::json(&json!({ "rider_id": id })),
        StatusCode::CREATED,
    ))
}
