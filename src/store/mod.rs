//! The event store: one trait, several backends, one conformance suite.
//!
//! - [`EventStore`]: atomic optimistic-concurrency appends (one stream, or
//!   several streams in one [`Commit`]), stream reads, the gap-free global log
//!   and a catch-up-then-live subscription to it; idempotency records kept in
//!   the same transaction as the events they describe.
//! - [`embedded`]: the default backend, a purpose-built append-only log on
//!   local disk with group commit.
//! - [`sqlite`]: SQLite in WAL mode with group commit; the reference the
//!   log is measured against.
//! - `group` and `live` (crate-private): what the single-writer backends
//!   share — deciding a group of commits, and the in-memory live edge.
//! - `esdb` (cargo feature `eventstoredb`): EventStoreDB / KurrentDB, for
//!   operators who run that cluster.
//! - [`conformance`]: the behavioural suite every backend must pass.
//! - [`folds`]: a memo of folded streams a store may keep for the command
//!   layer, so that a load reads only a stream's new events.
//!
//! Positions and versions are 1-based: the first event of a stream has
//! version 1, the first event of the log has position 1. A stream with no
//! events has version 0.

pub mod conformance;
pub mod embedded;
#[cfg(feature = "eventstoredb")]
pub mod esdb;
pub mod folds;
pub(crate) mod group;
pub(crate) mod live;
mod record;
pub mod sqlite;

use async_trait::async_trait;
use std::path::PathBuf;
use std::sync::Arc;

pub use record::{EventMetadata, NewEvent, RecordedEvent, SubscribedEvent};

/// A place in the global log (1-based; 0 means "before the first event").
pub type Position = u64;

/// What the writer believes the stream's version to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the version is.
    Any,
    /// The stream must not exist yet (same as `Exact(0)`).
    NoStream,
    /// The stream's last version must be exactly this.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` satisfies this expectation.
    pub fn admits(&self, actual: u64) -> bool {
        match *self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => actual == v,
        }
    }
}

/// Events for one stream within a [`Commit`].
#[derive(Debug, Clone)]
pub struct StreamWrite {
    /// The stream, e.g. `visit-<uuid>`.
    pub stream: String,
    /// The version the decider saw.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: Vec<NewEvent>,
}

/// Claim of an idempotency key: stored with the events, in the same
/// transaction, so a retry can return the first outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    /// The key, already scoped by the caller (e.g. `consumer:<id>:<header value>`).
    pub key: String,
    /// A digest of the request, to tell a retry from a different request
    /// reusing the key.
    pub fingerprint: String,
    /// The response to give every retry (opaque to the store).
    pub outcome: String,
}

/// A stored idempotency record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The key.
    pub key: String,
    /// The fingerprint of the first request.
    pub fingerprint: String,
    /// The first outcome.
    pub outcome: String,
}

/// An atomic unit of writing: all writes and the idempotency claim are
/// stored together, or none is.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// Per-stream writes; each expected version is checked.
    pub writes: Vec<StreamWrite>,
    /// An optional idempotency claim.
    pub idempotency: Option<IdempotencyClaim>,
}

impl Commit {
    /// A commit of one stream write.
    pub fn single(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Commit {
            writes: vec![StreamWrite {
                stream: stream.to_owned(),
                expected,
                events,
            }],
            idempotency: None,
        }
    }
}

/// Where a committed write landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The stream's version after the write.
    pub version: u64,
    /// Global position of the write's last event (0 for an empty write).
    pub last_position: Position,
}

/// The result of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Stored; one entry per write, in order.
    Committed(Vec<Appended>),
    /// The idempotency key was already claimed; nothing was written.
    Replayed(IdempotencyRecord),
}

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: somebody else wrote first.
    #[error("stream `{stream}` is at version {actual}, but the write expected {expected:?}")]
    WrongExpectedVersion {
        /// The stream.
        stream: String,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's actual version.
        actual: u64,
    },
    /// The store's files are damaged.
    #[error("store file {} is damaged after position {last_good_position}: {detail}. Restore it from a backup, or copy it aside and start with an empty data directory", file.display())]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// The last position that reads back intact.
        last_good_position: Position,
        /// What was found.
        detail: String,
    },
    /// The request itself is malformed (empty stream name, empty commit).
    #[error("invalid write: {0}")]
    Invalid(String),
    /// The backend cannot do what was asked (e.g. EventStoreDB and a commit
    /// spanning several streams).
    #[error("not supported by this event store: {0}")]
    Unsupported(String),
    /// The store was shut down.
    #[error("the event store is shut down")]
    Closed,
    /// The backend failed (disk, database engine, network).
    #[error("event store backend failure: {0}")]
    Backend(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// A catch-up-then-live feed of the global log.
#[async_trait]
pub trait Subscription: Send {
    /// The next events in position order, waiting while there are none. Never
    /// skips or repeats a position.
    async fn next_batch(&mut self) -> Result<Vec<Arc<SubscribedEvent>>, StoreError>;
}

/// An event store backend.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Atomically applies every write of `commit` if every expected version
    /// holds and its idempotency key is unclaimed. Durable on return.
    async fn commit(&self, commit: Commit) -> Result<CommitOutcome, StoreError>;

    /// Events of `stream` from `from_version` (1-based, inclusive).
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of the global log from `from` (inclusive).
    async fn read_all(
        &self,
        from: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The position of the last committed event (0 when empty).
    async fn head(&self) -> Result<Position, StoreError>;

    /// Every event from `from` on: history first, then new events as they commit.
    async fn subscribe_all(&self, from: Position) -> Result<Box<dyn Subscription>, StoreError>;

    /// The idempotency record of `key`, if claimed.
    async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// The memo of folded streams this store keeps for the command layer
    /// (`None`: every load folds the whole stream).
    fn folds(&self) -> Option<&folds::Folds> {
        None
    }

    /// Appends to one stream: `append(stream, expected_version, events)`.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        match self
            .commit(Commit::single(stream, expected, events))
            .await?
        {
            CommitOutcome::Committed(mut a) => a
                .pop()
                .ok_or_else(|| StoreError::Backend("empty commit outcome".into())),
            CommitOutcome::Replayed(_) => Err(StoreError::Backend(
                "replay without an idempotency key".into(),
            )),
        }
    }
}
