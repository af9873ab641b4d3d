//! `o2ohub bench kafka`: the relay against a raw rdkafka producer, and the
//! latency from a committed command to a Kafka-fed read model.
//!
//! - Throughput: a synthetic day is written to a fresh store; a raw
//!   producer (the relay's own settings: idempotent, `acks=all`; a
//!   threaded producer that only counts its delivery reports) sends the
//!   very records the relay would send, encoded beforehand, to the same
//!   broker, and then the relay publishes the store from position 1 —
//!   reading the log, encoding, producing and tracking its checkpoint. Both
//!   are timed from their topic check and producer start to the last
//!   confirmation. `ratio_vs_raw` is the median over the rounds of relay
//!   events/s ÷ raw events/s of the same round (target ≥ 0.8), with the
//!   lowest and highest round beside it.
//! - Latency: commands are committed to a store at a fixed rate (one
//!   merchant registration each, durable), the relay publishes them and a
//!   worker (global ordering) applies them; the time from the start of the
//!   commit to the moment the worker has applied it, p50/p99 (target p99 ≤
//!   50 ms at 1k commands/s), and of it the store's acknowledgement and the
//!   broker's confirmation.
//!
//! Every run uses fresh topic prefixes, so runs never read each other's data.

use anyhow::{bail, Context, Result};
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
use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

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
    /// Alternating raw/relay rounds of the throughput run (medians reported).
    pub rounds: usize,
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
    // The latency run's store is opened first: a fresh store writes its first
    // spare segment (64 MB of zeros, once per store) in the background, and
    // that burst belongs to the untimed writing of the throughput run's day,
    // not to the measured commits, whose syncs would queue behind it.
    let latency_store = EmbeddedStore::open(&opts.dir.join("latency"))?;
    let Throughput {
        mut raw,
        mut relayed,
        mut ratios,
        events,
    } = throughput(&opts, run_id).await?;
    let (raw, relayed) = (median(&mut raw), median(&mut relayed));
    let lowest = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ratio = median(&mut ratios);
    let round3 = |r: f64| (r * 1000.0).round() / 1000.0;
    if opts.json {
        println!(
            "{}",
            serde_json::json!({"measurement": "kafka_throughput", "events": events, "rounds": opts.rounds.max(1),
                "raw_events_per_sec": raw.round(), "relay_events_per_sec": relayed.round(),
                "ratio_vs_raw": round3(ratio), "ratio_min": round3(lowest), "ratio_max": round3(highest)})
        );
    } else {
        println!("throughput ({events} events, median of {} rounds): raw producer {raw:.0} events/s, relay {relayed:.0} events/s, ratio_vs_raw {ratio:.2} (rounds {lowest:.2}-{highest:.2})", opts.rounds.max(1));
    }
    let Legs {
        mut appended,
        mut on_kafka,
        mut applied,
    } = latency(&opts, run_id, latency_store).await?;
    let (p50, p99, max) = (
        applied.percentile_ms(50.0),
        applied.percentile_ms(99.0),
        applied.percentile_ms(100.0),
    );
    let (append_p99, kafka_p50, kafka_p99) = (
        appended.percentile_ms(99.0),
        on_kafka.percentile_ms(50.0),
        on_kafka.percentile_ms(99.0),
    );
    if opts.json {
        println!(
            "{}",
            serde_json::json!({"measurement": "kafka_command_to_read_model", "rate_per_sec": opts.rate,
                "commands": applied.len(), "p50_ms": p50, "p99_ms": p99, "max_ms": max,
                "append_p99_ms": append_p99, "on_kafka_p50_ms": kafka_p50, "on_kafka_p99_ms": kafka_p99})
        );
    } else {
        println!(
            "command → Kafka-fed read model at {}/s ({} commands): p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
            opts.rate,
            applied.len()
        );
        println!(
            "  of which: appended (durable) p99 {append_p99:.1} ms; confirmed on Kafka p50 {kafka_p50:.1} ms, p99 {kafka_p99:.1} ms"
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

/// The rounds of the throughput run, one entry per round.
struct Throughput {
    /// Raw producer events/s.
    raw: Vec<f64>,
    /// Relay events/s.
    relayed: Vec<f64>,
    /// Relay ÷ raw within each round: the two ran back to back, so a change
    /// in the shared machine's speed between rounds cancels out.
    ratios: Vec<f64>,
    /// Events per round.
    events: u64,
}

/// Raw producer and relay events/s over `opts.rounds` alternating rounds on
/// the same records.
async fn throughput(opts: &KafkaBench, run_id: &str) -> Result<Throughput> {
    let dir = opts.dir.join("throughput");
    let store = EmbeddedStore::open(&dir)?;
    eprintln!("bench kafka: writing about {} events...", opts.events);
    super::rebuild::write_day(&store, opts.events, 5).await?;
    let log = store.read_all(1, usize::MAX).await?;
    store.shutdown().await;
    // Each relay round opens the store again: let go of its lock.
    drop(store);
    let head = log.len() as u64;
    let (mut raw, mut relayed, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..opts.rounds.max(1) {
        // Alternate who goes first, so neither always meets a cold broker.
        let raw_config = prefixed(&opts.kafka, format!("bench.{run_id}.{round}.raw."));
        let relay_config = prefixed(&opts.kafka, format!("bench.{run_id}.{round}.relay."));
        topics::ensure_topics(&raw_config)
            .await
            .context("is the broker up? (scripts/kafka.sh start)")?;
        topics::ensure_topics(&relay_config).await?;
        eprintln!(
            "bench kafka: round {}: raw producer and relay, {head} events each...",
            round + 1
        );
        if round % 2 == 0 {
            raw.push(raw_producer(&raw_config, &log).await?);
            relayed.push(relay_from_start(&dir, relay_config, head).await?);
        } else {
            relayed.push(relay_from_start(&dir, relay_config, head).await?);
            raw.push(raw_producer(&raw_config, &log).await?);
        }
        let (r, q) = (raw[raw.len() - 1], relayed[relayed.len() - 1]);
        ratios.push(q / r.max(1e-9));
        eprintln!(
            "bench kafka: round {}: raw {r:.0} events/s, relay {q:.0} events/s, ratio {:.3}",
            round + 1,
            ratios[ratios.len() - 1]
        );
    }
    Ok(Throughput {
        raw,
        relayed,
        ratios,
        events: head,
    })
}

/// The middle value (the mean of the two middle ones for an even count);
/// sorts `values`.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// A bare producer with the relay's settings sending the relay's records
/// (encoded beforehand) to `config`'s topics: events/s from the producer's
/// start to the last confirmation.
async fn raw_producer(config: &KafkaConfig, log: &[crate::store::RecordedEvent]) -> Result<f64> {
    let names = topics::TopicNames::new(config);
    let records: Vec<(&str, wire::WireRecord)> = log
        .iter()
        .map(|r| (names.of_stream(&r.stream), wire::encode(r)))
        .collect();
    let head = records.len() as u64;
    let started = Instant::now();
    let outcomes = Arc::new(Outcomes::default());
    let producer: Arc<ThreadedProducer<Counting>> =
        Arc::new(relay::producer_config(config).create_with_context(Counting(outcomes.clone()))?);
    let hastening =
        relay::hasten_producer_id(Arc::downgrade(&producer), names.name(0).to_owned(), {
            let outcomes = outcomes.clone();
            move || {
                outcomes.delivered.load(AtomicOrdering::Acquire)
                    + outcomes.failed.load(AtomicOrdering::Acquire)
                    > 0
            }
        });
    for (topic, record) in &records {
        let mut message = BaseRecord::to(topic)
            .key(record.key.as_bytes())
            .payload(&record.value)
            .headers(record.kafka_headers());
        loop {
            match producer.send(message) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    message = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => bail!("the raw producer refused a record: {e}"),
            }
        }
    }
    while outcomes.delivered.load(AtomicOrdering::Acquire)
        + outcomes.failed.load(AtomicOrdering::Acquire)
        < head
    {
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the raw producer did not deliver {head} records within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = head as f64 / started.elapsed().as_secs_f64();
    drop(producer);
    let _ = hastening.await;
    let failed = outcomes.failed.load(AtomicOrdering::Acquire);
    if failed > 0 {
        bail!("the broker refused {failed} records of the raw producer");
    }
    Ok(rate)
}

/// The relay publishing the store in `dir` from position 1 (a fresh
/// checkpoint) to `config`'s topics: events/s from its start until its
/// checkpoint covers all `head` events.
async fn relay_from_start(dir: &std::path::Path, config: KafkaConfig, head: u64) -> Result<f64> {
    let _ = std::fs::remove_file(relay::checkpoint_path(dir));
    let store = EmbeddedStore::open(dir)?;
    let shared: Arc<dyn EventStore> = Arc::new(store.clone());
    let started = Instant::now();
    let relay = Relay::start(shared, config, dir)?;
    while relay.status.checkpoint() < head {
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the relay did not publish {head} events within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = head as f64 / started.elapsed().as_secs_f64();
    store.shutdown().await;
    relay.stopped().await;
    drop(store);
    Ok(rate)
}

/// The raw producer's delivery reports, counted (the least a producer
/// that must know its records arrived can do).
#[derive(Debug, Default)]
struct Outcomes {
    /// Records confirmed.
    delivered: AtomicU64,
    /// Records refused.
    failed: AtomicU64,
}

/// The raw producer's context: reports into [`Outcomes`].
struct Counting(Arc<Outcomes>);

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() {
            &self.0.delivered
        } else {
            &self.0.failed
        };
        counter.fetch_add(1, AtomicOrdering::Release);
    }
}

/// The latency of each command from the start of its commit, up to three
/// points: the store acknowledged it; the relay's checkpoint covers it (the
/// broker confirmed it); the Kafka-fed worker applied it.
#[derive(Debug, Default)]
struct Legs {
    /// To the store's acknowledgement (durable).
    appended: Latencies,
    /// To the broker's confirmation, as the relay's checkpoint shows it.
    on_kafka: Latencies,
    /// To the read model (the measured figure).
    applied: Latencies,
}

/// Records, as it moves, a position and when it got there: `(next position
/// after it, instant)`, ascending.
type Progress = Arc<Mutex<Vec<(u64, Instant)>>>;

/// When `position` was first covered by `progress`.
fn reached(progress: &[(u64, Instant)], position: u64) -> Option<Instant> {
    let i = progress.partition_point(|(next, _)| *next <= position);
    progress.get(i).map(|(_, at)| *at)
}

/// Commits at `opts.rate` for `opts.seconds`; latencies to the Kafka-fed model.
async fn latency(opts: &KafkaBench, run_id: &str, store: EmbeddedStore) -> Result<Legs> {
    let dir = opts.dir.join("latency");
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
    let seen: Progress = Arc::default();
    // When the relay's checkpoint passed it (polled every millisecond).
    let confirmed: Progress = Arc::default();
    let checkpoints = {
        let (confirmed, status) = (confirmed.clone(), relay.status.clone());
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                let checkpoint = status.checkpoint();
                if checkpoint != last {
                    last = checkpoint;
                    confirmed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((checkpoint + 1, Instant::now()));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
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
            anyhow::Ok((appended.last_position, started, started.elapsed()))
        }
    };
    let mut city = city.into_iter();
    // Warm-up: the group joins and the first event makes the whole trip.
    let (first, _, _) = commit(city.next().context("empty city")?).await?;
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
    let last = committed.iter().map(|(p, _, _)| *p).max().unwrap_or(first);
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
    checkpoints.abort();
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let confirmed = confirmed.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut legs = Legs::default();
    for (position, started, appended) in committed {
        legs.appended.record(appended.as_micros());
        if let Some(at) = reached(&confirmed, position) {
            legs.on_kafka
                .record(at.saturating_duration_since(started).as_micros());
        }
        if let Some(at) = reached(&seen, position) {
            legs.applied
                .record(at.saturating_duration_since(started).as_micros());
        }
    }
    let _ = stop.send(());
    worker.await??;
    watcher.abort();
    store.shutdown().await;
    relay.stopped().await;
    Ok(legs)
}
