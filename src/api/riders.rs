//! Riders' routes, scoped to themselves: start and end a shift, report
//! positions, see their offers and route.
//!
//! Position reports are high-rate: a device may send a fix every second, in
//! batches. Only the newest fix of a batch is considered, and it becomes a
//! `RiderPositionReported` event only if the rider moved at least
//! [`MIN_MOVE_M`] metres or [`MAX_SILENCE_S`] seconds passed since the last
//! recorded one. The dispatcher needs positions to tens of metres, not a GPS
//! trace, and the log stays small.

use chrono::{DateTime, Utc};
use o2ohub_events::{LatLng, RiderId, Role};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use warp::{Filter, Rejection, Reply};

use super::auth::{principal, Principal};
use super::problem::Problem;
use super::request::{context, idempotency_key, json, Body};
use super::{with_state, State};
use crate::command;
use crate::domain::rider::{Rider, RiderCommand};

/// Movement that makes a report an event.
pub const MIN_MOVE_M: f64 = 50.0;
/// Silence after which a report is an event even without movement.
pub const MAX_SILENCE_S: i64 = 30;

/// The last recorded position per rider.
#[derive(Default)]
pub struct Sampler {
    last: Mutex<HashMap<RiderId, (LatLng, DateTime<Utc>)>>,
}

impl Sampler {
    /// Whether a fix should become an event; remembers it if so.
    pub fn keep(&self, rider: RiderId, at: LatLng, when: DateTime<Utc>) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let keep = match last.get(&rider) {
            None => true,
            Some((p, t)) => {
                p.distance_m(&at) >= MIN_MOVE_M || (when - *t).num_seconds() >= MAX_SILENCE_S
            }
        };
        if keep {
            last.insert(rider, (at, when));
        }
        keep
    }
}

/// Shift start request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftStart {
    /// Where the shift starts.
    pub position: LatLng,
}

/// One GPS fix.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fix {
    /// Where.
    pub position: LatLng,
    /// When the device took it.
    pub at: DateTime<Utc>,
}

/// A batch of fixes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Positions {
    /// Fixes, any order, 1 to 100.
    pub fixes: Vec<Fix>,
}

fn rider(p: &Principal) -> Result<RiderId, Rejection> {
    p.require(&[Role::Rider]).map_err(warp::reject::custom)?;
    p.subject_id(RiderId::parse).map_err(warp::reject::custom)
}

async fn rider_command(
    s: &State,
    id: RiderId,
    c: RiderCommand,
    ctx: &command::CommandContext,
) -> Result<(), Rejection> {
    command::execute::<Rider>(s.hub.store.as_ref(), &id.stream(), &c, ctx)
        .await
        .map(|_| ())
        .map_err(|e| warp::reject::custom(Problem::from(e)))
}

/// Rider routes.
pub fn routes() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let start = warp::path!("v1" / "riders" / "me" / "shift" / "start")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<ShiftStart>())
        .and(with_state())
        .and_then(
            |p: Principal, key, body: Body<ShiftStart>, s: State| async move {
                let me = rider(&p)?;
                let ctx = context(&p, key, "POST /v1/riders/me/shift/start", &body.raw);
                rider_command(
                    &s,
                    me,
                    RiderCommand::StartShift {
                        position: body.value.position,
                    },
                    &ctx,
                )
                .await?;
                s.positions.keep(me, body.value.position, ctx.now);
                Ok::<_, Rejection>(warp::reply::json(
                    &json!({"rider_id": me, "on_shift": true}),
                ))
            },
        );
    let end = warp::path!("v1" / "riders" / "me" / "shift" / "end")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(with_state())
        .and_then(|p: Principal, key, s: State| async move {
            let me = rider(&p)?;
            let ctx = context(&p, key, "POST /v1/riders/me/shift/end", b"");
            rider_command(&s, me, RiderCommand::EndShift, &ctx).await?;
            Ok::<_, Rejection>(warp::reply::json(
                &json!({"rider_id": me, "on_shift": false}),
            ))
        });
    let positions = warp::path!("v1" / "riders" / "me" / "positions")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<Positions>())
        .and(with_state())
        .and_then(
            |p: Principal, key, body: Body<Positions>, s: State| async move {
                let me = rider(&p)?;
                let fixes = body.value.fixes;
                if fixes.is_empty() || fixes.len() > 100 {
                    return Err(warp::reject::custom(Problem::from(
                        o2ohub_events::ValueError::new("fixes", "send 1 to 100 fixes per batch"),
                    )));
                }
                let newest = fixes.iter().max_by_key(|f| f.at).expect("not empty");
                let recorded = s.positions.keep(me, newest.position, newest.at);
                if recorded {
                    let ctx = context(&p, key, "POST /v1/riders/me/positions", &body.raw);
                    let c = RiderCommand::ReportPosition {
                        position: newest.position,
                        fixed_at: newest.at,
                    };
                    rider_command(&s, me, c, &ctx).await?;
                }
                Ok::<_, Rejection>(warp::reply::json(
                    &json!({"accepted": fixes.len(), "recorded": recorded}),
                ))
            },
        );
    let board = warp::path!("v1" / "riders" / "me" / "board")
        .and(warp::get())
        .and(principal())
        .and(with_state())
        .and_then(|p: Principal, s: State| async move {
            let me = rider(&p)?;
            let board = s
                .hub
                .read
                .riders
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .model
                .of(&me);
            Ok::<_, Rejection>(warp::reply::json(&board))
        });
    start.or(end).or(positions).or(board)
}
