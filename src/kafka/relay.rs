//! The relay: publishes the store's global log to Kafka.
//!
//! It reads the log from a checkpoint kept in `<data>/kafka/relay.checkpoint`
//! and produces each event to its aggregate's topic through an idempotent
//! producer (`enable.idempotence=true`, `acks=all`, no message timeout — a
//! broker outage delays delivery instead of failing it). Delivery reports
//! are awaited in log order and the checkpoint only ever moves to the end of
//! the delivered prefix, so a crash, a refused message or an outage leads to
//! re-sends from the checkpoint, never to a gap. Consumers drop the re-sends
//! by global position / stream version.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{topics, wire, KafkaConfig};
use crate::store::{EventStore, Position, StoreError};

/// How often the checkpoint file is rewritten while events flow.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// Deliveries awaited at once (beyond this the reader waits).
const IN_FLIGHT: usize = 100_000;
/// How long shutdown waits for outstanding deliveries before leaving them to
/// be re-sent by the next start.
const DRAIN_ON_SHUTDOWN: Duration = Duration::from_secs(10);
/// Pause before the relay starts over after a failure.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What the relay has done, shared with `/readyz` and `/metrics`.
#[derive(Debug, Default)]
pub struct RelayStatus {
    /// Last position whose delivery (and every earlier one's) is confirmed.
    checkpoint: AtomicU64,
    /// Events confirmed since start (re-sends included).
    published: AtomicU64,
    /// Failures since start (refused messages, producer errors).
    errors: AtomicU64,
    /// Whether the last attempt is running without error.
    healthy: AtomicBool,
}

impl RelayStatus {
    /// Last position confirmed on Kafka, with every earlier one.
    pub fn checkpoint(&self) -> Position {
        self.checkpoint.load(Ordering::Acquire)
    }
    /// Events confirmed since start.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
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
pub fn producer(config: &KafkaConfig) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    let mut client = config.client_config();
    if !config.client.contains_key("linger.ms") {
        client.set("linger.ms", "5");
    }
    client
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // Never give up on a message: an outage delays it, and the idempotent
        // producer keeps per-partition order across its retries.
        .set("message.timeout.ms", "0")
        .create()
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
        let status = Arc::new(RelayStatus::default());
        status
            .checkpoint
            .store(read_checkpoint(&path)?, Ordering::Release);
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
                status.healthy.store(false, Ordering::Relaxed);
                status.errors.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("o2ohub_kafka_relay_errors_total").increment(1);
                tracing::error!(error = %e, checkpoint = status.checkpoint(), "kafka relay failed; starting over from the checkpoint");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
    lag_gauge.abort();
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

/// One attempt: a fresh producer, reading from the checkpoint.
async fn attempt(
    store: &Arc<dyn EventStore>,
    config: &KafkaConfig,
    path: &Path,
    status: &Arc<RelayStatus>,
) -> Result<(), RelayError> {
    topics::ensure_topics(config).await?;
    let producer = producer(config).map_err(RelayError::Producer)?;
    let from = status.checkpoint() + 1;
    let mut subscription = store.subscribe_all(from).await?;
    status.healthy.store(true, Ordering::Relaxed);
    tracing::info!(from, brokers = %config.brokers, "kafka relay publishing");
    let (deliveries, confirmations) = mpsc::channel::<(Position, DeliveryFuture)>(IN_FLIGHT);
    let mut acker = tokio::spawn(confirm(
        confirmations,
        path.to_owned(),
        status.clone(),
        producer.clone(),
    ));
    let dead_letter = topics::dead_letter_topic(config);
    let reader = async {
        loop {
            let batch = match subscription.next_batch().await {
                Ok(b) => b,
                Err(StoreError::Closed) => return Ok(()),
                Err(e) => return Err(RelayError::Store(e)),
            };
            for recorded in &batch {
                let record = wire::encode(recorded);
                let topic = topics::topic_of_stream(config, &recorded.stream)
                    .unwrap_or_else(|| dead_letter.clone());
                let future = send(&producer, &topic, &record, recorded.position).await?;
                if deliveries.send((recorded.position, future)).await.is_err() {
                    // The confirming side stopped: its error is the one to report.
                    return Ok(());
                }
            }
        }
    };
    tokio::select! {
        read = reader => {
            read?;
            drop(deliveries);
            // The store is closed or the acker failed; either way wait (bounded)
            // for what is in flight so the checkpoint is as far as it can be.
            match tokio::time::timeout(DRAIN_ON_SHUTDOWN, &mut acker).await {
                Ok(Ok(result)) => result,
                Ok(Err(join)) => Err(RelayError::Checkpoint { path: path.to_owned(), source: std::io::Error::other(join.to_string()) }),
                Err(_) => {
                    acker.abort();
                    tracing::warn!(checkpoint = status.checkpoint(), "kafka relay stopped with deliveries outstanding; they are re-sent at the next start");
                    write_checkpoint(path, status.checkpoint())
                }
            }
        }
        confirmed = &mut acker => match confirmed {
            Ok(result) => result,
            Err(join) => Err(RelayError::Checkpoint { path: path.to_owned(), source: std::io::Error::other(join.to_string()) }),
        },
    }
}

/// Enqueues one record, waiting while librdkafka's queue is full.
async fn send(
    producer: &FutureProducer,
    topic: &str,
    record: &wire::WireRecord,
    position: Position,
) -> Result<DeliveryFuture, RelayError> {
    loop {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (name, value) in &record.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let message = FutureRecord::to(topic)
            .key(record.key.as_bytes())
            .payload(&record.value)
            .headers(headers);
        match producer.send_result(message) {
            Ok(future) => return Ok(future),
            Err((
                rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                _,
            )) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((error, _)) => return Err(RelayError::Delivery { position, error }),
        }
    }
}

/// Awaits delivery reports in log order and advances the checkpoint over the
/// confirmed prefix.
async fn confirm(
    mut confirmations: mpsc::Receiver<(Position, DeliveryFuture)>,
    path: PathBuf,
    status: Arc<RelayStatus>,
    producer: FutureProducer,
) -> Result<(), RelayError> {
    let mut written = status.checkpoint();
    let mut last_write = Instant::now();
    // Confirmations not yet added to the counter, and the rate window.
    let mut uncounted = 0u64;
    let (mut window_start, mut window_count) = (Instant::now(), 0u64);
    loop {
        // Wait for the next delivery, but wake up to write the checkpoint
        // when the stream pauses.
        let next = match tokio::time::timeout(CHECKPOINT_EVERY, confirmations.recv()).await {
            Ok(Some(next)) => Some(next),
            Ok(None) => break,
            Err(_) => None,
        };
        if let Some((position, delivery)) = next {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => {
                    write_checkpoint(&path, status.checkpoint())?;
                    return Err(RelayError::Delivery { position, error });
                }
                Err(_canceled) => {
                    write_checkpoint(&path, status.checkpoint())?;
                    return Err(RelayError::Delivery {
                        position,
                        error: rdkafka::error::KafkaError::Canceled,
                    });
                }
            }
            status.checkpoint.store(position, Ordering::Release);
            status.published.fetch_add(1, Ordering::Relaxed);
            uncounted += 1;
            window_count += 1;
        }
        if last_write.elapsed() >= CHECKPOINT_EVERY {
            let position = status.checkpoint();
            if position != written {
                write_checkpoint(&path, position)?;
                written = position;
            }
            last_write = Instant::now();
            metrics::counter!("o2ohub_kafka_relay_published_total").increment(uncounted);
            uncounted = 0;
            let secs = window_start.elapsed().as_secs_f64();
            if secs >= 1.0 {
                metrics::gauge!("o2ohub_kafka_relay_publish_rate").set(window_count as f64 / secs);
                (window_start, window_count) = (Instant::now(), 0);
            }
        }
    }
    metrics::counter!("o2ohub_kafka_relay_published_total").increment(uncounted);
    let _ = producer.flush(Duration::from_secs(1));
    write_checkpoint(&path, status.checkpoint())
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
