//! The relay: publishes the store's global log to Kafka.
//!
//! It reads the log from a checkpoint kept in `<data>/kafka/relay.checkpoint`
//! and produces each event to its aggregate's topic through an idempotent
//! producer (`enable.idempotence=true`, `acks=all`, no message timeout — a
//! broker outage delays delivery instead of failing it). Each message carries
//! its position; librdkafka's delivery reports land in a
//! [`DeliveredPrefix`] on the producer's polling thread, and the checkpoint
//! only ever moves to the end of the delivered prefix, so a crash, a refused
//! message or an outage leads to re-sends from the checkpoint, never to a
//! gap. Consumers drop the re-sends
//! by global position / stream version.

use rdkafka::producer::{BaseRecord, FutureProducer, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::delivered::{DeliveredPrefix, ReportsTo};
use super::topics::TopicNames;
use super::{topics, wire, KafkaConfig};
use crate::store::{EventStore, Position, StoreError, Subscription};

/// How often the checkpoint file is rewritten while events flow.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// Deliveries awaited at once (beyond this the reader waits).
const IN_FLIGHT: u64 = 100_000;
/// Encoded slices waiting for the producing loop.
const PREFETCH: usize = 8;
/// Events encoded between yields (and per slice handed on).
const ENCODE_SLICE: usize = 512;
/// How long shutdown waits for outstanding deliveries before leaving them to
/// be re-sent by the next start.
const DRAIN_ON_SHUTDOWN: Duration = Duration::from_secs(10);
/// Pause before the relay starts over after a failure.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long a new producer's id is hastened at most (librdkafka's own retry
/// comes after 500 ms).
const HASTEN_PRODUCER_ID_FOR: Duration = Duration::from_secs(1);
/// Pause between the metadata requests that hasten it.
const HASTEN_EVERY: Duration = Duration::from_millis(5);

/// What the relay has done, shared with `/readyz` and `/metrics`.
#[derive(Debug)]
pub struct RelayStatus {
    /// Positions confirmed on Kafka, as the producer reports them; its
    /// prefix is the checkpoint.
    delivered: Arc<DeliveredPrefix>,
    /// Failures since start (refused messages, producer errors).
    errors: AtomicU64,
    /// Whether the last attempt is running without error.
    healthy: AtomicBool,
}

impl RelayStatus {
    fn new(checkpoint: Position) -> Self {
        RelayStatus {
            delivered: Arc::new(DeliveredPrefix::new(checkpoint)),
            errors: AtomicU64::new(0),
            healthy: AtomicBool::new(false),
        }
    }
    /// Last position confirmed on Kafka, with every earlier one.
    pub fn checkpoint(&self) -> Position {
        self.delivered.prefix()
    }
    /// Events confirmed since start.
    pub fn published(&self) -> u64 {
        self.delivered.confirmed()
    }
    /// Failures since start.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
    /// Whether the relay is running without a pending failure.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

/// A running relay.
pub struct Relay {
    /// Progress, for readiness and metrics.
    pub status: Arc<RelayStatus>,
    /// The relay task; ends after the store is shut down and deliveries drained.
    task: JoinHandle<()>,
}

/// Why one attempt of the relay stopped.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Topics(#[from] topics::TopicsError),
    #[error("cannot create the Kafka producer: {0}")]
    Producer(rdkafka::error::KafkaError),
    #[error("Kafka refused the event at position {position}: {error}")]
    Delivery {
        position: Position,
        error: rdkafka::error::KafkaError,
    },
    #[error("cannot write the relay checkpoint {}: {source}", path.display())]
    Checkpoint {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The checkpoint file of a data directory.
pub fn checkpoint_path(data_dir: &Path) -> PathBuf {
    data_dir.join("kafka").join("relay.checkpoint")
}

/// Reads the stored checkpoint (0 when there is none yet).
pub fn read_checkpoint(path: &Path) -> Result<Position, std::io::Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} does not hold a position; delete it to re-publish the log from the start",
                    path.display()
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Writes the checkpoint atomically (temporary file, sync, rename).
fn write_checkpoint(path: &Path, position: Position) -> Result<(), RelayError> {
    let io = |source| RelayError::Checkpoint {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    writeln!(f, "{position}").map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The producer settings the relay's guarantees rest on, on top of the
/// configured ones.
pub fn producer_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = config.client_config();
    if !config.client.contains_key("linger.ms") {
        client.set("linger.ms", "5");
    }
    // Connect to every broker at once: the idempotent producer needs a
    // connected broker for its producer id, and with sparse connections a
    // producer that has not queued a message yet waits for its state
    // machine's 500 ms retry — measured as most of a fresh relay's start.
    if !config.client.contains_key("enable.sparse.connections") {
        client.set("enable.sparse.connections", "false");
    }
    client
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // Never give up on a message: an outage delays it, and the idempotent
        // producer keeps per-partition order across its retries.
        .set("message.timeout.ms", "0");
    client
}

/// Hastens a new idempotent producer's producer id, on a blocking thread.
///
/// librdkafka asks a broker for the id when the producer is created. When no
/// broker connection is up yet at that moment (the bootstrap connection has
/// just been replaced by the broker's own), it asks again only after 500 ms,
/// or when a metadata response arrives. With `debug=eos` that wait showed in
/// 11 of 28 producer starts of `bench kafka --events 3000` (relay and raw
/// producer alike): half a second in which queued events wait. So metadata
/// is requested every few milliseconds until `answered` says a delivery
/// report came back (the id is there, or the producer failed), the producer
/// is gone, or [`HASTEN_PRODUCER_ID_FOR`] has passed; each response re-runs
/// librdkafka's id request, and the first after a broker is up succeeds. The
/// thread holds the producer only during a request: await the handle after
/// dropping the producer to know it is gone.
pub(crate) fn hasten_producer_id<C>(
    producer: Weak<ThreadedProducer<C>>,
    topic: String,
    answered: impl Fn() -> bool + Send + 'static,
) -> JoinHandle<()>
where
    C: rdkafka::producer::ProducerContext + 'static,
{
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        while !answered() && started.elapsed() < HASTEN_PRODUCER_ID_FOR {
            let Some(producer) = producer.upgrade() else {
                return;
            };
            // Its answer does not matter: its arrival re-runs the id request.
            let _ = producer
                .client()
                .fetch_metadata(Some(&topic), HASTEN_EVERY * 20);
            drop(producer);
            std::thread::sleep(HASTEN_EVERY);
        }
    })
}

/// A producer with the relay's guarantees whose deliveries are awaited one
/// by one (the dead-letter writes of the workers).
pub fn producer(config: &KafkaConfig) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    producer_config(config).create()
}

impl Relay {
    /// Starts relaying `store` to Kafka from the checkpoint under `data_dir`.
    /// Fails only if the checkpoint file is unreadable; Kafka being down is
    /// retried in the background.
    pub fn start(
        store: Arc<dyn EventStore>,
        config: KafkaConfig,
        data_dir: &Path,
    ) -> Result<Relay, std::io::Error> {
        let path = checkpoint_path(data_dir);
        let status = Arc::new(RelayStatus::new(read_checkpoint(&path)?));
        let task = tokio::spawn(run(store, config, path, status.clone()));
        Ok(Relay { status, task })
    }

    /// Waits for the relay to finish (after the store was shut down).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// Runs attempts until the store closes, starting over from the checkpoint
/// after every failure.
async fn run(
    store: Arc<dyn EventStore>,
    config: KafkaConfig,
    path: PathBuf,
    status: Arc<RelayStatus>,
) {
    let lag_gauge = tokio::spawn(report_lag(store.clone(), status.clone()));
    loop {
        match attempt(&store, &config, &path, &status).await {
            Ok(()) => break,
            Err(RelayError::Store(StoreError::Closed)) => break,
            Err(e) => {
                // The topics may be what failed: the next attempt checks them.
                topics::forget_topics(&config);
                status.healthy.store(false, Ordering::Relaxed);
                status.errors.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("o2ohub_kafka_relay_errors_total").increment(1);
                tracing::error!(error = %e, checkpoint = status.checkpoint(), "kafka relay failed; starting over from the checkpoint");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
    lag_gauge.abort();
    // Its store handle is gone once the relay has stopped.
    let _ = lag_gauge.await;
}

/// Publishes `o2ohub_kafka_relay_lag` (events committed but not yet
/// confirmed on Kafka) every second.
async fn report_lag(store: Arc<dyn EventStore>, status: Arc<RelayStatus>) {
    loop {
        match store.head().await {
            Ok(head) => {
                let checkpoint = status.checkpoint();
                metrics::gauge!("o2ohub_kafka_relay_lag")
                    .set(head.saturating_sub(checkpoint) as f64);
                metrics::gauge!("o2ohub_kafka_relay_checkpoint").set(checkpoint as f64);
            }
            Err(_) => return,
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The relay's producer: deliveries reported into the status.
type RelayProducer = ThreadedProducer<ReportsTo>;

/// One attempt: a fresh producer, reading from the checkpoint.
async fn attempt(
    store: &Arc<dyn EventStore>,
    config: &KafkaConfig,
    path: &Path,
    status: &Arc<RelayStatus>,
) -> Result<(), RelayError> {
    topics::ensure_topics(config).await?;
    // Reports of an earlier attempt's producer are over: it was dropped.
    let delivered = status.delivered.clone();
    delivered.restart();
    let producer: Arc<RelayProducer> = Arc::new(
        producer_config(config)
            .create_with_context(ReportsTo(delivered.clone()))
            .map_err(RelayError::Producer)?,
    );
    let names = Arc::new(TopicNames::new(config));
    // The producer id is hastened once there is something to send, so an
    // idle relay does not ask for metadata meanwhile.
    let mut hastening = None;
    let confirmed_before = delivered.confirmed();
    let from = status.checkpoint() + 1;
    let subscription = store.subscribe_all(from).await?;
    status.healthy.store(true, Ordering::Relaxed);
    tracing::info!(from, brokers = %config.brokers, "kafka relay publishing");
    let mut checkpointer = tokio::spawn(keep_checkpoint(delivered.clone(), path.to_owned()));
    // Reading and encoding run one stage ahead of producing, on another
    // task (so on the other core when there is one): the producer is never
    // idle while the next batch is read from disk and encoded.
    let (encoded, mut batches) = mpsc::channel(PREFETCH);
    let mut encoder = tokio::spawn(encode_ahead(subscription, names.clone(), encoded));
    let mut sent = from - 1;
    let reader = async {
        while let Some(batch) = batches.recv().await {
            let batch = match batch {
                Ok(b) => b,
                Err(StoreError::Closed) => return Ok(()),
                Err(e) => return Err(RelayError::Store(e)),
            };
            if hastening.is_none() {
                let delivered = delivered.clone();
                hastening = Some(hasten_producer_id(
                    Arc::downgrade(&producer),
                    names.name(0).to_owned(),
                    move || {
                        delivered.confirmed() > confirmed_before || delivered.failure().is_some()
                    },
                ));
            }
            for out in &batch {
                // Bound what librdkafka holds; a refusal ends the attempt.
                while out.position.saturating_sub(delivered.prefix()) > IN_FLIGHT {
                    refused(&delivered)?;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                send(&producer, names.name(out.topic), &out.record, out.position).await?;
                sent = out.position;
            }
            refused(&delivered)?;
        }
        Ok(())
    };
    let outcome = tokio::select! {
        read = reader => read,
        kept = &mut checkpointer => match kept {
            Ok(result) => result,
            Err(join) => Err(RelayError::Checkpoint { path: path.to_owned(), source: std::io::Error::other(join.to_string()) }),
        },
    };
    checkpointer.abort();
    encoder.abort();
    // Its subscription (a store handle) is gone with it.
    let _ = (&mut encoder).await;
    if outcome.is_ok() {
        // The store is closed: wait (bounded) for what is in flight so the
        // checkpoint is as far as it can be.
        let started = Instant::now();
        while delivered.prefix() < sent && delivered.failure().is_none() {
            if started.elapsed() > DRAIN_ON_SHUTDOWN {
                tracing::warn!(checkpoint = delivered.prefix(), sent, "kafka relay stopped with deliveries outstanding; they are re-sent at the next start");
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let _ = producer.flush(Duration::from_secs(1));
    }
    count_published(&delivered, &mut 0);
    let written = write_checkpoint(path, delivered.prefix());
    // The next attempt takes this producer's reports as over: it must be
    // gone, and the hastening thread may be holding it for one request.
    drop(producer);
    if let Some(hastening) = hastening {
        let _ = hastening.await;
    }
    written?;
    outcome
}

/// An event encoded for Kafka, ready to send.
struct Outgoing {
    /// Its log position (the delivery opaque).
    position: Position,
    /// Its topic, an index into the [`TopicNames`].
    topic: usize,
    /// Key, headers and value.
    record: wire::WireRecord,
}

/// Reads the log from the subscription and encodes it, a batch ahead of the
/// producing loop; ends after passing on the subscription's end or error.
async fn encode_ahead(
    mut subscription: Box<dyn Subscription>,
    names: Arc<TopicNames>,
    encoded: mpsc::Sender<Result<Vec<Outgoing>, StoreError>>,
) {
    loop {
        let batch = match subscription.next_batch().await {
            Ok(batch) => batch,
            Err(e) => {
                let _ = encoded.send(Err(e)).await;
                return;
            }
        };
        // In slices, yielding between them: a catch-up batch is thousands
        // of events and this task shares its worker with others.
        let mut events = batch.into_iter();
        loop {
            let out: Vec<Outgoing> = events
                .by_ref()
                .take(ENCODE_SLICE)
                .map(|recorded| Outgoing {
                    position: recorded.position,
                    topic: names.index_of_stream(&recorded.stream),
                    record: wire::encode(&recorded),
                })
                .collect();
            if out.is_empty() {
                break;
            }
            if encoded.send(Ok(out)).await.is_err() {
                return; // the producing side stopped
            }
            tokio::task::yield_now().await;
        }
    }
}

/// The first refused delivery of this attempt, as its error.
fn refused(delivered: &DeliveredPrefix) -> Result<(), RelayError> {
    match delivered.failure() {
        Some((position, error)) => Err(RelayError::Delivery { position, error }),
        None => Ok(()),
    }
}

/// Enqueues one record (its delivery opaque is its position), waiting while
/// librdkafka's queue is full.
async fn send(
    producer: &RelayProducer,
    topic: &str,
    record: &wire::WireRecord,
    position: Position,
) -> Result<(), RelayError> {
    let mut message = BaseRecord::with_opaque_to(topic, position as usize)
        .key(record.key.as_bytes())
        .payload(&record.value)
        .headers(record.kafka_headers());
    loop {
        match producer.send(message) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                back,
            )) => {
                message = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((error, _)) => return Err(RelayError::Delivery { position, error }),
        }
    }
}

/// Adds the confirmations since the last call to the published counter.
fn count_published(delivered: &DeliveredPrefix, counted: &mut u64) {
    let confirmed = delivered.confirmed();
    metrics::counter!("o2ohub_kafka_relay_published_total")
        .increment(confirmed.saturating_sub(*counted));
    *counted = confirmed;
}

/// Rewrites the checkpoint file when the delivered prefix moved, and the
/// publish metrics, every [`CHECKPOINT_EVERY`]; ends with the error of the
/// first refused delivery (when the reader is idle it would not notice).
async fn keep_checkpoint(delivered: Arc<DeliveredPrefix>, path: PathBuf) -> Result<(), RelayError> {
    let mut written = delivered.prefix();
    let mut counted = delivered.confirmed();
    let (mut window_start, mut window_base) = (Instant::now(), counted);
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        let position = delivered.prefix();
        if position != written {
            write_checkpoint(&path, position)?;
            written = position;
        }
        count_published(&delivered, &mut counted);
        let secs = window_start.elapsed().as_secs_f64();
        if secs >= 1.0 {
            metrics::gauge!("o2ohub_kafka_relay_publish_rate")
                .set(counted.saturating_sub(window_base) as f64 / secs);
            (window_start, window_base) = (Instant::now(), counted);
        }
        refused(&delivered)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpoint_file_round_trips_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = checkpoint_path(dir.path());
        assert_eq!(
            read_checkpoint(&path).unwrap(),
            0,
            "no file: from the start"
        );
        write_checkpoint(&path, 42).unwrap();
        assert_eq!(read_checkpoint(&path).unwrap(), 42);
        std::fs::write(&path, "forty-two").unwrap();
        let e = read_checkpoint(&path).unwrap_err();
        assert!(e.to_string().contains("delete it"), "{e}");
    }
}
