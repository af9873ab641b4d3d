//! Events on Kafka, against a real Kafka-protocol broker: tansu, installed
//! by `scripts/kafka.sh install`, started here as a child process per test
//! on a free port with in-memory storage. These tests never skip: without
//! the broker they fail and say how to install it.
//!
//! - the relay: events appended through the API appear on their topics, in
//!   stream order, with the right keys and headers;
//! - an outage: the broker is frozen (SIGSTOP) for 30 s while commands keep
//!   being accepted and a Kafka-fed worker holds its partitions; afterwards
//!   every event reaches Kafka and the worker holds exactly a rebuild from
//!   the store, nothing applied twice;
//! - a worker process killed with SIGKILL mid-stream and restarted resumes
//!   from its committed offsets: nothing lost, nothing doubled; poison is
//!   set aside on the dead-letter topic;
//! - two workers sharing a group split the partitions and together hold
//!   exactly what one worker holds.

use o2ohub::api::auth::{Keys, Principal};
use o2ohub::api::AppState;
use o2ohub::hub::HubConfig;
use o2ohub::kafka::models::{self, ModelSet, WorkerSnapshot};
use o2ohub::kafka::relay::{self, Relay};
use o2ohub::kafka::sequencer::Ordering;
use o2ohub::kafka::worker::{self, WorkerOptions, WorkerReport};
use o2ohub::kafka::{topics, wire, KafkaConfig};
use o2ohub::store::embedded::EmbeddedStore;
use o2ohub::store::{EventStore, RecordedEvent};
use o2ohub_events::{AggregateKind, MerchantId, Role};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- the broker

/// A tansu broker owned by one test; killed when dropped.
struct Broker {
    child: Child,
    brokers: String,
}

fn tansu_binary() -> PathBuf {
    if let Ok(p) = std::env::var("O2OHUB_TANSU") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let root = std::env::var("O2OHUB_TANSU_ROOT")
        .unwrap_or_else(|_| format!("{home}/.cache/o2ohub/tansu"));
    PathBuf::from(root).join("bin/tansu")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Broker {
    fn start() -> Broker {
        show_warnings();
        let bin = tansu_binary();
        assert!(
            bin.exists(),
            "no Kafka broker at {}: run `scripts/kafka.sh install` (or set O2OHUB_TANSU to a tansu binary)",
            bin.display()
        );
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let broker = Broker {
            child,
            brokers: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let probe: BaseConsumer = broker.config().client_config().create().unwrap();
                if probe.fetch_metadata(None, Duration::from_secs(2)).is_ok() {
                    return broker;
                }
            }
            assert!(
                Instant::now() < deadline,
                "tansu started on port {port} but did not answer metadata requests within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Settings for this broker. tansu 0.6 cannot fetch from an offset
    /// inside a record batch (it answers with a later batch, over and over),
    /// which every resume from a committed offset does; so the tests produce
    /// one record per batch. A Kafka cluster needs no such setting.
    fn config(&self) -> KafkaConfig {
        let mut config = KafkaConfig::new(&self.brokers);
        config
            .client
            .insert("batch.num.messages".into(), "1".into());
        config
    }

    fn signal(&self, signal: i32) {
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "cannot signal the broker");
    }

    /// Freezes the broker: connections stay open, nothing is answered.
    fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    fn resume(&self) {
        self.signal(libc::SIGCONT);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----------------------------------------------------------------- helpers

/// The hub's warnings (relay retries, consumer errors, failed commits) on
/// stderr, so a failing run shows what the in-process relay and workers
/// met; `O2OHUB_LOG` chooses another level.
fn show_warnings() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("O2OHUB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("o2ohub=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Waits for a condition, failing with `what` after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every record on the event topics, read from the beginning up to the end.
fn read_topics(config: &KafkaConfig) -> Vec<rdkafka::message::OwnedMessage> {
    read_all_of(config, &topics::event_topics(config))
}

fn read_all_of(config: &KafkaConfig, names: &[String]) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: BaseConsumer = config
        .client_config()
        .set("group.id", format!("reader-{}", uuid::Uuid::now_v7()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    let mut ends: HashMap<(String, i32), i64> = HashMap::new();
    for topic in names {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        for t in metadata.topics() {
            for p in t.partitions() {
                let (_, high) = consumer
                    .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                    .unwrap();
                if high > 0 {
                    assignment
                        .add_partition_offset(topic, p.id(), Offset::Beginning)
                        .unwrap();
                    ends.insert((topic.clone(), p.id()), high);
                }
            }
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return out;
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        assert!(
            Instant::now() < deadline,
            "could not read the topics to their end"
        );
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap().detach();
            let key = (m.topic().to_owned(), m.partition());
            if ends.get(&key).is_some_and(|end| m.offset() + 1 >= *end) {
                ends.remove(&key);
            }
            out.push(m);
        }
    }
    out
}

fn header(m: &rdkafka::message::OwnedMessage, name: &str) -> Option<String> {
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

async fn whole_log(store: &dyn EventStore) -> Vec<RecordedEvent> {
    store.read_all(1, usize::MAX).await.unwrap()
}

/// The read models folded straight from the store, as JSON.
async fn rebuild(store: &dyn EventStore) -> Value {
    let mut models = ModelSet::default();
    for recorded in whole_log(store).await {
        models.apply(&recorded.decode().unwrap());
    }
    serde_json::to_value(&models).unwrap()
}

/// The first place two JSON values differ, or `None` when equal.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let (l, r) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                if let Some(d) = first_difference(l, r, &format!("{path}.{k}")) {
                    return Some(d);
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            // Sets (HashSet fields) serialise in no particular order: equal
            // as multisets is equal.
            let sorted = |v: &Vec<Value>| {
                let mut s: Vec<String> = v.iter().map(Value::to_string).collect();
                s.sort();
                s
            };
            if sorted(x) == sorted(y) {
                return None;
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (l, r))| first_difference(l, r, &format!("{path}[{i}]")))
        }
        _ if a == b => None,
        _ => {
            let cut = |v: &Value| v.to_string().chars().take(300).collect::<String>();
            Some(format!("{path}: {} != {}", cut(a), cut(b)))
        }
    }
}

/// Asserts the worker's models equal a rebuild, naming the first difference.
async fn assert_equals_rebuild(models: &ModelSet, store: &dyn EventStore) {
    let fed = serde_json::to_value(models).unwrap();
    let rebuilt = rebuild(store).await;
    if let Some(d) = first_difference(&fed, &rebuilt, "models") {
        panic!("the Kafka-fed read models differ from a rebuild from the store at {d}");
    }
}

fn snapshot(dir: &Path, group: &str) -> Option<WorkerSnapshot> {
    let bytes = std::fs::read(models::snapshot_path(dir, group)).ok()?;
    let snapshot: WorkerSnapshot = serde_json::from_slice(&bytes).expect("a readable snapshot");
    assert_eq!(snapshot.group, group);
    Some(snapshot)
}

/// A worker running in this process until its stop is sent.
struct InProcessWorker {
    dir: tempfile::TempDir,
    group: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<WorkerReport, worker::WorkerError>>,
}

impl InProcessWorker {
    fn start(config: &KafkaConfig, group: &str, ordering: Ordering) -> InProcessWorker {
        let dir = tempfile::tempdir().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut kafka = config.clone();
        // Static membership (see `spawn_worker`), one id per member.
        kafka.client.insert(
            "group.instance.id".into(),
            format!("{group}-{}", uuid::Uuid::now_v7()),
        );
        let options = WorkerOptions {
            kafka,
            group: group.to_owned(),
            data_dir: dir.path().to_owned(),
            ordering,
            commit_every: Duration::from_millis(100),
            progress: None,
        };
        let name = group.to_owned();
        let task = tokio::spawn(async move {
            let report = worker::run(options, async {
                let _ = stopped.await;
            })
            .await;
            if let Err(e) = &report {
                eprintln!("worker of group {name} stopped: {e}");
            }
            report
        });
        InProcessWorker {
            dir,
            group: group.to_owned(),
            stop,
            task,
        }
    }

    /// The worker's last saved snapshot; fails the test if the worker has
    /// stopped on its own (its error is printed).
    fn snapshot(&self) -> Option<WorkerSnapshot> {
        assert!(
            !self.task.is_finished(),
            "the worker of group {} stopped before it was told to",
            self.group
        );
        snapshot(self.dir.path(), &self.group)
    }

    async fn stop(self) -> (WorkerReport, WorkerSnapshot) {
        let _ = self.stop.send(());
        let report = self.task.await.unwrap().unwrap();
        let snapshot = snapshot(self.dir.path(), &self.group).expect("a snapshot at stop");
        (report, snapshot)
    }
}

// --------------------------------------------------------------- the API

struct Server {
    base: String,
    keys: Keys,
    state: Arc<AppState>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(kafka: &KafkaConfig) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut config = HubConfig::new(dir.path().to_path_buf());
        config.kafka = Some(kafka.clone());
        let (addr, state, server) =
            o2ohub::serve::start_with("127.0.0.1:0".parse().unwrap(), config, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        tokio::spawn(server);
        let secrets = o2ohub::secrets::Secrets::load(dir.path()).unwrap();
        Server {
            base: format!("http://{addr}"),
            keys: Keys::from_secret(&secrets.jwt),
            state,
            _stop: stop,
            _dir: dir,
        }
    }

    fn token(&self, role: Role, subject: &str, merchant: Option<MerchantId>) -> String {
        let principal = Principal {
            role,
            subject: subject.into(),
            merchant,
        };
        self.keys.mint(&principal, 600).unwrap()
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn ready(&self) -> Value {
        reqwest::get(format!("{}/readyz", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn relayed_everything(&self) -> bool {
        self.state.hub.relay_lag().await.unwrap() == Some(0)
    }

    /// A merchant with one service of `capacity` seats per slot.
    async fn merchant(&self, admin: &str, capacity: u32) -> MerchantId {
        let (status, body) = self.post("/v1/merchants", admin, salon(capacity)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["merchant_id"].as_str().unwrap().parse().unwrap()
    }

    async fn book(&self, consumer: &str, merchant: MerchantId, hours: i64) -> StatusCode {
        let booking = json!({"merchant_id": merchant, "service_id": "haircut", "slot_start": slot_in_hours(hours)});
        self.post("/v1/visits", consumer, booking).await.0
    }
}

fn salon(capacity: u32) -> Value {
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    json!({
        "name": "Lin's Salon", "category": "salon",
        "location": {"lat": 31.2304, "lng": 121.4737},
        "opening_hours": {"utc_offset_minutes": 0, "intervals":
            days.iter().map(|d| json!({"day": d, "open": 0, "close": 1440})).collect::<Vec<_>>()},
        "services": [{"service_id": "haircut", "name": "Haircut", "duration_minutes": 30,
                      "price": {"minor": 2500, "currency": "EUR"}, "slot_capacity": capacity}],
        "service_area": {"kind": "radius", "meters": 3000},
        "rating_tenths": 45
    })
}

fn slot_in_hours(h: i64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::hours(h);
    let t = t
        .date_naive()
        .and_hms_opt(chrono::Timelike::hour(&t), 0, 0)
        .unwrap()
        .and_utc();
    t.to_rfc3339()
}

// ----------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_from_the_api_reach_their_topics_in_stream_order_with_keys_and_headers() {
    let broker = Broker::start();
    let kafka = broker.config();
    let s = Server::start(&kafka).await;
    let admin = s.token(Role::Admin, "ops", None);
    let merchant = s.merchant(&admin, 2).await;
    let (status, _) = s
        .post(
            "/v1/riders",
            &admin,
            json!({"name": "Wei", "vehicle": "scooter", "capacity": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for h in 1..=3 {
        let consumer = s.token(Role::Consumer, &uuid::Uuid::now_v7().to_string(), None);
        assert_eq!(s.book(&consumer, merchant, h).await, StatusCode::CREATED);
    }
    eventually(
        Duration::from_secs(30),
        "the relay publishes the log",
        || s.relayed_everything(),
    )
    .await;
    assert_eq!(s.ready().await["relay_lag"], 0);

    let log = whole_log(s.state.hub.store.as_ref()).await;
    let kinds: std::collections::BTreeSet<&str> = log
        .iter()
        .map(|r| AggregateKind::of_stream(&r.stream).unwrap().topic())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        vec!["merchants", "riders", "visits"],
        "the API wrote merchant, rider, visit and slot events"
    );
    let messages = read_topics(&kafka);
    assert_eq!(messages.len(), log.len(), "every event once, nothing else");
    let by_position: HashMap<u64, &RecordedEvent> = log.iter().map(|r| (r.position, r)).collect();
    // Per partition: offsets in order; per stream: versions 1, 2, 3… in that order.
    let mut stream_versions: HashMap<String, u64> = HashMap::new();
    let mut ordered = messages.iter().collect::<Vec<_>>();
    ordered.sort_by_key(|m| (m.topic().to_owned(), m.partition(), m.offset()));
    for m in ordered {
        let position: u64 = header(m, wire::header::GLOBAL_POSITION)
            .unwrap()
            .parse()
            .unwrap();
        let recorded = by_position[&position];
        assert_eq!(
            Some(m.topic()),
            topics::topic_of_stream(&kafka, &recorded.stream).as_deref(),
            "topic of {}",
            recorded.stream
        );
        assert_eq!(
            m.key(),
            Some(recorded.stream.as_bytes()),
            "keyed by stream id"
        );
        assert_eq!(
            header(m, wire::header::EVENT_ID),
            Some(recorded.event.event_id.to_string())
        );
        assert_eq!(
            header(m, wire::header::EVENT_TYPE).as_deref(),
            Some(recorded.event.event_type.as_str())
        );
        assert_eq!(
            header(m, wire::header::SCHEMA_VERSION),
            Some(recorded.event.schema_version.to_string())
        );
        assert_eq!(
            header(m, wire::header::CORRELATION_ID),
            Some(recorded.event.metadata.correlation_id.to_string())
        );
        let (back, _) = wire::decode(m.payload()).unwrap();
        assert_eq!(&back, recorded, "the value is the stored event");
        let last = stream_versions.entry(recorded.stream.clone()).or_insert(0);
        assert_eq!(
            recorded.version,
            *last + 1,
            "{} out of order",
            recorded.stream
        );
        *last = recorded.version;
    }
}

/// How long the broker is frozen: 30 s as the issue asks; set
/// O2OHUB_TEST_OUTAGE_SECS to iterate faster locally.
fn outage() -> Duration {
    Duration::from_secs(
        std::env::var("O2OHUB_TEST_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_outage_delays_publication_but_loses_and_doubles_nothing() {
    let broker = Broker::start();
    let kafka = broker.config();
    let s = Server::start(&kafka).await;
    // The worker's group session outlives the outage. tansu 0.6.0 cannot
    // re-form a group whose leader timed out: the JoinGroup that follows
    // names the vanished leader for good, and SyncGroup answers "rebalance
    // in progress" forever (seen for minutes). Apache Kafka re-forms it.
    let mut patient = kafka.clone();
    patient.client.insert(
        "session.timeout.ms".into(),
        (outage() + Duration::from_secs(30)).as_millis().to_string(),
    );
    let worker = InProcessWorker::start(&patient, "outage", Ordering::Global);
    let admin = s.token(Role::Admin, "ops", None);
    let merchant = s.merchant(&admin, 1000).await;
    eventually(Duration::from_secs(30), "the relay starts", || {
        s.relayed_everything()
    })
    .await;
    // The worker is a member holding its partitions when the broker stops.
    let head = s.state.hub.store.head().await.unwrap();
    eventually(
        Duration::from_secs(60),
        "the worker joins and applies",
        || {
            let next = worker.snapshot().map(|w| w.applied.next_position);
            async move { next == Some(head + 1) }
        },
    )
    .await;

    broker.pause();
    let started = Instant::now();
    let mut accepted = 0;
    let mut hour = 1;
    while started.elapsed() < outage() {
        let consumer = s.token(Role::Consumer, &uuid::Uuid::now_v7().to_string(), None);
        let asked = Instant::now();
        assert_eq!(s.book(&consumer, merchant, hour).await, StatusCode::CREATED);
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "a command waited on Kafka"
        );
        if accepted % 10 == 0 {
            s.merchant(&admin, 5).await;
        }
        accepted += 1;
        hour = hour % 48 + 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted > 50, "commands kept being accepted: {accepted}");
    let lag = s.ready().await["relay_lag"].as_u64().unwrap();
    assert!(
        lag > 0,
        "readiness reports the relay behind during the outage"
    );
    broker.resume();

    eventually(
        Duration::from_secs(120),
        "every event reaches Kafka after the outage",
        || s.relayed_everything(),
    )
    .await;
    let store = s.state.hub.store.clone();
    let head = store.head().await.unwrap();
    eventually(Duration::from_secs(120), "the worker catches up", || {
        let next = worker.snapshot().map(|w| w.applied.next_position);
        async move { next == Some(head + 1) }
    })
    .await;
    let (report, snapshot) = worker.stop().await;
    assert_eq!(report.applied, head, "each event applied exactly once");
    assert_eq!(report.poison, 0);
    assert_equals_rebuild(&snapshot.models, store.as_ref()).await;
    // And Kafka holds every position (re-sends allowed, gaps not).
    let positions: std::collections::BTreeSet<u64> = read_topics(&kafka)
        .iter()
        .map(|m| {
            header(m, wire::header::GLOBAL_POSITION)
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(positions, (1..=head).collect());
}

/// A store with a synthetic day on it, published by a relay; returns the
/// store, its data dir and the head.
async fn published_day(
    kafka: &KafkaConfig,
    events: u64,
) -> (EmbeddedStore, tempfile::TempDir, u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    o2ohub::bench::rebuild::write_day(&store, events, 11)
        .await
        .unwrap();
    let head = store.head().await.unwrap();
    let shared: Arc<dyn EventStore> = Arc::new(store.clone());
    let relay = Relay::start(shared, kafka.clone(), dir.path()).unwrap();
    eventually(
        Duration::from_secs(120),
        "the relay publishes the day",
        || {
            let done = relay.status.checkpoint() == head;
            async move { done }
        },
    )
    .await;
    let file = relay::checkpoint_path(dir.path());
    eventually(
        Duration::from_secs(5),
        "the checkpoint file follows delivery",
        || {
            let stored = relay::read_checkpoint(&file).unwrap();
            async move { stored == head }
        },
    )
    .await;
    (store, dir, head)
}

/// Produces a message to `topic` with `key`.
async fn produce(kafka: &KafkaConfig, topic: &str, key: &str, value: &[u8]) {
    let producer: FutureProducer = kafka.client_config().create().unwrap();
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(value),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
}

/// A worker process, killed if the test ends before it stops.
struct WorkerProcess(Child);

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_worker(kafka: &KafkaConfig, group: &str, dir: &Path) -> WorkerProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_o2ohub"))
        .args([
            "project",
            "--source",
            "kafka",
            "--group",
            group,
            "--commit-ms",
            "50",
            "--data-dir",
        ])
        .arg(dir)
        .env("O2OHUB_KAFKA_BROKERS", &kafka.brokers)
        .env("O2OHUB_KAFKA_BATCH_NUM_MESSAGES", "1")
        // Static membership: the restarted process takes the killed one's
        // place at once instead of waiting for its session to expire.
        .env("O2OHUB_KAFKA_GROUP_INSTANCE_ID", format!("{group}-worker"))
        .env(
            "O2OHUB_LOG",
            std::env::var("O2OHUB_TEST_WORKER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    WorkerProcess(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_stream_resumes_from_its_committed_offsets() {
    let broker = Broker::start();
    let kafka = broker.config();
    let (store, _store_dir, head) = published_day(&kafka, 6_000).await;
    // Poison: not JSON at all, and a re-send of event 5 in a schema version
    // from the future, on the same partition (same key) after the original.
    let fifth = &store.read_all(5, 1).await.unwrap()[0];
    let topic = topics::topic_of_stream(&kafka, &fifth.stream).unwrap();
    produce(&kafka, &topic, "junk", b"\x00 not json").await;
    let mut future = fifth.clone();
    future.event.schema_version = 99;
    produce(&kafka, &topic, &fifth.stream, &wire::encode(&future).value).await;

    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_worker(&kafka, "killed", dir.path());
    let started = Instant::now();
    let at_kill = loop {
        if let Some(s) = snapshot(dir.path(), "killed") {
            if s.applied.events > 0 {
                break s.applied.events;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the worker saved no snapshot within 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    assert!(
        at_kill < head,
        "killed mid-stream ({at_kill} of {head} applied)"
    );

    let mut child = spawn_worker(&kafka, "killed", dir.path());
    eventually(
        Duration::from_secs(120),
        "the restarted worker catches up",
        || {
            let next = snapshot(dir.path(), "killed").map(|s| s.applied.next_position);
            async move { next == Some(head + 1) }
        },
    )
    .await;
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    assert!(child.0.wait().unwrap().success(), "a clean stop on SIGTERM");
    let s = snapshot(dir.path(), "killed").unwrap();
    assert_eq!(
        s.applied.events, head,
        "nothing lost, nothing applied twice"
    );
    assert_eq!(s.poison, 2, "both poison messages set aside");
    assert_equals_rebuild(&s.models, &store).await;
    let dead = read_all_of(&kafka, &[topics::dead_letter_topic(&kafka)]);
    assert_eq!(
        dead.len(),
        2,
        "dead letters: {:?}",
        dead.iter()
            .map(|m| (m.offset(), header(m, wire::header::DEAD_LETTER_SOURCE)))
            .collect::<Vec<_>>()
    );
    assert!(dead
        .iter()
        .all(|m| header(m, wire::header::DEAD_LETTER_SOURCE)
            .is_some_and(|src| src.starts_with(&format!("{topic}/")))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_in_one_group_hold_what_one_holds() {
    let broker = Broker::start();
    let kafka = broker.config();
    topics::ensure_topics(&kafka).await.unwrap();
    let a = InProcessWorker::start(&kafka, "split", Ordering::Stream);
    let b = InProcessWorker::start(&kafka, "split", Ordering::Stream);
    // Let the group settle (both members joined, partitions assigned)
    // before anything is published, so no partition changes hands mid-way.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (store, _dir, head) = published_day(&kafka, 5_000).await;
    let one = InProcessWorker::start(&kafka, "single", Ordering::Stream);
    let final_versions: BTreeMap<String, u64> = whole_log(&store)
        .await
        .into_iter()
        .map(|r| (r.stream, r.version))
        .collect();
    let total = |w: &InProcessWorker| w.snapshot().map(|s| s.applied.events).unwrap_or(0);
    eventually(Duration::from_secs(120), "the pair applies the log", || {
        let n = total(&a) + total(&b);
        async move { n >= head }
    })
    .await;
    eventually(
        Duration::from_secs(120),
        "the single worker applies the log",
        || {
            let n = total(&one);
            async move { n >= head }
        },
    )
    .await;
    let (ra, sa) = a.stop().await;
    let (rb, sb) = b.stop().await;
    let (r1, s1) = one.stop().await;
    assert!(
        ra.applied > 0 && rb.applied > 0,
        "both members got partitions: {ra:?} {rb:?}"
    );
    assert_eq!(
        ra.applied + rb.applied,
        r1.applied,
        "no event applied by both"
    );
    assert_eq!(r1.applied, head);
    let union: BTreeMap<String, u64> = sa
        .applied
        .streams
        .iter()
        .chain(sb.applied.streams.iter())
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(
        union.len(),
        sa.applied.streams.len() + sb.applied.streams.len(),
        "each stream lives with one member"
    );
    let single: BTreeMap<String, u64> = s1.applied.streams.into_iter().collect();
    assert_eq!(union, single);
    assert_eq!(single, final_versions, "every stream to its last version");
}
