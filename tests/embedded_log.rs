//! The embedded log on disk: everything written reads back the same after a
//! reopen (across many segments, from disk rather than memory); a torn final
//! record is discarded and only it; any other damage refuses the store with
//! the file and the last good position; one process per data directory.

use o2ohub::store::embedded::{EmbeddedStore, LogOptions, LOG_DIR};
use o2ohub::store::{
    Commit, EventMetadata, EventStore, ExpectedVersion, IdempotencyClaim, NewEvent, StoreError,
    StreamWrite,
};
use std::path::{Path, PathBuf};

const SMALL: LogOptions = LogOptions {
    segment_bytes: 64 << 10,
    direct_writes: true,
};

fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event_type: "LogTested".into(),
        schema_version: 1,
        payload: format!(
            r#"{{"n":{n},"marker":"MARKER-{n:06}","pad":"{}"}}"#,
            "z".repeat((n * 7 % 300) as usize)
        ),
        metadata: EventMetadata {
            occurred_at: chrono::DateTime::from_timestamp_micros(1_764_000_000_000_000 + n as i64)
                .unwrap(),
            correlation_id: uuid::Uuid::now_v7(),
            causation_id: n.is_multiple_of(2).then(uuid::Uuid::now_v7),
            actor: o2ohub_events::Actor::system("log-test"),
        },
    }
}

/// `commits` single-event commits, rotating over 7 streams.
async fn fill(dir: &Path, commits: u64) -> EmbeddedStore {
    let store = EmbeddedStore::open_with(dir, SMALL).unwrap();
    append_commits(&store, 0..commits).await;
    store
}

/// Commits `n` of `range` as [`fill`] numbers them.
async fn append_commits(store: &EmbeddedStore, range: std::ops::Range<u64>) {
    for n in range {
        store
            .append(
                &format!("s{}", n % 7),
                ExpectedVersion::Exact(n / 7),
                vec![event(n)],
            )
            .await
            .unwrap();
    }
}

/// A closed log of 50 commits: its last segment, that segment's bytes, and
/// where its data ends.
async fn closed_log_of_50(dir: &Path) -> (PathBuf, Vec<u8>, usize) {
    let store = fill(dir, 50).await;
    store.shutdown().await;
    drop(store);
    let last = segments(dir).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    (last, bytes, end)
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut s: Vec<_> = std::fs::read_dir(dir.join(LOG_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    s.sort();
    s
}

/// Asserts `outcome` is the corruption error of [`flip_a_byte_of_record_43`]:
/// naming `file` and position 42 as the last good one. `Ok` carries what went
/// wrong instead. Returns the error for further checks.
fn corrupt_after_record_42<T: std::fmt::Display>(
    outcome: Result<T, StoreError>,
    file: &Path,
) -> StoreError {
    match outcome {
        Err(StoreError::Corrupt {
            file: named,
            last_good_position,
            detail,
        }) => {
            assert_eq!(named, file);
            assert_eq!(last_good_position, 42, "{detail}");
            StoreError::Corrupt {
                file: named,
                last_good_position,
                detail,
            }
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(wrong) => panic!("{wrong}"),
    }
}

/// Changes one byte inside the payload of the record at position 43 (its
/// checksum no longer matches); returns the segment file it is in.
fn flip_a_byte_of_record_43(dir: &Path) -> PathBuf {
    let (file, at) = segments(dir)
        .into_iter()
        .find_map(|s| {
            let bytes = std::fs::read(&s).unwrap();
            bytes
                .windows(13)
                .position(|w| w == b"MARKER-000042")
                .map(|at| (s, at))
        })
        .expect("record 43 on disk");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[at + 7] = b'9';
    std::fs::write(&file, &bytes).unwrap();
    file
}

#[tokio::test]
async fn everything_reads_back_the_same_after_a_reopen_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = fill(dir.path(), 700).await;
    let claim = IdempotencyClaim {
        key: "k-1".into(),
        fingerprint: "f".into(),
        outcome: "first".into(),
    };
    let multi = Commit {
        writes: vec![
            StreamWrite {
                stream: "a".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![event(1000), event(1001)],
            },
            StreamWrite {
                stream: "b".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![event(1002)],
            },
        ],
        idempotency: Some(claim),
    };
    store.commit(multi).await.unwrap();
    let before = store.read_all(1, 10_000).await.unwrap();
    let stream_before = store.read_stream("s3", 1).await.unwrap();
    store.shutdown().await;
    drop(store);
    assert!(segments(dir.path()).len() > 3, "the test crosses segments");

    let store = EmbeddedStore::open_with(dir.path(), SMALL).unwrap();
    assert_eq!(store.head().await.unwrap(), 703);
    assert_eq!(
        store.read_all(1, 10_000).await.unwrap(),
        before,
        "read back from disk, identical"
    );
    assert_eq!(store.read_stream("s3", 1).await.unwrap(), stream_before);
    assert_eq!(
        store.read_stream("s3", 50).await.unwrap(),
        stream_before[49..].to_vec()
    );
    assert_eq!(
        store.idempotency("k-1").await.unwrap().unwrap().outcome,
        "first"
    );
    // Appends continue where the log ended.
    let a = store
        .append("s0", ExpectedVersion::Exact(100), vec![event(9)])
        .await
        .unwrap();
    assert_eq!((a.version, a.last_position), (101, 704));
}

#[tokio::test]
async fn a_torn_final_record_is_discarded_and_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let (last, mut bytes, end) = closed_log_of_50(dir.path()).await;
    // A crash cut the last write short: its last 40 bytes never reached the file.
    bytes[end - 40..end].fill(0);
    std::fs::write(&last, &bytes).unwrap();

    let store = EmbeddedStore::open_with(dir.path(), SMALL).unwrap();
    assert_eq!(
        store.head().await.unwrap(),
        49,
        "exactly the torn record is gone"
    );
    store
        .append("s0", ExpectedVersion::Exact(7), vec![event(49)])
        .await
        .unwrap();
    store.shutdown().await;
    drop(store);
    let store = EmbeddedStore::open_with(dir.path(), SMALL).unwrap();
    assert_eq!(
        store.head().await.unwrap(),
        50,
        "the log continues cleanly after the discarded record"
    );
}

#[tokio::test]
async fn bytes_after_the_end_of_the_log_are_zeroed_so_later_groups_never_meet_them() {
    let dir = tempfile::tempdir().unwrap();
    let (last, mut bytes, end) = closed_log_of_50(dir.path()).await;
    // A failed write: the group's first block never landed, a later one did.
    let stray = end + 5000;
    bytes[stray..stray + 300].fill(0xa5);
    std::fs::write(&last, &bytes).unwrap();

    let store = EmbeddedStore::open_with(dir.path(), SMALL).unwrap();
    assert_eq!(
        store.head().await.unwrap(),
        50,
        "every acknowledged commit is kept"
    );
    let after = std::fs::read(&last).unwrap();
    assert!(
        after[end..].iter().all(|b| *b == 0),
        "the stray bytes are zeroed on open"
    );
    // Groups written over where the stray bytes were read back whole.
    append_commits(&store, 50..90).await;
    store.shutdown().await;
    drop(store);
    let store = EmbeddedStore::open_with(dir.path(), SMALL).unwrap();
    assert_eq!(store.head().await.unwrap(), 90);
}

#[tokio::test]
async fn a_larger_segment_size_applies_to_new_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, end) = closed_log_of_50(dir.path()).await;
    assert!(end < 64 << 10, "the small active segment has room left");
    let larger = LogOptions {
        segment_bytes: 256 << 10,
        ..SMALL
    };
    let store = EmbeddedStore::open_with(dir.path(), larger.clone()).unwrap();
    // Well past the active segment's 64 KiB.
    append_commits(&store, 50..400).await;
    store.shutdown().await;
    drop(store);
    let store = EmbeddedStore::open_with(dir.path(), larger).unwrap();
    assert_eq!(store.head().await.unwrap(), 400);
    let sizes: Vec<u64> = segments(dir.path())
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    assert_eq!(sizes[0], 64 << 10, "the old segment keeps its size");
    assert!(sizes[1..].iter().all(|s| *s == 256 << 10), "{sizes:?}");
}

#[tokio::test]
async fn a_flipped_byte_in_the_middle_refuses_the_store_with_the_last_good_position() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 100).await.shutdown().await;
    let file = flip_a_byte_of_record_43(dir.path());
    let refused = EmbeddedStore::open_with(dir.path(), SMALL).map(|_| "a damaged log opened");
    let message = corrupt_after_record_42(refused, &file).to_string();
    assert!(
        message.contains("backup"),
        "says what to do next: {message}"
    );
}

#[tokio::test]
async fn damage_in_an_early_segment_is_named_even_when_later_segments_hold_data() {
    // Recovery indexes records as it scans; the records after the damage,
    // in later segments, must not turn the report into a gap elsewhere.
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 1000).await.shutdown().await;
    assert!(segments(dir.path()).len() >= 3, "the log spans segments");
    let file = flip_a_byte_of_record_43(dir.path());
    assert_eq!(file, segments(dir.path())[0]);
    let refused = EmbeddedStore::open_with(dir.path(), SMALL).map(|_| "a damaged log opened");
    corrupt_after_record_42(refused, &file);
}

#[tokio::test]
async fn damage_after_open_fails_the_read_naming_the_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 100).await.shutdown().await;
    // Opened intact; a reopened store's reads come from disk, not memory.
    let store = EmbeddedStore::open_with(dir.path(), SMALL).unwrap();
    let file = flip_a_byte_of_record_43(dir.path());
    let read = store
        .read_all(1, 100)
        .await
        .map(|events| format!("read {} events through a damaged record", events.len()));
    match corrupt_after_record_42(read, &file) {
        StoreError::Corrupt { detail, .. } => {
            assert!(detail.contains("position 43"), "{detail}")
        }
        _ => unreachable!("checked by corrupt_after_record_42"),
    }
    // Records before the damage still read.
    assert_eq!(store.read_all(1, 42).await.unwrap().len(), 42);
}

#[tokio::test]
async fn a_truncated_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 600).await.shutdown().await;
    let segs = segments(dir.path());
    let middle = &segs[segs.len() / 2];
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(middle)
        .unwrap();
    file.set_len(20_000).unwrap();
    drop(file);
    match EmbeddedStore::open_with(dir.path(), SMALL) {
        Err(StoreError::Corrupt {
            file,
            last_good_position,
            detail,
        }) => {
            assert_eq!(&file, middle);
            assert!(
                last_good_position > 0 && last_good_position < 600,
                "{last_good_position}"
            );
            assert!(detail.contains("truncated"), "{detail}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a truncated log opened"),
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_segment_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(LOG_DIR)).unwrap();
    let bogus = dir.path().join(LOG_DIR).join("00000000000000000001.seg");
    std::fs::write(&bogus, vec![7u8; 100_000]).unwrap();
    match EmbeddedStore::open_with(dir.path(), SMALL) {
        Err(StoreError::Corrupt {
            file,
            last_good_position: 0,
            ..
        }) => assert_eq!(file, bogus),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("garbage opened as a log"),
    }
}

#[tokio::test]
async fn one_process_per_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EmbeddedStore::open_with(dir.path(), SMALL).unwrap();
    let err = EmbeddedStore::open_with(dir.path(), SMALL)
        .err()
        .expect("second open refused");
    assert!(err.to_string().contains("in use"), "{err}");
}

#[tokio::test]
async fn oversized_commits_are_refused_before_they_are_queued() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open_with(dir.path(), SMALL).unwrap();
    let mut big = event(1);
    big.payload = format!(r#"{{"blob":"{}"}}"#, "x".repeat(70_000));
    let err = store
        .append("big", ExpectedVersion::Any, vec![big])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(store.head().await.unwrap(), 0);
}

#[tokio::test]
async fn a_torn_record_before_an_empty_new_segment_is_a_torn_tail() {
    // A group that did not fit started a new segment; the crash cut the write
    // into the old one short before anything reached the new one.
    let dir = tempfile::tempdir().unwrap();
    let store = fill(dir.path(), 120).await;
    store.shutdown().await;
    drop(store);
    let segs = segments(dir.path());
    let last = segs.last().unwrap();
    let mut bytes = std::fs::read(last).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    bytes[end - 40..end].fill(0);
    std::fs::write(last, &bytes).unwrap();
    // The empty segment the group had created.
    let empty = dir.path().join(LOG_DIR).join("00000000000000000999.seg");
    let mut fresh = bytes.clone();
    fresh[16..].fill(0);
    std::fs::write(&empty, &fresh).unwrap();

    let store = EmbeddedStore::open_with(dir.path(), SMALL).unwrap();
    assert_eq!(store.head().await.unwrap(), 119);
    assert!(
        !empty.exists(),
        "the empty segment after the torn tail is removed"
    );
    store
        .append("s0", ExpectedVersion::Exact(17), vec![event(119)])
        .await
        .unwrap();
}

#[tokio::test]
async fn subscribers_at_the_live_edge_share_each_event_and_its_decoding() {
    use o2ohub_events::{Event, MerchantEvent, MerchantId, MerchantPaused};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open_with(dir.path(), SMALL).unwrap();
    let paused: Event = MerchantEvent::Paused(MerchantPaused {
        reason: "stock-take".into(),
    })
    .into();
    let metadata = event(0).metadata;
    let stream = MerchantId(uuid::Uuid::from_u128(7)).stream();
    let (mut first, mut second) = (
        store.subscribe_all(1).await.unwrap(),
        store.subscribe_all(1).await.unwrap(),
    );
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::from_event(&paused, &metadata)],
        )
        .await
        .unwrap();
    let (a, b) = (
        first.next_batch().await.unwrap(),
        second.next_batch().await.unwrap(),
    );
    assert_eq!((a.len(), b.len()), (1, 1));
    assert!(Arc::ptr_eq(&a[0], &b[0]), "one copy for both subscribers");
    let envelope = a[0].envelope().unwrap();
    assert!(
        std::ptr::eq(envelope, b[0].envelope().unwrap()),
        "decoded once"
    );
    assert_eq!((&envelope.event, envelope.global_position), (&paused, 1));
    assert_eq!(envelope, &a[0].decode().unwrap());
    store.shutdown().await;
    drop((store, first, second));

    // Reopened, memory holds nothing: the same event comes from disk.
    let store = EmbeddedStore::open_with(dir.path(), SMALL).unwrap();
    let from_disk = store
        .subscribe_all(1)
        .await
        .unwrap()
        .next_batch()
        .await
        .unwrap();
    assert_eq!(from_disk[0].envelope().unwrap(), envelope);
}
