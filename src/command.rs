//! Command handling: load an aggregate by folding its stream, let it decide,
//! append what it decided with the version it saw, and retry (bounded) when
//! another writer got there first. Commands spanning streams (booking takes a
//! seat of a slot and creates the visit) are one atomic multi-stream commit.
//! An idempotency key is claimed in the same commit, so a retry returns the
//! first outcome and appends nothing.

use chrono::{DateTime, Utc};
use o2ohub_events::{
    slot_stream, Actor, CodeDigest, ConsumerId, DecodeError, Event, MerchantId, SlotStart, VisitId,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

use crate::domain::merchant::Merchant;
use crate::domain::slot::{Slot, SlotCommand};
use crate::domain::visit::{Visit, VisitCommand};
use crate::domain::{Aggregate, DomainError};
use crate::store::folds::Folded;
use crate::store::{
    Commit, CommitOutcome, EventMetadata, EventStore, ExpectedVersion, IdempotencyClaim, NewEvent,
    StoreError, StreamWrite,
};

/// Attempts before a contended command gives up. Each round of a contended
/// stream lets at least one writer through, so this bounds waiting, not progress.
pub const MAX_ATTEMPTS: u32 = 32;

/// An idempotency key as the command layer sees it.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The key, scoped to its actor (`<role>:<subject>:<client key>`).
    pub key: String,
    /// A digest of the request, to refuse reuse of a key for another request.
    pub fingerprint: String,
}

/// Who is asking, when, and as part of what.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// Who issued the command.
    pub actor: Actor,
    /// The request id, recorded as correlation id on every event.
    pub correlation_id: Uuid,
    /// The event that caused this command, for process managers.
    pub causation_id: Option<Uuid>,
    /// The client's idempotency key, if it sent one.
    pub idempotency: Option<IdempotencyKey>,
    /// The time the command is decided at.
    pub now: DateTime<Utc>,
}

impl CommandContext {
    /// A context for `actor` at `now`, with a fresh correlation id.
    pub fn new(actor: Actor, now: DateTime<Utc>) -> Self {
        CommandContext {
            actor,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            idempotency: None,
            now,
        }
    }

    fn metadata(&self) -> EventMetadata {
        EventMetadata {
            occurred_at: self.now,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            actor: self.actor.clone(),
        }
    }
}

/// The version a stream reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamVersion {
    /// The stream.
    pub stream: String,
    /// Its version after the command.
    pub version: u64,
}

/// What a command did; also the outcome stored under its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executed {
    /// Streams written and the versions they reached.
    pub streams: Vec<StreamVersion>,
    /// Type names of the events appended, in order.
    pub events: Vec<String>,
    /// True when this is the stored outcome of an earlier request with the same key.
    #[serde(skip)]
    pub replayed: bool,
}

/// Why a command did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The aggregate refused it.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Still conflicting after [`MAX_ATTEMPTS`].
    #[error("stream `{stream}` is too contended: gave up after {attempts} attempts; retry later")]
    Contended {
        /// The stream.
        stream: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The idempotency key was used before for a different request.
    #[error("the idempotency key was already used for a different request")]
    KeyReused,
    /// A stored event could not be read.
    #[error("stored event could not be read: {0}")]
    Decode(#[from] DecodeError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        CommandError::Store(e)
    }
}

/// Folds a stream into its aggregate; returns the state and the stream
/// version. Starts from the store's memo of the stream when it has one
/// ([`crate::store::folds`]) and reads only the events after it.
pub async fn load<A: Aggregate>(
    store: &dyn EventStore,
    stream: &str,
) -> Result<(A, u64), CommandError> {
    let memo = store.folds();
    let (mut state, mut version) = memo
        .and_then(|m| m.get(stream))
        .and_then(|f| Some((f.state.downcast_ref::<A>()?.clone(), f.version)))
        .unwrap_or_default();
    let tail = store.read_stream(stream, version + 1).await?;
    let grew = !tail.is_empty();
    for recorded in tail {
        version = recorded.version;
        if let Some(e) = A::select(recorded.decode()?.event) {
            state = state.evolve(&e);
        }
    }
    if let Some(memo) = memo.filter(|_| grew) {
        let folded = Folded {
            version,
            state: Arc::new(state.clone()),
        };
        memo.put(stream, folded);
    }
    Ok((state, version))
}

/// A planned write of one aggregate's decided events.
struct Planned {
    stream: String,
    version: u64,
    events: Vec<Event>,
    /// The aggregate after `events`, for the store's memo once they are
    /// committed, so the stream's next command reads nothing back. `None`
    /// for a new stream of an aggregate that is not [`Aggregate::SHARED`]:
    /// its first events are remembered once something reads them, since new
    /// streams (one visit per booking) would crowd the memo's least recently
    /// used out — the slots, revisited less often than the memo turns over.
    after: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl Planned {
    /// `events` decided on `state`, the stream at `version`.
    fn new<A: Aggregate>(stream: String, version: u64, state: &A, events: Vec<A::Event>) -> Self {
        let after = (version > 0 || A::SHARED).then(|| {
            let after = events.iter().fold(state.clone(), |s, e| s.evolve(e));
            Arc::new(after) as Arc<dyn std::any::Any + Send + Sync>
        });
        Planned {
            stream,
            version,
            events: events.into_iter().map(Into::into).collect(),
            after,
        }
    }
}

/// Returns the stored outcome of an already-used key, or `None` if unused.
async fn replay(
    store: &dyn EventStore,
    ctx: &CommandContext,
) -> Result<Option<Executed>, CommandError> {
    let Some(key) = &ctx.idempotency else {
        return Ok(None);
    };
    match store.idempotency(&key.key).await? {
        None => Ok(None),
        Some(record) => stored_outcome(&record.fingerprint, &record.outcome, key).map(Some),
    }
}

fn stored_outcome(
    fingerprint: &str,
    outcome: &str,
    key: &IdempotencyKey,
) -> Result<Executed, CommandError> {
    if fingerprint != key.fingerprint {
        return Err(CommandError::KeyReused);
    }
    let mut executed: Executed = serde_json::from_str(outcome).map_err(|e| {
        CommandError::Store(StoreError::Backend(format!(
            "stored outcome unreadable: {e}"
        )))
    })?;
    executed.replayed = true;
    Ok(executed)
}

/// Commits planned writes atomically with the idempotency claim. `Ok(None)`
/// means a version conflict: the caller reloads and decides again.
async fn commit(
    store: &dyn EventStore,
    plan: Vec<Planned>,
    ctx: &CommandContext,
) -> Result<Option<Executed>, CommandError> {
    let meta = ctx.metadata();
    let executed = Executed {
        streams: plan
            .iter()
            .map(|p| StreamVersion {
                stream: p.stream.clone(),
                version: p.version + p.events.len() as u64,
            })
            .collect(),
        events: plan
            .iter()
            .flat_map(|p| p.events.iter().map(|e| e.event_type().to_owned()))
            .collect(),
        replayed: false,
    };
    let plan: Vec<Planned> = plan.into_iter().filter(|p| !p.events.is_empty()).collect();
    // What the store's memo learns if the commit lands.
    let folded: Vec<(String, Folded)> = plan
        .iter()
        .filter_map(|p| {
            let folded = Folded {
                version: p.version + p.events.len() as u64,
                state: p.after.clone()?,
            };
            Some((p.stream.clone(), folded))
        })
        .collect();
    let writes = plan
        .into_iter()
        .map(|p| StreamWrite {
            stream: p.stream,
            expected: ExpectedVersion::Exact(p.version),
            events: p
                .events
                .iter()
                .map(|e| NewEvent::from_event(e, &meta))
                .collect(),
        })
        .collect::<Vec<_>>();
    if writes.is_empty() {
        // Nothing happened (an idempotent no-op such as adding existing staff).
        return Ok(Some(executed));
    }
    let idempotency = ctx.idempotency.as_ref().map(|k| IdempotencyClaim {
        key: k.key.clone(),
        fingerprint: k.fingerprint.clone(),
        outcome: serde_json::to_string(&executed).unwrap_or_default(),
    });
    let events: usize = writes.iter().map(|w| w.events.len()).sum();
    let started = std::time::Instant::now();
    let outcome = store
        .commit(Commit {
            writes,
            idempotency,
        })
        .await;
    metrics::histogram!("o2ohub_commit_seconds").record(started.elapsed().as_secs_f64());
    match outcome {
        Ok(CommitOutcome::Committed(_)) => {
            counted("committed");
            metrics::counter!("o2ohub_appended_events_total").increment(events as u64);
            if let Some(memo) = store.folds() {
                for (stream, folded) in folded {
                    memo.put(&stream, folded);
                }
            }
            Ok(Some(executed))
        }
        Ok(CommitOutcome::Replayed(r)) => {
            counted("replayed");
            let key = ctx.idempotency.as_ref().ok_or(CommandError::KeyReused)?;
            stored_outcome(&r.fingerprint, &r.outcome, key).map(Some)
        }
        Err(StoreError::WrongExpectedVersion { .. }) => {
            counted("conflict");
            Ok(None)
        }
        Err(e) => {
            counted("failed");
            Err(e.into())
        }
    }
}

/// Counts a commit attempt in `o2ohub_commits_total` by outcome:
/// `committed`, `conflict` (decided again on fresh state), `replayed` (the
/// idempotency key's first answer returned, nothing written) or `failed`.
fn counted(outcome: &'static str) {
    metrics::counter!("o2ohub_commits_total", "outcome" => outcome).increment(1);
}

/// One attempt's decision: the writes to commit, or why not.
type PlanFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<Planned>, CommandError>> + Send + 'a>,
>;

/// Replays a used idempotency key, or decides (with `plan`, which loads what
/// it needs and returns the writes) and commits, deciding again on a version
/// conflict, at most [`MAX_ATTEMPTS`] times. Every command goes through here.
async fn decide_and_commit<'a>(
    store: &'a dyn EventStore,
    ctx: &'a CommandContext,
    stream: &str,
    mut plan: impl FnMut() -> PlanFuture<'a>,
) -> Result<Executed, CommandError> {
    if let Some(done) = replay(store, ctx).await? {
        counted("replayed");
        return Ok(done);
    }
    for _ in 0..MAX_ATTEMPTS {
        let writes = plan().await?;
        if let Some(done) = commit(store, writes, ctx).await? {
            return Ok(done);
        }
    }
    Err(CommandError::Contended {
        stream: stream.to_owned(),
        attempts: MAX_ATTEMPTS,
    })
}

/// Runs a command against one aggregate's stream.
pub async fn execute<A: Aggregate>(
    store: &dyn EventStore,
    stream: &str,
    command: &A::Command,
    ctx: &CommandContext,
) -> Result<Executed, CommandError> {
    decide_and_commit(store, ctx, stream, || {
        Box::pin(async move {
            let (state, version) = load::<A>(store, stream).await?;
            let events = state.decide(command, ctx.now)?;
            Ok(vec![Planned::new(
                stream.to_owned(),
                version,
                &state,
                events,
            )])
        })
    })
    .await
}

/// A consumer's booking of one slot of a merchant's service.
#[derive(Debug, Clone)]
pub struct BookVisit {
    /// The new visit's id.
    pub visit_id: VisitId,
    /// Who books.
    pub consumer_id: ConsumerId,
    /// The store.
    pub merchant_id: MerchantId,
    /// The service.
    pub service_id: String,
    /// The slot.
    pub slot: SlotStart,
    /// Digest of the redemption code generated for this visit.
    pub code: CodeDigest,
}

/// Books a visit: checks the merchant (active, offers the service, open for
/// the whole slot), takes a seat of the slot and records the visit, in one
/// commit. Under contention for the last seats, exactly the free seats are
/// taken and every other booking gets [`DomainError::SlotFull`].
pub async fn book_visit(
    store: &dyn EventStore,
    book: &BookVisit,
    ctx: &CommandContext,
) -> Result<Executed, CommandError> {
    let slot_stream = slot_stream(book.merchant_id, &book.service_id, book.slot);
    let visit_stream = book.visit_id.stream();
    let slot_stream = &slot_stream;
    let visit_stream = &visit_stream;
    decide_and_commit(store, ctx, slot_stream, || {
        Box::pin(async move {
            let (merchant, _) = load::<Merchant>(store, &book.merchant_id.stream()).await?;
            let m = match &merchant {
                Merchant::Active(m) => m,
                Merchant::Paused(_) => {
                    return Err(DomainError::MerchantUnavailable {
                        reason: "the store is paused",
                    }
                    .into())
                }
                Merchant::Unregistered => {
                    return Err(DomainError::NotFound {
                        aggregate: Merchant::NAME,
                    }
                    .into())
                }
            };
            let service = m.service(&book.service_id).ok_or_else(|| {
                DomainError::invalid("service_id", "the merchant offers no such service")
            })?;
            if !m
                .profile
                .opening_hours
                .covers(book.slot.at(), service.duration_minutes)
            {
                return Err(DomainError::MerchantUnavailable {
                    reason: "the store is closed during that slot",
                }
                .into());
            }
            let (slot, slot_version) = load::<Slot>(store, slot_stream).await?;
            let (visit, visit_version) = load::<Visit>(store, visit_stream).await?;
            let seat = slot.decide(
                &SlotCommand::Take {
                    visit_id: book.visit_id,
                    capacity: service.slot_capacity,
                },
                ctx.now,
            )?;
            let booked = visit.decide(
                &VisitCommand::Book {
                    visit_id: book.visit_id,
                    consumer_id: book.consumer_id,
                    merchant_id: book.merchant_id,
                    service_id: book.service_id.clone(),
                    slot: book.slot,
                    duration_minutes: service.duration_minutes,
                    price: service.price,
                    code: book.code.clone(),
                },
                ctx.now,
            )?;
            let plan = vec![
                Planned::new(slot_stream.clone(), slot_version, &slot, seat),
                Planned::new(visit_stream.clone(), visit_version, &visit, booked),
            ];
            Ok(plan)
        })
    })
    .await
}

/// Cancels a visit and gives its seat back, in one commit.
pub async fn cancel_visit(
    store: &dyn EventStore,
    visit_id: VisitId,
    reason: &str,
    ctx: &CommandContext,
) -> Result<Executed, CommandError> {
    let visit_stream = visit_id.stream();
    let visit_stream = &visit_stream;
    decide_and_commit(store, ctx, visit_stream, || {
        Box::pin(async move {
            let (visit, visit_version) = load::<Visit>(store, visit_stream).await?;
            let cancelled = visit.decide(
                &VisitCommand::Cancel {
                    reason: reason.to_owned(),
                    by: ctx.actor.role,
                },
                ctx.now,
            )?;
            let v = visit.details().ok_or(DomainError::NotFound {
                aggregate: Visit::NAME,
            })?;
            let slot_stream = slot_stream(v.merchant_id, &v.service_id, v.slot);
            let (slot, slot_version) = load::<Slot>(store, &slot_stream).await?;
            let released = slot.decide(&SlotCommand::Release { visit_id }, ctx.now)?;
            let plan = vec![
                Planned::new(visit_stream.clone(), visit_version, &visit, cancelled),
                Planned::new(slot_stream, slot_version, &slot, released),
            ];
            Ok(plan)
        })
    })
    .await
}

/// Moves a visit to another slot of the same service: releases the old seat,
/// takes a new one and records the move, in one commit.
pub async fn reschedule_visit(
    store: &dyn EventStore,
    visit_id: VisitId,
    to: SlotStart,
    ctx: &CommandContext,
) -> Result<Executed, CommandError> {
    let visit_stream = visit_id.stream();
    let visit_stream = &visit_stream;
    decide_and_commit(store, ctx, visit_stream, || {
        Box::pin(async move {
            let (visit, visit_version) = load::<Visit>(store, visit_stream).await?;
            let moved = visit.decide(&VisitCommand::Reschedule { to }, ctx.now)?;
            let v = visit.details().ok_or(DomainError::NotFound {
                aggregate: Visit::NAME,
            })?;
            let (merchant, _) = load::<Merchant>(store, &v.merchant_id.stream()).await?;
            let Merchant::Active(m) = &merchant else {
                return Err(DomainError::MerchantUnavailable {
                    reason: "the store is not taking bookings",
                }
                .into());
            };
            let service = m.service(&v.service_id).ok_or_else(|| {
                DomainError::invalid("service_id", "the merchant no longer offers this service")
            })?;
            if !m
                .profile
                .opening_hours
                .covers(to.at(), service.duration_minutes)
            {
                return Err(DomainError::MerchantUnavailable {
                    reason: "the store is closed during that slot",
                }
                .into());
            }
            let (from_stream, to_stream) = (
                slot_stream(v.merchant_id, &v.service_id, v.slot),
                slot_stream(v.merchant_id, &v.service_id, to),
            );
            let (from_slot, from_version) = load::<Slot>(store, &from_stream).await?;
            let (to_slot, to_version) = load::<Slot>(store, &to_stream).await?;
            let released = from_slot.decide(&SlotCommand::Release { visit_id }, ctx.now)?;
            let taken = to_slot.decide(
                &SlotCommand::Take {
                    visit_id,
                    capacity: service.slot_capacity,
                },
                ctx.now,
            )?;
            let plan = vec![
                Planned::new(visit_stream.clone(), visit_version, &visit, moved),
                Planned::new(from_stream, from_version, &from_slot, released),
                Planned::new(to_stream, to_version, &to_slot, taken),
            ];
            Ok(plan)
        })
    })
    .await
}

/// Marks an order ready and puts its delivery in the dispatch pool, in one
/// commit: a ready order is never left without a delivery.
pub async fn ready_for_pickup(
    store: &dyn EventStore,
    order_id: o2ohub_events::OrderId,
    delivery_id: o2ohub_events::DeliveryId,
    ctx: &CommandContext,
) -> Result<Executed, CommandError> {
    use crate::domain::delivery::{Delivery, DeliveryCommand};
    use crate::domain::order::{Order, OrderCommand};
    let order_stream = order_id.stream();
    let order_stream = &order_stream;
    decide_and_commit(store, ctx, order_stream, || {
        Box::pin(async move {
            let (order, order_version) = load::<Order>(store, order_stream).await?;
            let ready = order.decide(&OrderCommand::MarkReady, ctx.now)?;
            let Order::Placed(o) = &order else {
                return Err(DomainError::NotFound {
                    aggregate: Order::NAME,
                }
                .into());
            };
            let (merchant, _) = load::<Merchant>(store, &o.placed.merchant_id.stream()).await?;
            let m = merchant.registered().ok_or(DomainError::NotFound {
                aggregate: Merchant::NAME,
            })?;
            let (delivery, delivery_version) =
                load::<Delivery>(store, &delivery_id.stream()).await?;
            let request = o2ohub_events::DeliveryRequested {
                delivery_id,
                order_id,
                merchant_id: o.placed.merchant_id,
                pickup: m.profile.location,
                drop_off: o.placed.drop_off,
                ready_at: ctx.now,
                deadline: o
                    .placed
                    .promised_by
                    .max(ctx.now + chrono::Duration::minutes(1)),
                load: 1,
            };
            let requested =
                delivery.decide(&DeliveryCommand::Request(Box::new(request)), ctx.now)?;
            let plan = vec![
                Planned::new(order_stream.clone(), order_version, &order, ready),
                Planned::new(delivery_id.stream(), delivery_version, &delivery, requested),
            ];
            Ok(plan)
        })
    })
    .await
}
