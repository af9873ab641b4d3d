//! The EventStoreDB / KurrentDB backend (cargo feature `eventstoredb`), over
//! the official `kurrentdb` client — the renamed successor of the
//! `eventstore` crate with the same API, on a newer tonic and rand, and
//! sharing the rustls/aws-lc build the hub already has.
//!
//! - [`mapping`]: the pure mappings (names, versions, metadata, errors, the
//!   dense position index), unit-tested without a server.
//! - `claims` (private): idempotency claims as claim streams with
//!   intent/decision events.
//!
//! How the trait maps onto the server:
//!
//! - **Streams** map one-to-one (inside an optional namespace prefix); a
//!   stream's version `v` is revision `v - 1`; expected versions become
//!   expected revisions, so the server checks them atomically.
//! - **Event ids** are passed through: the server's duplicate detection
//!   makes a retried append idempotent.
//! - **Positions**: `$all` positions are byte offsets in the server's log —
//!   ordered, but not dense. The store's position `n` is the `n`th event of
//!   the namespace in `$all` (system and claim streams filtered out on the
//!   server). Each process keeps the index from one to the other (16 bytes
//!   per event, filled by a catch-up subscription to `$all`, like the
//!   embedded store's index is rebuilt on open); a commit returns once its
//!   events are indexed, so `last_position` is exact. The numbering is the
//!   same in every process because `$all` only grows at its end; deleting or
//!   truncating a hub stream (or scavenging it away) would renumber, so the
//!   hub never does.
//! - **Multi-stream commits** are refused with [`StoreError::Unsupported`]:
//!   the server appends atomically to one stream only, and appending stream
//!   by stream could leave half a commit. Commands whose commits span
//!   aggregates (booking a slot with its visit) need one stream per commit
//!   before they can run on this backend; see docs/operations.md.
//! - **Idempotency claims** ride on claim streams (`claims`), decided by the
//!   server's expected-revision check and completed by whoever reads them.

mod claims;
pub mod mapping;

use async_trait::async_trait;
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, EventData, ReadAllOptions, ReadStreamOptions,
    ResolvedEvent, RetryOptions, StreamPosition, SubscribeToAllOptions, SubscriptionFilter,
};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

use self::mapping::{AllPosition, Namespace, PositionIndex, StoredMetadata};
use super::{
    Appended, Commit, CommitOutcome, EventStore, IdempotencyRecord, NewEvent, Position,
    RecordedEvent, StoreError, StreamWrite, SubscribedEvent, Subscription,
};

/// How long a commit waits for its events to be indexed before giving up.
const INDEX_WAIT: Duration = Duration::from_secs(30);

/// A handle to an EventStoreDB/KurrentDB store; cheap to clone.
#[derive(Clone)]
pub struct EsdbStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The gRPC client (it reconnects and follows the cluster leader).
    client: Client,
    /// Where the hub's streams live on the server.
    namespace: Namespace,
    /// `$all` position of every store position, filled by the follower.
    index: Arc<RwLock<PositionIndex>>,
    /// The indexed head, to wait on.
    head: watch::Receiver<Position>,
    /// Set at shutdown; subscriptions end with [`StoreError::Closed`].
    closed: watch::Sender<bool>,
    /// Folded streams, for the command layer's loads (each process keeps
    /// its own; a load still reads the server's tail).
    folds: super::folds::Folds,
}

/// Parses a connection string (`esdb://host:2113?tls=false`,
/// `kurrentdb+discover://…`).
fn settings(url: &str) -> Result<ClientSettings, StoreError> {
    url.parse::<ClientSettings>().map_err(|e| {
        StoreError::Invalid(format!(
            "O2OHUB_ESDB_URL is not an EventStoreDB connection string: {e}"
        ))
    })
}

fn backend(e: kurrentdb::Error) -> StoreError {
    StoreError::Backend(format!("EventStoreDB: {e}"))
}

fn all_position(e: &ResolvedEvent) -> AllPosition {
    let p = e.get_original_event().position;
    (p.commit, p.prepare)
}

impl EsdbStore {
    /// Connects to the server at `url` and indexes the namespace's history
    /// (one pass over its events in `$all`) before returning.
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, StoreError> {
        Self::open(url, Namespace::new(namespace)?, StreamPosition::Start).await
    }

    /// Connects with a new, empty namespace of its own (a fresh store on a
    /// shared server, as the conformance suite wants one per case). Its
    /// index starts at the current end of `$all`: nothing before it can
    /// belong to a namespace that did not exist.
    pub async fn connect_fresh(url: &str) -> Result<Self, StoreError> {
        let namespace = Namespace::new(&format!("t{}/", uuid::Uuid::now_v7().simple()))?;
        let client = Client::new(settings(url)?)
            .map_err(|e| StoreError::Backend(format!("EventStoreDB client: {e}")))?;
        let mut last = client
            .read_all(
                &ReadAllOptions::default()
                    .backwards()
                    .position(StreamPosition::End)
                    .max_count(1),
            )
            .await
            .map_err(backend)?;
        let start = match last.next().await.map_err(backend)? {
            Some(e) => StreamPosition::Position(e.get_original_event().position),
            None => StreamPosition::Start,
        };
        Self::open(url, namespace, start).await
    }

    async fn open(
        url: &str,
        namespace: Namespace,
        start: StreamPosition<kurrentdb::Position>,
    ) -> Result<Self, StoreError> {
        let client = Client::new(settings(url)?)
            .map_err(|e| StoreError::Backend(format!("EventStoreDB client: {e}")))?;
        let filter = SubscriptionFilter::on_stream_name().regex(namespace.all_filter_regex());
        // Where history ends now: the follower must pass it before we answer.
        let mut last = client
            .read_all(
                &ReadAllOptions::default()
                    .backwards()
                    .position(StreamPosition::End)
                    .filter(filter.clone())
                    .max_count(1),
            )
            .await
            .map_err(backend)?;
        let history_end = match start {
            StreamPosition::Start => last
                .next()
                .await
                .map_err(backend)?
                .map(|e| all_position(&e)),
            _ => None,
        };
        let index = Arc::new(RwLock::new(PositionIndex::default()));
        let (head_tx, head) = watch::channel(0);
        let (closed, closed_rx) = watch::channel(false);
        tokio::spawn(follow(
            client.clone(),
            filter,
            start,
            index.clone(),
            head_tx,
            closed_rx,
        ));
        let store = EsdbStore {
            inner: Arc::new(Inner {
                client,
                namespace,
                index,
                head,
                closed,
                folds: super::folds::Folds::default(),
            }),
        };
        if let Some(end) = history_end {
            store.wait_indexed(end).await?;
        }
        Ok(store)
    }

    /// Ends every subscription; later calls still reach the server.
    pub fn shutdown(&self) {
        let _ = self.inner.closed.send(true);
    }

    /// Waits until the event at `at` in `$all` has its store position.
    async fn wait_indexed(&self, at: AllPosition) -> Result<Position, StoreError> {
        let mut head = self.inner.head.clone();
        let deadline = tokio::time::Instant::now() + INDEX_WAIT;
        loop {
            if let Some(p) = self.index().position_of(at) {
                return Ok(p);
            }
            match tokio::time::timeout_at(deadline, head.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(StoreError::Closed),
                Err(_) => {
                    return Err(StoreError::Backend(format!(
                        "the event at $all {at:?} was not indexed within {INDEX_WAIT:?}: is the $all subscription stuck?"
                    )))
                }
            }
        }
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, PositionIndex> {
        self.inner.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::on_stream_name().regex(self.inner.namespace.all_filter_regex())
    }

    /// A server event as the store's, at a known position.
    fn recorded(&self, e: &ResolvedEvent, position: Position) -> Result<RecordedEvent, StoreError> {
        let e = e.get_original_event();
        let stream = self
            .inner
            .namespace
            .hub_stream(e.stream_id())
            .ok_or_else(|| {
                StoreError::Backend(format!("`{}` is not a stream of this hub", e.stream_id()))
            })?;
        mapping::recorded_event(
            position,
            mapping::ServerEvent {
                stream,
                revision: e.revision,
                id: e.id,
                event_type: &e.event_type,
                data: &e.data,
                custom_metadata: &e.custom_metadata,
                created: e.created,
            },
        )
    }

    /// Appends one stream write; `Ok` carries its version and last position.
    async fn append_write(&self, write: &StreamWrite) -> Result<Appended, StoreError> {
        let server = self.inner.namespace.server_stream(&write.stream)?;
        if write.events.is_empty() {
            return Ok(Appended {
                version: self.version(&server).await?,
                last_position: 0,
            });
        }
        let events = write
            .events
            .iter()
            .map(event_data)
            .collect::<Result<Vec<_>, _>>()?;
        let options =
            AppendToStreamOptions::default().stream_state(mapping::stream_state(write.expected));
        let written = self
            .inner
            .client
            .append_to_stream(server.clone(), &options, events)
            .await
            .map_err(|e| mapping::store_error(e, &write.stream, write.expected))?;
        self.appended(&server, written.next_expected_version).await
    }

    /// Where a write that ended at `revision` of `server` landed.
    async fn appended(&self, server: &str, revision: u64) -> Result<Appended, StoreError> {
        let mut read = self
            .inner
            .client
            .read_stream(
                server,
                &ReadStreamOptions::default()
                    .position(StreamPosition::Position(revision))
                    .max_count(1),
            )
            .await
            .map_err(backend)?;
        let last = read.next().await.map_err(backend)?.ok_or_else(|| {
            StoreError::Backend(format!("revision {revision} of `{server}` vanished"))
        })?;
        Ok(Appended {
            version: revision + 1,
            last_position: self.wait_indexed(all_position(&last)).await?,
        })
    }

    /// The version of a server stream (0 when it does not exist).
    async fn version(&self, server: &str) -> Result<u64, StoreError> {
        let read = self
            .inner
            .client
            .read_stream(
                server,
                &ReadStreamOptions::default()
                    .backwards()
                    .position(StreamPosition::End)
                    .max_count(1),
            )
            .await;
        let mut read = match read {
            Ok(r) => r,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(0),
            Err(e) => return Err(backend(e)),
        };
        match read.next().await {
            Ok(Some(e)) => Ok(e.get_original_event().revision + 1),
            Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => Ok(0),
            Err(e) => Err(backend(e)),
        }
    }
}

/// An event as the server stores it: our id, type and JSON payload, and the
/// rest of our metadata as custom metadata.
fn event_data(e: &NewEvent) -> Result<EventData, StoreError> {
    let payload = serde_json::value::RawValue::from_string(e.payload.clone()).map_err(|err| {
        StoreError::Invalid(format!("payload of {} is not JSON: {err}", e.event_id))
    })?;
    EventData::json(&e.event_type, &payload)
        .and_then(|d| d.id(e.event_id).metadata_as_json(&StoredMetadata::of(e)))
        .map_err(|err| StoreError::Invalid(format!("event {}: {err}", e.event_id)))
}

/// The follower: a catch-up subscription to the namespace's view of `$all`
/// that numbers every event into the index. It resubscribes after the last
/// indexed event if the subscription fails.
async fn follow(
    client: Client,
    filter: SubscriptionFilter,
    mut start: StreamPosition<kurrentdb::Position>,
    index: Arc<RwLock<PositionIndex>>,
    head: watch::Sender<Position>,
    mut closed: watch::Receiver<bool>,
) {
    loop {
        let options = SubscribeToAllOptions::default()
            .position(start)
            .filter(filter.clone());
        let mut subscription = client.subscribe_to_all(&options).await;
        loop {
            let event = tokio::select! {
                e = subscription.next() => e,
                _ = closed.changed() => return,
            };
            match event {
                Ok(e) => {
                    let at = all_position(&e);
                    let position = {
                        let mut index = index.write().unwrap_or_else(|p| p.into_inner());
                        index.push(at);
                        index.head()
                    };
                    start = StreamPosition::Position(kurrentdb::Position {
                        commit: at.0,
                        prepare: at.1,
                    });
                    head.send_replace(position);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the $all subscription failed; resubscribing");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

#[async_trait]
impl EventStore for EsdbStore {
    async fn commit(&self, commit: Commit) -> Result<CommitOutcome, StoreError> {
        match commit.writes.len() {
            0 => return Err(StoreError::Invalid("a commit needs at least one write".into())),
            1 => {}
            n => {
                return Err(StoreError::Unsupported(format!(
                    "EventStoreDB appends atomically to one stream only; this commit writes {n} streams ({})",
                    commit
                        .writes
                        .iter()
                        .map(|w| w.stream.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        }
        let write = &commit.writes[0];
        // Refuse bad names before any claim is made.
        self.inner.namespace.server_stream(&write.stream)?;
        match &commit.idempotency {
            None => Ok(CommitOutcome::Committed(vec![
                self.append_write(write).await?,
            ])),
            Some(claim) => claims::commit(self, write, claim).await,
        }
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let server = self.inner.namespace.server_stream(stream)?;
        let options = ReadStreamOptions::default()
            .position(StreamPosition::Position(from_version.max(1) - 1));
        let mut read = match self.inner.client.read_stream(server, &options).await {
            Ok(r) => r,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(Vec::new()),
            Err(e) => return Err(backend(e)),
        };
        let mut out = Vec::new();
        loop {
            match read.next().await {
                Ok(Some(e)) => {
                    let position = self.wait_indexed(all_position(&e)).await?;
                    out.push(self.recorded(&e, position)?);
                }
                Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(out),
                Err(e) => return Err(backend(e)),
            }
        }
    }

    async fn read_all(
        &self,
        from: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let from = from.max(1);
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Read from the event before `from` (whether the server includes
        // the start position or not, it is skipped below).
        let (start, after) = if from == 1 {
            (StreamPosition::Start, None)
        } else {
            match self.index().all_position(from - 1) {
                Some(p) => (
                    StreamPosition::Position(kurrentdb::Position {
                        commit: p.0,
                        prepare: p.1,
                    }),
                    Some(p),
                ),
                None => return Ok(Vec::new()),
            }
        };
        let options = ReadAllOptions::default()
            .forwards()
            .position(start)
            .filter(self.filter())
            .max_count(limit + 1);
        let mut read = self
            .inner
            .client
            .read_all(&options)
            .await
            .map_err(backend)?;
        let mut out: Vec<RecordedEvent> = Vec::with_capacity(limit);
        while out.len() < limit {
            let Some(e) = read.next().await.map_err(backend)? else {
                break;
            };
            let at = all_position(&e);
            if after.is_some_and(|a| at <= a) {
                continue;
            }
            let position = from + out.len() as u64;
            if let Some(indexed) = self.index().position_of(at) {
                if indexed != position {
                    return Err(StoreError::Backend(format!(
                        "$all {at:?} is position {indexed} in the index but {position} in this read: was a stream deleted?"
                    )));
                }
            }
            out.push(self.recorded(&e, position)?);
        }
        Ok(out)
    }

    async fn head(&self) -> Result<Position, StoreError> {
        Ok(self.index().head())
    }

    async fn subscribe_all(&self, from: Position) -> Result<Box<dyn Subscription>, StoreError> {
        let from = from.max(1);
        let mut head = self.inner.head.clone();
        // The subscription starts after the event before `from`: wait until
        // that one is known.
        while self.index().head() < from - 1 {
            head.changed().await.map_err(|_| StoreError::Closed)?;
        }
        let after = self.index().all_position(from - 1);
        let start = match after {
            None => StreamPosition::Start,
            Some(p) => StreamPosition::Position(kurrentdb::Position {
                commit: p.0,
                prepare: p.1,
            }),
        };
        let subscription = self
            .inner
            .client
            .subscribe_to_all(
                &SubscribeToAllOptions::default()
                    .position(start)
                    .filter(self.filter())
                    // Ride out leader changes and restarts; an event seen
                    // again after a resubscription is skipped below.
                    .retry_options(
                        RetryOptions::default()
                            .retry_forever()
                            .retry_delay(Duration::from_secs(1)),
                    ),
            )
            .await;
        Ok(Box::new(EsdbSubscription {
            store: self.clone(),
            subscription,
            next: from,
            after,
            closed: self.inner.closed.subscribe(),
        }))
    }

    async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        claims::lookup(self, key).await
    }

    fn folds(&self) -> Option<&super::folds::Folds> {
        Some(&self.inner.folds)
    }
}

/// A catch-up subscription to the namespace's `$all`, numbered from `next`.
struct EsdbSubscription {
    store: EsdbStore,
    subscription: kurrentdb::Subscription,
    /// The position the next event gets.
    next: Position,
    /// The `$all` position of the last event handed out.
    after: Option<AllPosition>,
    /// Shutdown of the store.
    closed: watch::Receiver<bool>,
}

#[async_trait]
impl Subscription for EsdbSubscription {
    async fn next_batch(&mut self) -> Result<Vec<Arc<SubscribedEvent>>, StoreError> {
        loop {
            if *self.closed.borrow() {
                return Err(StoreError::Closed);
            }
            let event = tokio::select! {
                e = self.subscription.next() => e.map_err(backend)?,
                _ = self.closed.changed() => return Err(StoreError::Closed),
            };
            let at = all_position(&event);
            if self.after.is_some_and(|a| at <= a) {
                continue;
            }
            let recorded = self.store.recorded(&event, self.next)?;
            self.after = Some(at);
            self.next += 1;
            return Ok(vec![SubscribedEvent::new(recorded)]);
        }
    }
}
