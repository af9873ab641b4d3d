//! Durability under `kill -9`: a child process appends under concurrent load
//! and reports every acknowledged event; it is killed with SIGKILL at a random
//! moment, 20 times over one store. After each kill the store must open, hold
//! every acknowledged event, number the log 1..=head without gaps, and read
//! back every record intact (each record carries a CRC).
//!
//! The child is this test binary itself, re-run with `crash_child` selected.

use o2ohub::store::embedded::{EmbeddedStore, LogOptions};
use o2ohub::store::sqlite::SqliteStore;
use o2ohub::store::{EventMetadata, EventStore, ExpectedVersion, NewEvent};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "O2OHUB_CRASH_CHILD_DIR";
const BACKEND_ENV: &str = "O2OHUB_CRASH_BACKEND";

/// Opens the backend under test; small log segments so rounds cross them.
fn open(backend: &str, dir: &std::path::Path) -> Arc<dyn EventStore> {
    match backend {
        "log" => Arc::new(
            EmbeddedStore::open_with(
                dir,
                LogOptions {
                    segment_bytes: 256 << 10,
                    direct_writes: true,
                },
            )
            .expect("log reopens"),
        ),
        _ => Arc::new(SqliteStore::open(dir).expect("sqlite reopens")),
    }
}

const WRITERS: usize = 16;

/// The child's work: append forever from 16 writers, printing each ack.
/// Run only by the `kill_9_…` tests.
#[test]
#[ignore = "run as a child process by the kill_9 tests"]
fn crash_child() {
    let dir = std::env::var(CHILD_ENV).expect("the crash child needs its data directory");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let backend = std::env::var(BACKEND_ENV).unwrap_or_default();
        let store = open(&backend, std::path::Path::new(&dir));
        let out = Arc::new(Mutex::new(std::io::stdout()));
        writeln!(out.lock().unwrap(), "ready").unwrap();
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (store, out) = (store.clone(), out.clone());
                tokio::spawn(async move {
                    let stream = format!("crash-{w}");
                    let mut version = store.read_stream(&stream, 1).await.unwrap().len() as u64;
                    loop {
                        // Mix single events and small batches.
                        let n = 1 + version % 3;
                        let events: Vec<NewEvent> = (0..n).map(|i| event(version + i)).collect();
                        let ids: Vec<_> = events.iter().map(|e| e.event_id).collect();
                        store
                            .append(&stream, ExpectedVersion::Exact(version), events)
                            .await
                            .unwrap();
                        let mut out = out.lock().unwrap();
                        for id in ids {
                            version += 1;
                            writeln!(out, "ack {stream} {version} {id}").unwrap();
                        }
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event_type: "CrashTested".into(),
        schema_version: 1,
        payload: format!(r#"{{"n":{n},"pad":"{}"}}"#, "x".repeat((n % 200) as usize)),
        metadata: EventMetadata {
            occurred_at: chrono::Utc::now(),
            correlation_id: uuid::Uuid::now_v7(),
            causation_id: None,
            actor: o2ohub_events::Actor::system("crash-test"),
        },
    }
}

#[test]
fn kill_9_never_loses_an_acknowledged_event_of_the_log() {
    crash_rounds("log");
}

#[test]
fn kill_9_never_loses_an_acknowledged_event_of_sqlite() {
    crash_rounds("sqlite");
}

fn crash_rounds(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: HashMap<(String, u64), String> = HashMap::new();
    for round in 0..20 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, dir.path())
            .env(BACKEND_ENV, backend)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("child.stderr")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let (stdout, lines) = (child.stdout.take().unwrap(), lines.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            })
        };
        let started = Instant::now();
        // Kill under load: once the writers are acknowledging, at a random moment.
        while !lines.lock().unwrap().iter().any(|l| l.starts_with("ack ")) {
            let exited = child.try_wait().unwrap().is_some();
            if exited || started.elapsed() > Duration::from_secs(30) {
                let stderr =
                    std::fs::read_to_string(dir.path().join("child.stderr")).unwrap_or_default();
                panic!(
                    "round {round}: the child acknowledged no write (exited: {exited}):\n{stderr}"
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rand::random_range(0..250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let mut this_round = 0;
        for line in lines.lock().unwrap().iter() {
            let parts: Vec<&str> = line.split(' ').collect();
            if let ["ack", stream, version, id] = parts[..] {
                acked.insert((stream.to_owned(), version.parse().unwrap()), id.to_owned());
                this_round += 1;
            }
        }
        assert!(
            this_round > 0,
            "round {round}: acknowledgements were seen before the kill"
        );
        verify(backend, dir.path(), &acked, round);
    }
}

fn verify(
    backend: &str,
    dir: &std::path::Path,
    acked: &HashMap<(String, u64), String>,
    round: usize,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = open(backend, dir);
        let head = store.head().await.unwrap();
        let mut next = 1;
        let mut found: HashMap<(String, u64), String> = HashMap::new();
        loop {
            let batch = store
                .read_all(next, 10_000)
                .await
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            if batch.is_empty() {
                break;
            }
            for e in batch {
                assert_eq!(e.position, next, "round {round}: gap in the log");
                next += 1;
                found.insert((e.stream.clone(), e.version), e.event.event_id.to_string());
            }
        }
        assert_eq!(next - 1, head, "round {round}: head agrees with the log");
        for (key, id) in acked {
            assert_eq!(
                found.get(key),
                Some(id),
                "round {round}: acknowledged event {key:?} lost"
            );
        }
        // Versions of each stream are contiguous too.
        let mut max: HashMap<&str, u64> = HashMap::new();
        for (stream, version) in found.keys() {
            let m = max.entry(stream.as_str()).or_default();
            *m = (*m).max(*version);
        }
        for (stream, top) in max {
            assert_eq!(
                store.read_stream(stream, 1).await.unwrap().len() as u64,
                top,
                "round {round}: {stream}"
            );
        }
        drop(store);
    });
}
