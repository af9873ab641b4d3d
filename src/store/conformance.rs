//! The behavioural contract of [`EventStore`], written once and run unchanged
//! against every backend. A backend's test file instantiates the suite with
//! [`crate::event_store_conformance!`], giving an expression that yields a
//! fresh, empty store; each case becomes its own named test.

use chrono::{DateTime, SubsecRound, Utc};
use o2ohub_events::{Actor, Role};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

use super::{
    Commit, CommitOutcome, EventMetadata, EventStore, ExpectedVersion, IdempotencyClaim, NewEvent,
    StoreError, StreamWrite,
};

/// A store under test.
pub type Store = Arc<dyn EventStore>;

/// Instantiates every conformance case as a `#[tokio::test]`; `$fresh` is an
/// async expression producing a fresh, empty `Arc<dyn EventStore>`. With
/// `ignore = "why"` every case is marked ignored (for a backend that needs a
/// server): the test run lists each one as ignored, by name, and
/// `cargo test … -- --ignored` runs them.
#[macro_export]
macro_rules! event_store_conformance {
    ($fresh:expr) => {
        $crate::event_store_conformance!(@with [] $fresh);
    };
    ($fresh:expr, ignore = $why:literal) => {
        $crate::event_store_conformance!(@with [#[ignore = $why]] $fresh);
    };
    (@with [$($attr:tt)*] $fresh:expr) => {
        $crate::event_store_conformance!(@cases [$($attr)*] $fresh;
            appends_and_reads_back, wrong_expected_version_reports_the_actual_version,
            concurrent_writers_of_one_stream_have_exactly_one_winner, global_log_is_gap_free_and_ordered,
            multi_stream_commit_is_all_or_nothing, read_all_pages_from_any_position,
            subscription_hands_over_from_catch_up_to_live, idempotency_key_returns_the_first_outcome,
            concurrent_retries_of_one_key_append_once, metadata_round_trips, malformed_commits_are_refused);
    };
    (@cases $attrs:tt $fresh:expr; $($case:ident),*) => {
        $( $crate::event_store_conformance!(@case $attrs $fresh; $case); )*
    };
    (@case [$($attr:tt)*] $fresh:expr; $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $($attr)*
        async fn $case() {
            $crate::store::conformance::$case($fresh.await).await;
        }
    };
}

fn meta() -> EventMetadata {
    EventMetadata {
        // Stores keep microseconds; compare at that precision.
        occurred_at: Utc::now().trunc_subsecs(6),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: Actor {
            role: Role::Admin,
            subject: "conformance".into(),
        },
    }
}

/// A test event with payload `{"n": n}`.
pub fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "ConformanceTested".into(),
        schema_version: 1,
        payload: format!(r#"{{"n":{n}}}"#),
        metadata: meta(),
    }
}

fn stream(name: &str) -> String {
    format!("conformance-{name}-{}", Uuid::now_v7().simple())
}

/// Appended events read back with versions 1..n and rising positions.
pub async fn appends_and_reads_back(store: Store) {
    let s = stream("read");
    let written: Vec<_> = (0..5).map(event).collect();
    let a = store
        .append(&s, ExpectedVersion::NoStream, written.clone())
        .await
        .unwrap();
    assert_eq!(a.version, 5);
    let back = store.read_stream(&s, 1).await.unwrap();
    assert_eq!(
        back.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        back.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        written
    );
    assert!(back.windows(2).all(|w| w[1].position == w[0].position + 1));
    assert_eq!(back[4].position, a.last_position);
    assert_eq!(store.read_stream(&s, 4).await.unwrap().len(), 2);
    assert!(store
        .read_stream(&stream("absent"), 1)
        .await
        .unwrap()
        .is_empty());
}

/// A stale writer is told the actual version.
pub async fn wrong_expected_version_reports_the_actual_version(store: Store) {
    let s = stream("conflict");
    store
        .append(&s, ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    let err = store
        .append(&s, ExpectedVersion::NoStream, vec![event(3)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::WrongExpectedVersion { actual: 2, .. }),
        "{err}"
    );
    let err = store
        .append(&s, ExpectedVersion::Exact(5), vec![event(3)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::WrongExpectedVersion { actual: 2, .. }),
        "{err}"
    );
    assert_eq!(
        store
            .append(&s, ExpectedVersion::Exact(2), vec![event(3)])
            .await
            .unwrap()
            .version,
        3
    );
    assert_eq!(
        store
            .append(&s, ExpectedVersion::Any, vec![event(4)])
            .await
            .unwrap()
            .version,
        4
    );
    assert_eq!(
        store.read_stream(&s, 1).await.unwrap().len(),
        4,
        "refused writes left nothing"
    );
}

/// Many writers racing on one expected version: one wins, the rest conflict.
pub async fn concurrent_writers_of_one_stream_have_exactly_one_winner(store: Store) {
    let s = stream("race");
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (store, s) = (store.clone(), s.clone());
            tokio::spawn(async move {
                store
                    .append(&s, ExpectedVersion::NoStream, vec![event(i)])
                    .await
            })
        })
        .collect();
    let (mut wins, mut conflicts) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::WrongExpectedVersion { actual: 1, .. }) => conflicts += 1,
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!((wins, conflicts), (1, 31));
    assert_eq!(store.read_stream(&s, 1).await.unwrap().len(), 1);
}

/// Concurrent appends to many streams: the log is 1..=n without gaps, and each
/// stream's events appear in it in version order.
pub async fn global_log_is_gap_free_and_ordered(store: Store) {
    let base = store.head().await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let s = stream(&format!("order{t}"));
                for v in 0..25u64 {
                    store
                        .append(&s, ExpectedVersion::Exact(v), vec![event(v)])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let all = store.read_all(base + 1, 10_000).await.unwrap();
    assert_eq!(all.len(), 400);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.position, base + 1 + i as u64, "gap-free positions");
    }
    let mut last: HashMap<&str, u64> = HashMap::new();
    for e in &all {
        let prev = last.insert(&e.stream, e.version).unwrap_or(0);
        assert_eq!(e.version, prev + 1, "stream order within the log");
    }
    assert_eq!(store.head().await.unwrap(), base + 400);
}

/// A commit touching two streams stores both or neither.
pub async fn multi_stream_commit_is_all_or_nothing(store: Store) {
    let (a, b) = (stream("a"), stream("b"));
    store
        .append(&b, ExpectedVersion::NoStream, vec![event(0)])
        .await
        .unwrap();
    let bad = Commit {
        writes: vec![
            StreamWrite {
                stream: a.clone(),
                expected: ExpectedVersion::NoStream,
                events: vec![event(1)],
            },
            StreamWrite {
                stream: b.clone(),
                expected: ExpectedVersion::NoStream,
                events: vec![event(2)],
            },
        ],
        idempotency: None,
    };
    let err = store.commit(bad).await.unwrap_err();
    assert!(
        matches!(err, StoreError::WrongExpectedVersion { ref stream, actual: 1, .. } if *stream == b),
        "{err}"
    );
    assert!(
        store.read_stream(&a, 1).await.unwrap().is_empty(),
        "nothing of a refused commit is stored"
    );
    let good = Commit {
        writes: vec![
            StreamWrite {
                stream: a.clone(),
                expected: ExpectedVersion::NoStream,
                events: vec![event(1)],
            },
            StreamWrite {
                stream: b.clone(),
                expected: ExpectedVersion::Exact(1),
                events: vec![event(2)],
            },
        ],
        idempotency: None,
    };
    let CommitOutcome::Committed(appended) = store.commit(good).await.unwrap() else {
        panic!("not committed")
    };
    assert_eq!(
        appended.iter().map(|x| x.version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(appended[1].last_position, appended[0].last_position + 1);
}

/// `read_all` pages from any position and honours the limit.
pub async fn read_all_pages_from_any_position(store: Store) {
    let base = store.head().await.unwrap();
    let s = stream("pages");
    store
        .append(&s, ExpectedVersion::NoStream, (0..10).map(event).collect())
        .await
        .unwrap();
    let page = store.read_all(base + 4, 3).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
    assert!(store.read_all(base + 11, 10).await.unwrap().is_empty());
}

/// A subscriber started mid-history sees history then live events, each
/// position exactly once, while a writer keeps appending.
pub async fn subscription_hands_over_from_catch_up_to_live(store: Store) {
    let base = store.head().await.unwrap();
    let s = stream("sub");
    store
        .append(&s, ExpectedVersion::NoStream, (0..100).map(event).collect())
        .await
        .unwrap();
    let mut sub = store.subscribe_all(base + 50).await.unwrap();
    let writer = {
        let (store, s) = (store.clone(), s.clone());
        tokio::spawn(async move {
            for v in 100..400u64 {
                store
                    .append(&s, ExpectedVersion::Exact(v), vec![event(v)])
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 351 {
        let batch = tokio::time::timeout(std::time::Duration::from_secs(30), sub.next_batch())
            .await
            .expect("subscription stalled")
            .unwrap();
        seen.extend(batch.into_iter().map(|e| e.position));
    }
    writer.await.unwrap();
    let expected: Vec<u64> = (base + 50..=base + 400).collect();
    assert_eq!(seen, expected, "no gap, no duplicate across the hand-over");
}

fn claim(key: &str, outcome: &str) -> IdempotencyClaim {
    IdempotencyClaim {
        key: key.into(),
        fingerprint: "request-digest".into(),
        outcome: outcome.into(),
    }
}

/// A retried key returns the first outcome and appends nothing.
pub async fn idempotency_key_returns_the_first_outcome(store: Store) {
    let key = format!("key-{}", Uuid::now_v7());
    let s = stream("idem");
    let first = Commit {
        writes: vec![StreamWrite {
            stream: s.clone(),
            expected: ExpectedVersion::Any,
            events: vec![event(1)],
        }],
        idempotency: Some(claim(&key, "201 first")),
    };
    assert!(matches!(
        store.commit(first.clone()).await.unwrap(),
        CommitOutcome::Committed(_)
    ));
    let head = store.head().await.unwrap();
    let retry = Commit {
        idempotency: Some(claim(&key, "201 second")),
        ..first
    };
    match store.commit(retry).await.unwrap() {
        CommitOutcome::Replayed(r) => assert_eq!(r.outcome, "201 first"),
        other => panic!("expected a replay, got {other:?}"),
    }
    assert_eq!(store.head().await.unwrap(), head, "a retry appends nothing");
    assert_eq!(
        store.idempotency(&key).await.unwrap().unwrap().outcome,
        "201 first"
    );
    assert!(store.idempotency("never-used").await.unwrap().is_none());
}

/// Concurrent requests with one key: one is stored, the others replay it.
pub async fn concurrent_retries_of_one_key_append_once(store: Store) {
    let key = format!("key-{}", Uuid::now_v7());
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                let c = Commit {
                    writes: vec![StreamWrite {
                        stream: stream("idem-race"),
                        expected: ExpectedVersion::NoStream,
                        events: vec![event(i)],
                    }],
                    idempotency: Some(claim(&key, &format!("outcome {i}"))),
                };
                store.commit(c).await.unwrap()
            })
        })
        .collect();
    let mut committed = 0;
    let mut outcomes = HashSet::new();
    for t in tasks {
        match t.await.unwrap() {
            CommitOutcome::Committed(_) => committed += 1,
            CommitOutcome::Replayed(r) => {
                outcomes.insert(r.outcome);
            }
        }
    }
    assert_eq!(committed, 1);
    let stored = store.idempotency(&key).await.unwrap().unwrap().outcome;
    assert!(
        outcomes.iter().all(|o| *o == stored),
        "every replay carries the stored outcome"
    );
}

/// Ids, times, actor, correlation and causation come back as written.
pub async fn metadata_round_trips(store: Store) {
    let s = stream("meta");
    let mut e = event(7);
    e.metadata.causation_id = Some(Uuid::now_v7());
    e.metadata.actor = Actor {
        role: Role::Rider,
        subject: "rider-42".into(),
    };
    let before: DateTime<Utc> = Utc::now() - chrono::Duration::seconds(1);
    store
        .append(&s, ExpectedVersion::NoStream, vec![e.clone()])
        .await
        .unwrap();
    let back = store.read_stream(&s, 1).await.unwrap().remove(0);
    assert_eq!(back.event, e);
    assert!(
        back.recorded_at >= before && back.recorded_at <= Utc::now() + chrono::Duration::seconds(1)
    );
}

/// Empty commits and empty stream names are refused, not stored.
pub async fn malformed_commits_are_refused(store: Store) {
    let head = store.head().await.unwrap();
    assert!(matches!(
        store.commit(Commit::default()).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.append("", ExpectedVersion::Any, vec![event(1)]).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.head().await.unwrap(), head);
}
