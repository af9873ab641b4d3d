//! `o2ohub project --source kafka --group NAME`: the hub's read models fed
//! from Kafka as a member of a consumer group.
//!
//! The loop: receive a message → decode it (poison is counted, logged with
//! topic/partition/offset, copied to the dead-letter topic and passed over)
//! → the [`Sequencer`] says what to apply → fold into the [`ModelSet`].
//! Every `commit_every`, a copy of the snapshot (models + what they hold) is
//! saved in the background and only then are the offsets it covers
//! committed, so a worker killed at any moment restarts from a committed
//! offset at or before its snapshot and drops the re-read events it already
//! holds: nothing lost, nothing applied twice. A commit that fails (the
//! broker away, the group rebalancing after an outage) is logged, counted
//! and made again at the next save; it never stops the worker.

use rdkafka::client::ClientContext;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::models::{self, ModelSet, WorkerSnapshot};
use super::sequencer::{Arrival, Ordering, Sequencer, Source, TopicPartition};
use super::{relay, topics, wire, KafkaConfig};
use crate::runner::{finish_save, joined};

/// How long a worker waits on Kafka for metadata and commits.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
/// A worker reporting no progress for this long while events wait says why.
const STALL_WARNING: Duration = Duration::from_secs(30);

/// What a worker is told.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The cluster and topics.
    pub kafka: KafkaConfig,
    /// The consumer group.
    pub group: String,
    /// Where the snapshot lives (`<data>/kafka/worker-<group>.json`).
    pub data_dir: PathBuf,
    /// Log order (a full copy) or per-aggregate order (a split group).
    pub ordering: Ordering,
    /// How often the snapshot is saved and offsets committed.
    pub commit_every: Duration,
    /// Receives the next position to apply after every applied event, for
    /// in-process observers (the latency benchmark); `None` in a worker process.
    pub progress: Option<tokio::sync::watch::Sender<u64>>,
}

/// What a worker did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Events applied (in total, snapshot included).
    pub applied: u64,
    /// Re-sends dropped.
    pub duplicates: u64,
    /// Poison messages set aside.
    pub poison: u64,
}

/// Why a worker cannot run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Topics could not be created.
    #[error(transparent)]
    Topics(#[from] topics::TopicsError),
    /// librdkafka failed.
    #[error("kafka: {0}. Check O2OHUB_KAFKA_BROKERS and that the brokers are reachable")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The snapshot could not be written.
    #[error(transparent)]
    Snapshot(#[from] models::SnapshotError),
    /// The group has progress that this data directory does not hold.
    #[error("consumer group `{group}` has committed offsets, but {} holds no snapshot of its read models, so resuming would miss events. Use a new --group name (a new group replays every topic from the start), or the --data-dir this group ran with", path.display())]
    OrphanGroup {
        /// The group.
        group: String,
        /// The snapshot file that is missing.
        path: PathBuf,
    },
}

/// The client context: turns librdkafka's statistics into consumer-lag gauges.
struct WorkerContext {
    /// Label of every gauge.
    group: String,
}

impl ClientContext for WorkerContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                if partition < 0 || p.consumer_lag < 0 {
                    continue;
                }
                metrics::gauge!("o2ohub_kafka_consumer_lag",
                    "group" => self.group.clone(), "topic" => topic.clone(), "partition" => partition.to_string())
                .set(p.consumer_lag as f64);
            }
        }
    }
}

impl ConsumerContext for WorkerContext {}

type WorkerConsumer = StreamConsumer<WorkerContext>;

/// A poison message's copy on its way to the dead-letter topic.
type SetAside = Result<DeliveryFuture, rdkafka::error::KafkaError>;

/// Runs a worker until `shutdown` resolves; saves and commits before returning.
pub async fn run(
    options: WorkerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<WorkerReport, WorkerError> {
    let WorkerOptions {
        kafka,
        group,
        data_dir,
        ordering,
        commit_every,
        progress,
    } = options;
    topics::ensure_topics(&kafka).await?;
    let path = models::snapshot_path(&data_dir, &group);
    let consumer: Arc<WorkerConsumer> = Arc::new(
        kafka
            .client_config()
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("statistics.interval.ms", "5000")
            .set_if_absent(&kafka, "session.timeout.ms", "10000")
            .set_if_absent(&kafka, "heartbeat.interval.ms", "1000")
            // A fetch with nothing new waits at most this long; some brokers
            // (tansu) wait the whole time even when data arrives meanwhile.
            .set_if_absent(&kafka, "fetch.wait.max.ms", "5")
            .create_with_context(WorkerContext {
                group: group.clone(),
            })?,
    );
    let mut snapshot = match models::load(&path, &group, ordering) {
        Some(s) => {
            tracing::info!(
                group,
                events = s.applied.events,
                next_position = s.applied.next_position,
                "resuming from the worker snapshot"
            );
            s
        }
        None => {
            refuse_orphan_group(&consumer, &kafka, &group, &path)?;
            WorkerSnapshot {
                group: group.clone(),
                ordering,
                versions: ModelSet::default().versions(),
                applied: Default::default(),
                poison: 0,
                models: ModelSet::default(),
            }
        }
    };
    let event_topics = topics::event_topics(&kafka);
    consumer.subscribe(&event_topics.iter().map(String::as_str).collect::<Vec<_>>())?;
    let dead_letter = relay::producer(&kafka)?;
    let dead_letter_topic = topics::dead_letter_topic(&kafka);
    let mut sequencer = Sequencer::new(ordering, snapshot.applied.clone());
    let mut set_aside: Vec<SetAside> = Vec::new();
    let mut tick = tokio::time::interval(commit_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty = false;
    let mut saving: Option<Saving> = None;
    let mut owned = BTreeSet::new();
    let mut last_progress = (sequencer.next_position(), Instant::now());
    tracing::info!(group, ?ordering, topics = ?event_topics, "kafka worker consuming");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            received = consumer.recv() => {
                let message = match received {
                    Ok(m) => m,
                    Err(e) => {
                        metrics::counter!("o2ohub_kafka_consumer_errors_total", "group" => group.clone()).increment(1);
                        tracing::warn!(group, error = %e, "kafka consumer error; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let source = Source {
                    partition: (message.topic().to_owned(), message.partition()),
                    offset: message.offset(),
                };
                if sequencer.is_repeat(&source) {
                    continue;
                }
                let arrival = match wire::decode(message.payload()) {
                    Ok((_, envelope)) => Arrival::Event(Box::new(envelope)),
                    Err(poison) => {
                        snapshot.poison += 1;
                        metrics::counter!("o2ohub_kafka_poison_messages_total", "group" => group.clone()).increment(1);
                        tracing::warn!(group, topic = message.topic(), partition = message.partition(), offset = message.offset(), reason = %poison, "poison message: copied to {dead_letter_topic} and skipped");
                        let origin = format!("{}/{}/{}", message.topic(), message.partition(), message.offset());
                        set_aside.push(copy_to_dead_letter(&dead_letter, &dead_letter_topic, &message, &poison.to_string(), &origin));
                        match poison {
                            wire::Poison::Undecodable { position, stream, version, .. } => Arrival::Unreadable { position, stream, version },
                            wire::Poison::NotAnEnvelope(_) => Arrival::Foreign,
                        }
                    }
                };
                let ready = sequencer.offer(source, arrival);
                for envelope in &ready {
                    snapshot.models.apply(envelope);
                }
                if let (Some(p), false) = (&progress, ready.is_empty()) {
                    p.send_replace(sequencer.next_position());
                }
                dirty = true;
            }
            _ = tick.tick() => {
                if saving.as_ref().is_some_and(|s| s.is_finished())
                    && finish_save(&mut saving).await? == Some(Commit::Failed)
                {
                    // The snapshot is saved; its offsets go with the next one.
                    dirty = true;
                }
                if dirty && saving.is_none() {
                    saving = Some(start_save(&consumer, snapshot.clone(), &sequencer, &mut set_aside, &path));
                    dirty = false;
                }
                forget_revoked(&consumer, &mut sequencer, &mut owned);
                let next = sequencer.next_position();
                if next != last_progress.0 {
                    last_progress = (next, Instant::now());
                } else if sequencer.waiting() > 0 && last_progress.1.elapsed() >= STALL_WARNING {
                    tracing::warn!(group, next_position = next, waiting = sequencer.waiting(), "waiting for an earlier event; with --ordering global this worker must own every partition (one member per group), and the relay must be running");
                    last_progress.1 = Instant::now();
                }
            }
            _ = &mut shutdown => break,
        }
    }
    finish_save(&mut saving).await?;
    let poison = snapshot.poison;
    // Consuming is over: the last save needs no copy.
    joined(start_save(
        &consumer,
        snapshot,
        &sequencer,
        &mut set_aside,
        &path,
    ))
    .await?;
    let applied = sequencer.applied();
    Ok(WorkerReport {
        applied: applied.events,
        duplicates: applied.duplicates,
        poison,
    })
}

/// Extra settings applied only when the operator did not set them.
trait SetIfAbsent {
    fn set_if_absent(&mut self, kafka: &KafkaConfig, key: &str, value: &str) -> &mut Self;
}

impl SetIfAbsent for rdkafka::ClientConfig {
    fn set_if_absent(&mut self, kafka: &KafkaConfig, key: &str, value: &str) -> &mut Self {
        if !kafka.client.contains_key(key) {
            self.set(key, value);
        }
        self
    }
}

/// A copy of the snapshot being saved in the background, then committed.
type Saving = tokio::task::JoinHandle<Result<Commit, WorkerError>>;

/// Whether the offsets a saved snapshot covers were committed.
///
/// A failed commit is not an error of the worker: the snapshot is on disk
/// first, so offsets that lag behind it only mean a restart reads again
/// what the sequencer then skips. Commits fail while the broker is away or
/// while the group rebalances (the member's session ran out during an
/// outage); the worker commits again at its next save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    Done,
    Failed,
}

/// Starts saving `snapshot` (a copy, while the loop runs) and then
/// committing the offsets it covers, off the loop: serialising and syncing
/// the models takes tens of milliseconds once they hold a city (measured as
/// the p99 of command → read model), and copying them takes a fraction of
/// that. The loop goes on applying meanwhile; only one save runs at a time.
fn start_save(
    consumer: &Arc<WorkerConsumer>,
    mut copy: WorkerSnapshot,
    sequencer: &Sequencer,
    set_aside: &mut Vec<SetAside>,
    path: &std::path::Path,
) -> Saving {
    copy.applied = sequencer.applied().clone();
    let commit_points = sequencer.commit_points();
    let set_aside = std::mem::take(set_aside);
    let (consumer, path) = (consumer.clone(), path.to_owned());
    tokio::spawn(async move {
        // Poison is committed past only once its copy is on the dead-letter topic.
        for delivery in set_aside {
            match delivery?.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(WorkerError::Kafka(e)),
                Err(_) => return Err(WorkerError::Kafka(rdkafka::error::KafkaError::Canceled)),
            }
        }
        joined(tokio::task::spawn_blocking(move || {
            persist(&consumer, copy, commit_points, &path)
        }))
        .await
    })
}

/// Saves the snapshot, then commits the offsets it covers.
fn persist(
    consumer: &WorkerConsumer,
    snapshot: WorkerSnapshot,
    commit_points: Vec<(TopicPartition, i64)>,
    path: &std::path::Path,
) -> Result<Commit, WorkerError> {
    models::save(path, &snapshot)?;
    metrics::gauge!("o2ohub_kafka_worker_next_position", "group" => snapshot.group.clone())
        .set(snapshot.applied.next_position as f64);
    metrics::gauge!("o2ohub_kafka_worker_applied", "group" => snapshot.group.clone())
        .set(snapshot.applied.events as f64);
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), offset) in commit_points {
        offsets.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
    }
    if offsets.count() > 0 {
        if let Err(error) = consumer.commit(&offsets, CommitMode::Sync) {
            metrics::counter!("o2ohub_kafka_commit_errors_total", "group" => snapshot.group.clone())
                .increment(1);
            tracing::warn!(group = snapshot.group, %error, "committing offsets failed; the snapshot is saved, and the next save commits again");
            return Ok(Commit::Failed);
        }
    }
    tracing::debug!(
        applied = snapshot.applied.events,
        next_position = snapshot.applied.next_position,
        "worker snapshot saved and offsets committed"
    );
    Ok(Commit::Done)
}

/// Drops the bookkeeping of partitions this member no longer owns; logs
/// the assignment when it changes.
fn forget_revoked(
    consumer: &WorkerConsumer,
    sequencer: &mut Sequencer,
    owned_before: &mut BTreeSet<(String, i32)>,
) {
    if let Ok(assignment) = consumer.assignment() {
        let owned: BTreeSet<(String, i32)> = assignment
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        if owned != *owned_before {
            tracing::info!(partitions = owned.len(), assignment = ?owned, "partitions assigned to this worker");
            *owned_before = owned.clone();
        }
        sequencer.retain_partitions(&owned);
    }
}

/// Refuses to start a fresh snapshot in a group that already committed
/// progress (those events would never be read again).
fn refuse_orphan_group(
    consumer: &WorkerConsumer,
    kafka: &KafkaConfig,
    group: &str,
    path: &std::path::Path,
) -> Result<(), WorkerError> {
    let mut all = TopicPartitionList::new();
    for topic in topics::event_topics(kafka) {
        let metadata =
            tokio::task::block_in_place(|| consumer.fetch_metadata(Some(&topic), KAFKA_TIMEOUT))?;
        for t in metadata.topics() {
            for p in t.partitions() {
                all.add_partition(t.name(), p.id());
            }
        }
    }
    let committed = tokio::task::block_in_place(|| consumer.committed_offsets(all, KAFKA_TIMEOUT))?;
    if committed
        .elements()
        .iter()
        .any(|e| matches!(e.offset(), Offset::Offset(o) if o > 0))
    {
        return Err(WorkerError::OrphanGroup {
            group: group.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Produces a copy of a poison message to the dead-letter topic, with why
/// and where it came from.
fn copy_to_dead_letter(
    producer: &FutureProducer,
    topic: &str,
    message: &impl Message,
    reason: &str,
    origin: &str,
) -> Result<DeliveryFuture, rdkafka::error::KafkaError> {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = message.headers() {
        for h in original.iter() {
            headers = headers.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    headers = headers
        .insert(Header {
            key: wire::header::DEAD_LETTER_REASON,
            value: Some(reason),
        })
        .insert(Header {
            key: wire::header::DEAD_LETTER_SOURCE,
            value: Some(origin),
        });
    let mut record = FutureRecord::<[u8], [u8]>::to(topic).headers(headers);
    if let Some(k) = message.key() {
        record = record.key(k);
    }
    if let Some(p) = message.payload() {
        record = record.payload(p);
    }
    producer.send_result(record).map_err(|(e, _)| e)
}
