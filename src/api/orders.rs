//! Delivery orders: consumers place and cancel them; staff of the store
//! accept, reject and mark them ready (which puts the delivery in the
//! dispatch pool); anyone concerned reads one back. The drop-off contact is
//! sealed in the vault before it enters an event.

use chrono::{DateTime, Duration, Utc};
use o2ohub_events::{
    ConsumerId, DeliveryId, LatLng, MerchantId, Money, OrderId, OrderLine, OrderPlaced, Role,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::{principal, Principal};
use super::operators::id_of;
use super::problem::Problem;
use super::request::{context, idempotency_key, json, Body};
use super::{with_state, State};
use crate::command::{self, CommandContext};
use crate::domain::code::OneTimeCode;
use crate::domain::merchant::Merchant;
use crate::domain::order::{Order, OrderCommand, OrderState};
use crate::domain::phone::PhoneNumber;
use crate::vault::Opened;

/// How long a delivery is promised to take from placement.
pub const PROMISE: Duration = Duration::minutes(45);

/// Who to hand the order to.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Recipient's name.
    pub name: String,
    /// Phone, E.164.
    pub phone: String,
    /// Street address and door.
    pub address: String,
}

/// Order placement request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceRequest {
    /// The store.
    pub merchant_id: MerchantId,
    /// What to deliver.
    pub lines: Vec<OrderLine>,
    /// Where, for routing.
    pub drop_off: LatLng,
    /// Who and where exactly (sealed before it is stored).
    pub contact: Contact,
}

/// A reason.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// Acceptance request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    /// When the order will be ready.
    pub ready_by: DateTime<Utc>,
}

/// The hand-over code of an order, derived from the hub's code key.
pub fn handover_code(key: &[u8], order: &OrderId) -> OneTimeCode {
    OneTimeCode::derive(key, order.stream().as_bytes())
}

fn reject(p: Problem) -> Rejection {
    warp::reject::custom(p)
}

/// Loads an order and checks the caller may act on it: its consumer, staff
/// of its store, or an operator.
async fn order_for(
    s: &State,
    p: &Principal,
    id: OrderId,
    roles: &[Role],
) -> Result<Box<OrderState>, Rejection> {
    p.require(roles).map_err(reject)?;
    let (order, _) = command::load::<Order>(s.hub.store.as_ref(), &id.stream())
        .await
        .map_err(|e| reject(e.into()))?;
    let Order::Placed(o) = order else {
        return Err(reject(Problem::not_found("no such order")));
    };
    let allowed = match p.role {
        Role::Consumer => ConsumerId::parse(&p.subject).is_ok_and(|c| c == o.placed.consumer_id),
        Role::Staff => p.merchant == Some(o.placed.merchant_id),
        Role::Admin => true,
        _ => false,
    };
    if !allowed {
        return Err(reject(Problem::forbidden("this order is not yours")));
    }
    Ok(o)
}

async fn order_command(
    s: &State,
    id: OrderId,
    c: OrderCommand,
    ctx: &CommandContext,
) -> Result<(), Rejection> {
    command::execute::<Order>(s.hub.store.as_ref(), &id.stream(), &c, ctx)
        .await
        .map(|_| ())
        .map_err(|e| reject(e.into()))
}

/// Order routes.
pub fn routes() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let place = warp::path!("v1" / "orders")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<PlaceRequest>())
        .and(with_state())
        .and_then(place);
    let read = warp::path!("v1" / "orders" / OrderId)
        .and(warp::get())
        .and(principal())
        .and(with_state())
        .and_then(|id: OrderId, p: Principal, s: State| async move {
            let o = order_for(&s, &p, id, &[Role::Consumer, Role::Staff, Role::Admin]).await?;
            let contact = match s.vault.open_sealed(&o.placed.drop_off_details) {
                Ok(Opened::Clear(text)) => serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default(),
                Ok(Opened::Erased) => json!("erased"),
                Err(e) => {
                    tracing::error!(error = %e, order = %id, "sealed contact unreadable");
                    json!("unreadable")
                }
            };
            let state = Order::Placed(o.clone());
            Ok::<_, Rejection>(warp::reply::json(&json!({
                "order_id": id, "merchant_id": o.placed.merchant_id, "status": crate::domain::Aggregate::state_name(&state),
                "total": o.placed.total, "promised_by": o.placed.promised_by, "drop_off": o.placed.drop_off,
                "contact": contact, "paid": o.paid, "refunded": o.refunded,
                "delivery": super::deliveries::status_of_order(&s, &id),
            })))
        });
    let cancel = warp::path!("v1" / "orders" / OrderId / "cancel")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<Reason>())
        .and(with_state())
        .and_then(
            |id: OrderId, p: Principal, key, body: Body<Reason>, s: State| async move {
                let o = order_for(&s, &p, id, &[Role::Consumer, Role::Staff, Role::Admin]).await?;
                let ctx = context(&p, key, &format!("POST /v1/orders/{id}/cancel"), &body.raw);
                order_command(
                    &s,
                    id,
                    OrderCommand::Cancel {
                        reason: body.value.reason,
                        by: p.role,
                    },
                    &ctx,
                )
                .await?;
                if o.paid.is_some() {
                    // Money goes back as part of cancelling; the refund is its own fact.
                    let refund_ctx = CommandContext {
                        idempotency: None,
                        ..ctx
                    };
                    order_command(&s, id, OrderCommand::Refund, &refund_ctx).await?;
                }
                Ok::<_, Rejection>(warp::reply::json(
                    &json!({"order_id": id, "status": "cancelled", "refunded": o.paid.is_some()}),
                ))
            },
        );
    let accept = warp::path!("v1" / "orders" / OrderId / "accept")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<AcceptRequest>())
        .and(with_state())
        .and_then(
            |id: OrderId, p: Principal, key, body: Body<AcceptRequest>, s: State| async move {
                order_for(&s, &p, id, &[Role::Staff, Role::Admin]).await?;
                let ctx = context(&p, key, &format!("POST /v1/orders/{id}/accept"), &body.raw);
                order_command(
                    &s,
                    id,
                    OrderCommand::Accept {
                        ready_by: body.value.ready_by,
                    },
                    &ctx,
                )
                .await?;
                Ok::<_, Rejection>(warp::reply::json(
                    &json!({"order_id": id, "status": "accepted"}),
                ))
            },
        );
    let refuse = warp::path!("v1" / "orders" / OrderId / "reject")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(json::<Reason>())
        .and(with_state())
        .and_then(
            |id: OrderId, p: Principal, key, body: Body<Reason>, s: State| async move {
                order_for(&s, &p, id, &[Role::Staff, Role::Admin]).await?;
                let ctx = context(&p, key, &format!("POST /v1/orders/{id}/reject"), &body.raw);
                order_command(
                    &s,
                    id,
                    OrderCommand::Reject {
                        reason: body.value.reason,
                    },
                    &ctx,
                )
                .await?;
                Ok::<_, Rejection>(warp::reply::json(
                    &json!({"order_id": id, "status": "rejected"}),
                ))
            },
        );
    let ready = warp::path!("v1" / "orders" / OrderId / "ready")
        .and(warp::post())
        .and(principal())
        .and(idempotency_key())
        .and(with_state())
        .and_then(|id: OrderId, p: Principal, key, s: State| async move {
            order_for(&s, &p, id, &[Role::Staff, Role::Admin]).await?;
            let ctx = context(&p, key, &format!("POST /v1/orders/{id}/ready"), b"");
            let done = command::ready_for_pickup(s.hub.store.as_ref(), id, DeliveryId::new(), &ctx)
                .await
                .map_err(|e| reject(e.into()))?;
            let delivery = id_of(&done, "delivery-");
            Ok::<_, Rejection>(warp::reply::json(
                &json!({"order_id": id, "status": "ready", "delivery_id": delivery}),
            ))
        });
    place.or(read).or(cancel).or(accept).or(refuse).or(ready)
}

async fn place(
    p: Principal,
    key: Option<String>,
    body: Body<PlaceRequest>,
    s: State,
) -> Result<impl Reply, Rejection> {
    p.require(&[Role::Consumer]).map_err(reject)?;
    let me = p.subject_id(ConsumerId::parse).map_err(reject)?;
    let r = body.value;
    let phone = PhoneNumber::parse(&r.contact.phone)
        .map_err(|e| reject(Problem::from(e).field("contact.phone")))?;
    if r.contact.address.trim().is_empty() || r.contact.address.len() > 500 {
        return Err(reject(Problem::from(o2ohub_events::ValueError::new(
            "contact.address",
            "an address has 1 to 500 characters",
        ))));
    }
    let (merchant, _) = command::load::<Merchant>(s.hub.store.as_ref(), &r.merchant_id.stream())
        .await
        .map_err(|e| reject(e.into()))?;
    match merchant {
        Merchant::Active(_) => {}
        Merchant::Paused(_) => {
            return Err(reject(
                crate::domain::DomainError::MerchantUnavailable {
                    reason: "the store is paused",
                }
                .into(),
            ))
        }
        Merchant::Unregistered => return Err(reject(Problem::not_found("no such merchant"))),
    }
    let contact =
        json!({"name": r.contact.name, "phone": phone.as_str(), "address": r.contact.address})
            .to_string();
    let sealed = s.vault.seal(&me, &contact).map_err(|e| {
        tracing::error!(error = %e, "vault failure");
        reject(Problem::internal(
            StatusCode::SERVICE_UNAVAILABLE,
            "the PII vault is unavailable",
        ))
    })?;
    let mut total: Option<Money> = None;
    for line in &r.lines {
        let amount = line.unit_price.times(line.quantity);
        total = Some(match total {
            None => amount,
            Some(t) => t.checked_add(amount).ok_or_else(|| {
                reject(Problem::from(o2ohub_events::ValueError::new(
                    "lines",
                    "all lines use one currency",
                )))
            })?,
        });
    }
    let total = total.ok_or_else(|| {
        reject(Problem::from(o2ohub_events::ValueError::new(
            "lines",
            "an order has 1 to 100 lines",
        )))
    })?;
    let ctx = context(&p, key, "POST /v1/orders", &body.raw);
    let order_id = OrderId::new();
    let placed = OrderPlaced {
        order_id,
        consumer_id: me,
        merchant_id: r.merchant_id,
        lines: r.lines,
        total,
        drop_off: r.drop_off,
        drop_off_details: sealed,
        handover_code: handover_code(&s.code_key, &order_id).digest(&s.code_key),
        promised_by: ctx.now + PROMISE,
    };
    let promised_by = placed.promised_by;
    let done = command::execute::<Order>(
        s.hub.store.as_ref(),
        &order_id.stream(),
        &OrderCommand::Place(Box::new(placed)),
        &ctx,
    )
    .await
    .map_err(|e| reject(e.into()))?;
    let order_id = id_of(&done, "order-")
        .and_then(|o| OrderId::parse(&o).ok())
        .unwrap_or(order_id);
    Ok(warp::reply::with_status(
        warp::reply::json(&json!({
            "order_id": order_id, "total": total, "promised_by": promised_by,
            "handover_code": handover_code(&s.code_key, &order_id).display(),
        })),
        StatusCode::CREATED,
    ))
}
