//! Idempotency claims on EventStoreDB, which has no transaction spanning the
//! claim and the events it guards. Each key has a claim stream; its events
//! are an *intent* (the key's fingerprint and outcome, and the whole write:
//! stream, expected version, events with their ids) followed by a *decision*
//! (`committed` or `aborted`).
//!
//! - Claiming is appending the intent with the claim stream's expected
//!   revision: of concurrent claimants the server lets exactly one in.
//! - The write then rolls forward: its events are appended with their own
//!   ids and expected version. Whoever finds an undecided intent (a
//!   concurrent retry, a lookup, the claimant after a crash) rolls it
//!   forward too; the server's duplicate detection makes the repeated
//!   append a no-op, so the events land at most once.
//! - The decision is appended at the revision after the intent, so exactly
//!   one decision sticks: `committed` once the events are in the stream,
//!   `aborted` if the expected version no longer held. After `aborted` the
//!   key is free again (the command layer retries with the same key).
//!
//! So a claim is durable exactly when its events are, as in the embedded
//! store — reached by completing the intent rather than by one transaction.

use kurrentdb::{AppendToStreamOptions, EventData, ReadStreamOptions, StreamState};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::mapping::StoredMetadata;
use super::{backend, EsdbStore};
use crate::store::{
    Appended, CommitOutcome, EventMetadata, ExpectedVersion, IdempotencyClaim, IdempotencyRecord,
    NewEvent, StoreError, StreamWrite,
};
use o2ohub_events::{Actor, Role};

const INTENT: &str = "o2ohub.ClaimIntended";
const COMMITTED: &str = "o2ohub.ClaimCommitted";
const ABORTED: &str = "o2ohub.ClaimAborted";

/// The expected version, as stored in an intent.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(tag = "kind", content = "version")]
enum Expected {
    Any,
    NoStream,
    Exact(u64),
}

/// One event of an intent's write.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IntentEvent {
    id: Uuid,
    event_type: String,
    payload: String,
    metadata: StoredMetadata,
}

/// A claimed key and the write it guards.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Intent {
    key: String,
    fingerprint: String,
    outcome: String,
    stream: String,
    expected: Expected,
    events: Vec<IntentEvent>,
}

impl Intent {
    fn new(claim: &IdempotencyClaim, write: &StreamWrite) -> Self {
        Intent {
            key: claim.key.clone(),
            fingerprint: claim.fingerprint.clone(),
            outcome: claim.outcome.clone(),
            stream: write.stream.clone(),
            expected: match write.expected {
                ExpectedVersion::Any => Expected::Any,
                ExpectedVersion::NoStream => Expected::NoStream,
                ExpectedVersion::Exact(v) => Expected::Exact(v),
            },
            events: write
                .events
                .iter()
                .map(|e| IntentEvent {
                    id: e.event_id,
                    event_type: e.event_type.clone(),
                    payload: e.payload.clone(),
                    metadata: StoredMetadata::of(e),
                })
                .collect(),
        }
    }

    fn record(&self) -> IdempotencyRecord {
        IdempotencyRecord {
            key: self.key.clone(),
            fingerprint: self.fingerprint.clone(),
            outcome: self.outcome.clone(),
        }
    }

    fn write(&self) -> Result<StreamWrite, StoreError> {
        let events = self
            .events
            .iter()
            .map(|e| {
                let m = &e.metadata;
                Ok(NewEvent {
                    event_id: e.id,
                    event_type: e.event_type.clone(),
                    schema_version: m.schema_version,
                    payload: e.payload.clone(),
                    metadata: EventMetadata {
                        occurred_at: chrono::DateTime::from_timestamp_micros(m.occurred_at_us)
                            .ok_or_else(|| {
                                StoreError::Backend("intent time out of range".into())
                            })?,
                        correlation_id: m.correlation_id,
                        causation_id: m.causation_id,
                        actor: Actor {
                            role: Role::parse(&m.role).ok_or_else(|| {
                                StoreError::Backend(format!("intent names unknown role {}", m.role))
                            })?,
                            subject: m.subject.clone(),
                        },
                    },
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(StreamWrite {
            stream: self.stream.clone(),
            expected: match self.expected {
                Expected::Any => ExpectedVersion::Any,
                Expected::NoStream => ExpectedVersion::NoStream,
                Expected::Exact(v) => ExpectedVersion::Exact(v),
            },
            events,
        })
    }
}

/// Where a claim stream stands.
enum State {
    /// Unclaimed (or the last claim aborted): claim at this revision.
    Free(StreamState),
    /// Claimed, not yet decided: the intent and its revision.
    Pending(Box<Intent>, u64),
    /// Claimed and its write stored.
    Committed(Box<Intent>),
}

async fn state(store: &EsdbStore, claim_stream: &str) -> Result<State, StoreError> {
    let read = store
        .inner
        .client
        .read_stream(claim_stream, &ReadStreamOptions::default())
        .await;
    let mut read = match read {
        Ok(r) => r,
        Err(kurrentdb::Error::ResourceNotFound) => return Ok(State::Free(StreamState::NoStream)),
        Err(e) => return Err(backend(e)),
    };
    let mut state = State::Free(StreamState::NoStream);
    loop {
        let e = match read.next().await {
            Ok(Some(e)) => e,
            Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(state),
            Err(e) => return Err(backend(e)),
        };
        let e = e.get_original_event();
        state = match (e.event_type.as_str(), state) {
            (INTENT, _) => {
                let intent: Intent = serde_json::from_slice(&e.data).map_err(|err| {
                    StoreError::Backend(format!("claim {claim_stream} holds a bad intent: {err}"))
                })?;
                State::Pending(Box::new(intent), e.revision)
            }
            (COMMITTED, State::Pending(intent, _)) => State::Committed(intent),
            (ABORTED, State::Pending(..)) => State::Free(StreamState::StreamRevision(e.revision)),
            // A second decision lost its race: the first stands.
            (_, s @ (State::Committed(_) | State::Free(_))) => match s {
                State::Free(_) => State::Free(StreamState::StreamRevision(e.revision)),
                other => other,
            },
            (other, _) => {
                return Err(StoreError::Backend(format!(
                    "claim {claim_stream} holds an event of unknown type {other}"
                )))
            }
        };
    }
}

/// Appends a decision after the intent at `revision`; a lost race is fine
/// (the decision already there stands).
async fn decide(
    store: &EsdbStore,
    claim_stream: &str,
    revision: u64,
    decision: &str,
) -> Result<bool, StoreError> {
    let event = EventData::json(decision, &serde_json::json!({}))
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let options =
        AppendToStreamOptions::default().stream_state(StreamState::StreamRevision(revision));
    match store
        .inner
        .client
        .append_to_stream(claim_stream, &options, event)
        .await
    {
        Ok(_) => Ok(true),
        Err(kurrentdb::Error::WrongExpectedVersion { .. }) => Ok(false),
        Err(e) => Err(backend(e)),
    }
}

/// Whether the intent's events already sit where it expected them (written
/// by an earlier roll-forward, perhaps too long ago for the server to
/// recognise a duplicate).
async fn already_there(
    store: &EsdbStore,
    write: &StreamWrite,
) -> Result<Option<Appended>, StoreError> {
    let first_version = match write.expected {
        ExpectedVersion::Any => return Ok(None),
        ExpectedVersion::NoStream => 1,
        ExpectedVersion::Exact(v) => v + 1,
    };
    let found = crate::store::EventStore::read_stream(store, &write.stream, first_version).await?;
    let ids_match = found.len() >= write.events.len()
        && found
            .iter()
            .zip(&write.events)
            .all(|(f, w)| f.event.event_id == w.event_id);
    Ok(ids_match.then(|| Appended {
        version: first_version + write.events.len() as u64 - 1,
        last_position: found[write.events.len() - 1].position,
    }))
}

/// Completes an intent: stores its write (at most once) and decides.
/// `Ok(Err(conflict))` when its expected version no longer held.
async fn roll_forward(
    store: &EsdbStore,
    claim_stream: &str,
    intent: &Intent,
    revision: u64,
) -> Result<Result<Appended, StoreError>, StoreError> {
    let write = intent.write()?;
    match store.append_write(&write).await {
        Ok(appended) => {
            decide(store, claim_stream, revision, COMMITTED).await?;
            Ok(Ok(appended))
        }
        Err(conflict @ StoreError::WrongExpectedVersion { .. }) => {
            if let Some(appended) = already_there(store, &write).await? {
                decide(store, claim_stream, revision, COMMITTED).await?;
                return Ok(Ok(appended));
            }
            if !decide(store, claim_stream, revision, ABORTED).await? {
                // Someone decided first; if they committed, so be it.
                if let Some(appended) = already_there(store, &write).await? {
                    return Ok(Ok(appended));
                }
            }
            Ok(Err(conflict))
        }
        Err(other) => Err(other),
    }
}

/// A single-stream commit guarded by an idempotency claim.
pub(super) async fn commit(
    store: &EsdbStore,
    write: &StreamWrite,
    claim: &IdempotencyClaim,
) -> Result<CommitOutcome, StoreError> {
    let claim_stream = store.inner.namespace.claim_stream(&claim.key);
    let intent = Intent::new(claim, write);
    let body = serde_json::to_value(&intent).map_err(|e| StoreError::Backend(e.to_string()))?;
    loop {
        match state(store, &claim_stream).await? {
            State::Committed(first) => return Ok(CommitOutcome::Replayed(first.record())),
            State::Pending(other, revision) => {
                // Its outcome is recorded in the claim stream, read next.
                let _decided = roll_forward(store, &claim_stream, &other, revision).await?;
            }
            State::Free(at) => {
                let event = EventData::json(INTENT, &body)
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                let options = AppendToStreamOptions::default().stream_state(at);
                match store
                    .inner
                    .client
                    .append_to_stream(claim_stream.as_str(), &options, event)
                    .await
                {
                    Ok(written) => {
                        return match roll_forward(
                            store,
                            &claim_stream,
                            &intent,
                            written.next_expected_version,
                        )
                        .await?
                        {
                            Ok(appended) => Ok(CommitOutcome::Committed(vec![appended])),
                            Err(conflict) => Err(conflict),
                        };
                    }
                    // Another claimant got in first: see what it did.
                    Err(kurrentdb::Error::WrongExpectedVersion { .. }) => continue,
                    Err(e) => return Err(backend(e)),
                }
            }
        }
    }
}

/// The committed record of `key`, completing a pending claim first.
pub(super) async fn lookup(
    store: &EsdbStore,
    key: &str,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let claim_stream = store.inner.namespace.claim_stream(key);
    loop {
        match state(store, &claim_stream).await? {
            State::Committed(intent) => return Ok(Some(intent.record())),
            State::Free(_) => return Ok(None),
            State::Pending(intent, revision) => {
                let _decided = roll_forward(store, &claim_stream, &intent, revision).await?;
            }
        }
    }
}
