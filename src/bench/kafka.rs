//! `o2ohub bench kafka`: the relay against a raw rdkafka producer, and the
//! latency from a committed command to a Kafka-fed read model.
//!
//! - Throughput: a synthetic day is written to a fresh store; a raw
//!   producer (the relay's own settings: idempotent, `acks=all`) sends the
//!   very records the relay would send, to the same broker, and then the
//!   relay publishes the store from position 1. `ratio_vs_raw` is relay
//!   events/s over raw events/s (target ≥ 0.8).
//! - Latency: commands are committed to a store at a fixed rate (one
//!   merchant registration each, durable), the relay publishes them and a
//!   worker (global ordering) applies them; the time from the start of the
//!   commit to the moment the worker has applied it, p50/p99 (target p99 ≤
//!   50 ms at 1k commands/s).
//!
//! Every run uses fresh topic prefixes, so runs never read each other's data.

use anyhow::{bail, Context, Result};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::latency::Latencies;
use crate::kafka::relay::{self, Relay};
use crate::kafka::sequencer::Ordering;
use crate::kafka::worker::{self, WorkerOptions};
use crate::kafka::{topics, wire, KafkaConfig};
use crate::store::embedded::EmbeddedStore;
use crate::store::{EventMetadata, EventStore, ExpectedVersion, NewEvent};
use o2ohub_events::{Actor, Event, MerchantEvent};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureRecord};

/// Options of the Kafka bench.
#[derive(Debug, Clone)]
pub struct KafkaBench {
    /// The cluster (O2OHUB_KAFKA_* settings).
    pub kafka: KafkaConfig,
    /// Approximate events of the throughput run.
    pub events: u64,
    /// Commands per second of the latency run.
    pub rate: u64,
    /// Seconds of the latency run.
    pub seconds: f64,
    /// One JSON object per measurement.
    pub json: bool,
    /// Scratch directory for the stores.
    pub dir: PathBuf,
}

/// Runs the bench.
pub async fn run(opts: KafkaBench) -> Result<()> {
    let _ = std::fs::remove_dir_all(&opts.dir);
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let run_id = &run_id[run_id.len() - 8..];
    let (raw, relayed, events) = throughput(&opts, run_id).await?;
    let ratio = relayed / raw.max(1e-9);
    if opts.json {
        println!(
            "{}",
            serde_json::json!({"measurement": "kafka_throughput", "events": events,
                "raw_events_per_sec": raw.round(), "relay_events_per_sec": relayed.round(),
                "ratio_vs_raw": (ratio * 1000.0).round() / 1000.0})
        );
    } else {
        println!("throughput ({events} events): raw producer {raw:.0} events/s, relay {relayed:.0} events/s, ratio_vs_raw {ratio:.2}");
    }
    let mut latencies = latency(&opts, run_id).await?;
    let (p50, p99, max) = (
        latencies.percentile_ms(50.0),
        latencies.percentile_ms(99.0),
        latencies.percentile_ms(100.0),
    );
    if opts.json {
        println!(
            "{}",
            serde_json::json!({"measurement": "kafka_command_to_read_model", "rate_per_sec": opts.rate,
                "commands": latencies.len(), "p50_ms": p50, "p99_ms": p99, "max_ms": max})
        );
    } else {
        println!(
            "command → Kafka-fed read model at {}/s ({} commands): p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
            opts.rate,
            latencies.len()
        );
    }
    let _ = std::fs::remove_dir_all(&opts.dir);
    Ok(())
}

/// A config like `base` with its own topic prefix.
fn prefixed(base: &KafkaConfig, prefix: String) -> KafkaConfig {
    KafkaConfig {
        topic_prefix: prefix,
        ..base.clone()
    }
}

/// Raw producer and relay events/s on the same records; and the count.
async fn throughput(opts: &KafkaBench, run_id: &str) -> Result<(f64, f64, u64)> {
    let dir = opts.dir.join("throughput");
    let store = EmbeddedStore::open(&dir)?;
    eprintln!("bench kafka: writing about {} events...", opts.events);
    super::rebuild::write_day(&store, opts.events, 5).await?;
    let log = store.read_all(1, usize::MAX).await?;
    let head = log.len() as u64;

    let raw_config = prefixed(&opts.kafka, format!("bench.{run_id}.raw."));
    topics::ensure_topics(&raw_config)
        .await
        .context("is the broker up? (scripts/kafka.sh start)")?;
    let records: Vec<(String, wire::WireRecord)> = log
        .iter()
        .map(|r| {
            let topic = topics::topic_of_stream(&raw_config, &r.stream)
                .unwrap_or_else(|| topics::dead_letter_topic(&raw_config));
            (topic, wire::encode(r))
        })
        .collect();
    eprintln!("bench kafka: raw producer sending {head} records...");
    let producer = relay::producer(&raw_config)?;
    let started = Instant::now();
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    for (topic, record) in &records {
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
                Ok(f) => {
                    pending.push_back(f);
                    break;
                }
                Err((e, _)) => match pending.pop_front() {
                    Some(oldest) => check(oldest.await)?,
                    None => bail!("the raw producer refused a record: {e}"),
                },
            }
        }
    }
    for f in pending {
        check(f.await)?;
    }
    let raw = head as f64 / started.elapsed().as_secs_f64();

    eprintln!("bench kafka: relay publishing {head} events...");
    let relay_config = prefixed(&opts.kafka, format!("bench.{run_id}.relay."));
    topics::ensure_topics(&relay_config).await?;
    let shared: Arc<dyn EventStore> = Arc::new(store.clone());
    let started = Instant::now();
    let relay = Relay::start(shared, relay_config, &dir)?;
    while relay.status.checkpoint() < head {
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the relay did not publish {head} events within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let relayed = head as f64 / started.elapsed().as_secs_f64();
    store.shutdown().await;
    relay.stopped().await;
    Ok((raw, relayed, head))
}

fn check(
    delivery: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, impl std::fmt::Debug>,
) -> Result<()> {
    match delivery {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => bail!("the broker refused a record: {e}"),
        Err(_) => bail!("the producer went away before confirming a record"),
    }
}

/// Commits at `opts.rate` for `opts.seconds`; latencies to the Kafka-fed model.
async fn latency(opts: &KafkaBench, run_id: &str) -> Result<Latencies> {
    let dir = opts.dir.join("latency");
    let store = EmbeddedStore::open(&dir)?;
    let shared: Arc<dyn EventStore> = Arc::new(store.clone());
    let config = prefixed(&opts.kafka, format!("bench.{run_id}.latency."));
    topics::ensure_topics(&config).await?;
    let relay = Relay::start(shared.clone(), config.clone(), &dir)?;
    let (progress, mut applied) = tokio::sync::watch::channel(1u64);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(worker::run(
        WorkerOptions {
            kafka: config,
            group: format!("bench-{run_id}"),
            data_dir: dir.join("worker"),
            ordering: Ordering::Global,
            commit_every: Duration::from_secs(1),
            progress: Some(progress),
        },
        async {
            let _ = stopped.await;
        },
    ));
    // When each position was applied: (next position after it, instant).
    let seen: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let watcher = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while applied.changed().await.is_ok() {
                let next = *applied.borrow_and_update();
                seen.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((next, Instant::now()));
            }
        })
    };
    let city = super::geo::synthetic_city((opts.rate as f64 * opts.seconds) as usize + 1, 9);
    let meta = EventMetadata {
        occurred_at: chrono::Utc::now(),
        correlation_id: uuid::Uuid::now_v7(),
        causation_id: None,
        actor: Actor::system("bench"),
    };
    let commit = |registered: o2ohub_events::MerchantRegistered| {
        let store = shared.clone();
        let meta = meta.clone();
        async move {
            let stream = format!("merchant-{}", registered.merchant_id);
            let event: Event = MerchantEvent::Registered(registered).into();
            let started = Instant::now();
            let appended = store
                .append(
                    &stream,
                    ExpectedVersion::NoStream,
                    vec![NewEvent::from_event(&event, &meta)],
                )
                .await?;
            anyhow::Ok((appended.last_position, started))
        }
    };
    let mut city = city.into_iter();
    // Warm-up: the group joins and the first event makes the whole trip.
    let (first, _) = commit(city.next().context("empty city")?).await?;
    let warm = Instant::now();
    while seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .last()
        .is_none_or(|(next, _)| *next <= first)
    {
        if warm.elapsed() > Duration::from_secs(60) {
            bail!("the Kafka-fed worker did not apply the first event within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "bench kafka: {} commands/s for {} s...",
        opts.rate, opts.seconds
    );
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = Vec::new();
    for registered in city {
        tick.tick().await;
        sent.push(tokio::spawn(commit(registered)));
    }
    let mut committed = Vec::with_capacity(sent.len());
    for s in sent {
        committed.push(s.await??);
    }
    let last = committed.iter().map(|(p, _)| *p).max().unwrap_or(first);
    let wait = Instant::now();
    while seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .last()
        .is_none_or(|(next, _)| *next <= last)
    {
        if wait.elapsed() > Duration::from_secs(120) {
            bail!("the Kafka-fed worker did not apply every command within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut latencies = Latencies::default();
    for (position, started) in committed {
        let i = seen.partition_point(|(next, _)| *next <= position);
        if let Some((_, at)) = seen.get(i) {
            latencies.record(at.saturating_duration_since(started).as_micros());
        }
    }
    let _ = stop.send(());
    worker.await??;
    watcher.abort();
    store.shutdown().await;
    relay.stopped().await;
    Ok(latencies)
}
