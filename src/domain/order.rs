//! The `Order` aggregate: a delivery order from placement to completion, with
//! payment, the store's acceptance, cancellation and refund.

use chrono::{DateTime, Utc};
use o2ohub_events::{
    Event, Money, OrderAccepted, OrderCancelled, OrderCompleted, OrderEvent, OrderPaid,
    OrderPlaced, OrderReady, OrderRefunded, OrderRejected, Role,
};

use super::{Aggregate, DomainError};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Placed, waiting for payment.
    Placed,
    /// Paid, waiting for the store.
    Paid,
    /// The store accepted it and is preparing it.
    Accepted,
    /// Ready for pickup.
    Ready,
    /// Handed over to the consumer.
    Completed,
    /// Cancelled.
    Cancelled,
    /// Refused by the store.
    Rejected,
}

/// What is known of a placed order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderState {
    /// The placement, as recorded.
    pub placed: OrderPlaced,
    /// Current status.
    pub status: OrderStatus,
    /// Amount captured, if paid.
    pub paid: Option<Money>,
    /// Whether the payment went back.
    pub refunded: bool,
}

/// An order's life.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Order {
    /// No such order.
    #[default]
    NotPlaced,
    /// Placed, in some status (boxed: the placement is large).
    Placed(Box<OrderState>),
}

/// Commands about an order.
#[derive(Debug, Clone)]
pub enum OrderCommand {
    /// Place (the consumer; totals and codes prepared by the command layer).
    Place(Box<OrderPlaced>),
    /// The payment provider confirmed payment.
    Pay {
        /// Provider reference.
        payment_ref: String,
        /// Amount captured; must equal the total.
        amount: Money,
    },
    /// The store accepts.
    Accept {
        /// When it will be ready.
        ready_by: DateTime<Utc>,
    },
    /// The store refuses.
    Reject {
        /// Why.
        reason: String,
    },
    /// The store has it ready.
    MarkReady,
    /// Cancel.
    Cancel {
        /// Why.
        reason: String,
        /// Who.
        by: Role,
    },
    /// Pay the consumer back after a cancellation or rejection.
    Refund,
    /// Handed over (after the delivery).
    Complete,
}

/// Decides an order command.
pub fn decide(
    state: &Order,
    command: &OrderCommand,
    now: DateTime<Utc>,
) -> Result<Vec<OrderEvent>, DomainError> {
    use OrderCommand as C;
    use OrderStatus as S;
    let o = match (state, command) {
        (Order::NotPlaced, C::Place(p)) => {
            if p.lines.is_empty() || p.lines.len() > 100 {
                return Err(DomainError::invalid("lines", "an order has 1 to 100 lines"));
            }
            let mut total: Option<Money> = None;
            for (i, l) in p.lines.iter().enumerate() {
                if l.quantity == 0 || l.quantity > 1000 {
                    return Err(DomainError::invalid(
                        &format!("lines[{i}].quantity"),
                        "a quantity is 1 to 1000",
                    ));
                }
                let line = l.unit_price.times(l.quantity);
                total = match total {
                    None => Some(line),
                    Some(t) => Some(t.checked_add(line).ok_or_else(|| {
                        DomainError::invalid(
                            &format!("lines[{i}].unit_price"),
                            "all lines use one currency",
                        )
                    })?),
                };
            }
            if total != Some(p.total) {
                return Err(DomainError::invalid(
                    "total",
                    "the total must equal the sum of the lines",
                ));
            }
            if p.promised_by <= now {
                return Err(DomainError::invalid(
                    "promised_by",
                    "the promised time must be in the future",
                ));
            }
            return Ok(vec![OrderEvent::Placed((**p).clone())]);
        }
        (Order::Placed(_), C::Place(_)) => {
            return Err(DomainError::AlreadyExists {
                aggregate: Order::NAME,
            })
        }
        (Order::NotPlaced, _) => {
            return Err(DomainError::NotFound {
                aggregate: Order::NAME,
            })
        }
        (Order::Placed(o), _) => o,
    };
    let illegal = |c| DomainError::illegal(Order::NAME, state.state_name(), c);
    match (o.status, command) {
        (
            S::Placed,
            C::Pay {
                payment_ref,
                amount,
            },
        ) => {
            if *amount != o.placed.total {
                return Err(DomainError::invalid(
                    "amount",
                    "the amount paid must equal the order total",
                ));
            }
            Ok(vec![OrderEvent::Paid(OrderPaid {
                payment_ref: payment_ref.clone(),
                amount: *amount,
            })])
        }
        (S::Paid, C::Accept { ready_by }) => {
            if *ready_by < now {
                return Err(DomainError::invalid(
                    "ready_by",
                    "the ready time cannot be in the past",
                ));
            }
            Ok(vec![OrderEvent::Accepted(OrderAccepted {
                ready_by: *ready_by,
            })])
        }
        (S::Placed | S::Paid, C::Reject { reason }) => {
            Ok(vec![OrderEvent::Rejected(OrderRejected {
                reason: reason.clone(),
            })])
        }
        (S::Accepted, C::MarkReady) => Ok(vec![OrderEvent::Ready(OrderReady {})]),
        (status, C::Cancel { reason, by }) => {
            let allowed = match by {
                // Once the store has accepted, the food is being made.
                Role::Consumer => matches!(status, S::Placed | S::Paid),
                _ => matches!(status, S::Placed | S::Paid | S::Accepted | S::Ready),
            };
            if !allowed {
                return Err(illegal("cancel"));
            }
            Ok(vec![OrderEvent::Cancelled(OrderCancelled {
                reason: reason.clone(),
                by: *by,
            })])
        }
        (S::Cancelled | S::Rejected, C::Refund) => match (o.paid, o.refunded) {
            (Some(amount), false) => Ok(vec![OrderEvent::Refunded(OrderRefunded { amount })]),
            _ => Err(illegal("refund")),
        },
        (S::Ready, C::Complete) => Ok(vec![OrderEvent::Completed(OrderCompleted {})]),
        (_, C::Pay { .. }) => Err(illegal("pay")),
        (_, C::Accept { .. }) => Err(illegal("accept")),
        (_, C::Reject { .. }) => Err(illegal("reject")),
        (_, C::MarkReady) => Err(illegal("mark ready")),
        (_, C::Refund) => Err(illegal("refund")),
        (_, C::Complete) => Err(illegal("complete")),
        (_, C::Place(_)) => Err(DomainError::AlreadyExists {
            aggregate: Order::NAME,
        }),
    }
}

/// Folds an order event.
pub fn evolve(state: Order, event: &OrderEvent) -> Order {
    use OrderStatus as S;
    match (state, event) {
        (Order::NotPlaced, OrderEvent::Placed(p)) => Order::Placed(Box::new(OrderState {
            placed: p.clone(),
            status: S::Placed,
            paid: None,
            refunded: false,
        })),
        (Order::Placed(mut o), e) => {
            match e {
                OrderEvent::Paid(p) => {
                    o.status = S::Paid;
                    o.paid = Some(p.amount);
                }
                OrderEvent::Accepted(_) => o.status = S::Accepted,
                OrderEvent::Rejected(_) => o.status = S::Rejected,
                OrderEvent::Ready(_) => o.status = S::Ready,
                OrderEvent::Cancelled(_) => o.status = S::Cancelled,
                OrderEvent::Refunded(_) => o.refunded = true,
                OrderEvent::Completed(_) => o.status = S::Completed,
                OrderEvent::Placed(_) => {}
            }
            Order::Placed(o)
        }
        (state, _) => state,
    }
}

impl Aggregate for Order {
    type Event = OrderEvent;
    type Command = OrderCommand;
    const NAME: &'static str = "order";

    fn decide(
        &self,
        command: &OrderCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, DomainError> {
        decide(self, command, now)
    }

    fn evolve(self, event: &OrderEvent) -> Self {
        evolve(self, event)
    }

    fn select(event: Event) -> Option<OrderEvent> {
        match event {
            Event::Order(e) => Some(e),
            _ => None,
        }
    }

    fn state_name(&self) -> &'static str {
        match self {
            Order::NotPlaced => "not placed",
            Order::Placed(o) => match o.status {
                OrderStatus::Placed => "placed",
                OrderStatus::Paid => "paid",
                OrderStatus::Accepted => "accepted",
                OrderStatus::Ready => "ready",
                OrderStatus::Completed => "completed",
                OrderStatus::Cancelled => "cancelled",
                OrderStatus::Rejected => "rejected",
            },
        }
    }
}
