//! The backup and restore drill of the embedded store, as an operator runs
//! it: writers keep committing while `o2ohub backup` (the real binary, a
//! separate process, no lock) copies the log; the copy must hold exactly a
//! prefix of the source's log that includes everything acknowledged before
//! the backup began, pass `o2ohub check`, start a hub whose read models catch
//! up, keep the PII vault readable, and accept new writes.

use o2ohub::hub::{Hub, HubConfig};
use o2ohub::store::embedded::{EmbeddedStore, LogOptions};
use o2ohub::store::{EventMetadata, EventStore, ExpectedVersion, NewEvent};
use o2ohub::vault::{Opened, Vault};
use o2ohub_events::{Actor, ConsumerId, Role};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// Small segments, so the log spans many and writers cross into new ones
/// while the backup reads.
const OPTIONS: LogOptions = LogOptions {
    segment_bytes: 64 << 10,
    direct_writes: true,
};
const MASTER_KEY: &[u8] = b"backup-drill-master-key-0123456789abcdef";

fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "BackupDrilled".into(),
        schema_version: 1,
        payload: format!(r#"{{"n":{n},"pad":"{}"}}"#, "x".repeat(200)),
        metadata: EventMetadata {
            occurred_at: chrono::Utc::now(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            actor: Actor {
                role: Role::System,
                subject: "drill".into(),
            },
        },
    }
}

fn o2ohub(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_o2ohub"))
        .args(args)
        .env_remove("O2OHUB_DATA_DIR")
        .output()
        .expect("run o2ohub")
}

/// The whole global log, page by page.
async fn everything(store: &dyn EventStore) -> Vec<o2ohub::store::RecordedEvent> {
    let mut all = Vec::new();
    loop {
        let page = store.read_all(all.len() as u64 + 1, 500).await.unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_while_writing_restores_a_committed_prefix() {
    let root = tempfile::tempdir().unwrap();
    let (source_dir, copy_dir) = (root.path().join("live"), root.path().join("backup"));
    let store = Arc::new(EmbeddedStore::open_with(&source_dir, OPTIONS.clone()).unwrap());
    let vault = Vault::open(&source_dir, MASTER_KEY).unwrap();
    let consumer = ConsumerId::new();
    let sealed = vault.seal(&consumer, "+8613800000000").unwrap();

    // History before the backup: a log of several segments.
    for i in 0..20u64 {
        store
            .append(
                &format!("history-{i}"),
                ExpectedVersion::NoStream,
                (0..50).map(event).collect(),
            )
            .await
            .unwrap();
    }

    // Writers that keep committing through the whole backup.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let stream = format!("live-{w}");
                let mut version = 0;
                while !stop.load(Ordering::Relaxed) {
                    let batch = 1 + version % 3;
                    store
                        .append(
                            &stream,
                            ExpectedVersion::Exact(version),
                            (0..batch).map(event).collect(),
                        )
                        .await
                        .unwrap();
                    version += batch;
                }
            })
        })
        .collect();
    while store.head().await.unwrap() < 1_200 {
        tokio::task::yield_now().await;
    }

    let acknowledged_before = store.head().await.unwrap();
    let (source, copy) = (source_dir.clone(), copy_dir.clone());
    let out = tokio::task::spawn_blocking(move || {
        o2ohub(&["backup", "--data-dir", path(&source), "--to", path(&copy)])
    })
    .await
    .unwrap();
    let head_after_backup = store.head().await.unwrap();
    assert!(
        out.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy_dir.join("BACKUP.json")).unwrap()).unwrap();
    let copied = manifest["head_position"].as_u64().unwrap();
    assert!(
        copied >= acknowledged_before,
        "the backup ({copied}) lost events acknowledged before it began ({acknowledged_before})"
    );
    assert!(
        head_after_backup > acknowledged_before,
        "the writers kept committing during the backup"
    );

    // The source keeps going past the copy, then stops.
    while store.head().await.unwrap() < copied + 200 {
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let source_head = store.head().await.unwrap();
    assert!(source_head > copied);

    // Restore: the copy verifies with the CLI...
    let check = o2ohub(&["check", "--data-dir", path(&copy_dir)]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "check failed: {said} {}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(said.contains(&format!("intact, {copied} events")), "{said}");

    // ...and holds exactly the source's first `copied` events, byte for byte.
    let restored = EmbeddedStore::open_with(&copy_dir, OPTIONS.clone()).unwrap();
    assert_eq!(restored.head().await.unwrap(), copied);
    let want = everything(store.as_ref()).await;
    let got = everything(&restored).await;
    assert_eq!(want.len(), source_head as usize);
    assert_eq!(got.len(), copied as usize);
    assert!(
        got == want[..copied as usize],
        "the copy is a prefix of the source"
    );

    // It accepts new commits after the copied head, and they survive a reopen.
    let appended = restored
        .append("after-restore", ExpectedVersion::NoStream, vec![event(0)])
        .await
        .unwrap();
    assert_eq!(appended.last_position, copied + 1);
    restored.shutdown().await;
    drop(restored);

    // A hub starts on the copy and its read models catch up to its log; the
    // vault came along, so sealed PII still opens with the same master key.
    let hub = Hub::open(&HubConfig::new(copy_dir.clone())).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(60), hub.caught_up())
        .await
        .expect("read models caught up")
        .unwrap();
    assert_eq!(hub.store.head().await.unwrap(), copied + 1);
    assert_eq!(hub.lag().await.unwrap(), 0);
    hub.shutdown().await;
    let restored_vault = Vault::open(&copy_dir, MASTER_KEY).unwrap();
    assert!(matches!(
        restored_vault.open_sealed(&sealed).unwrap(),
        Opened::Clear(ref phone) if phone == "+8613800000000"
    ));
    assert!(
        !copy_dir.join("secrets").exists(),
        "secrets are not part of a backup"
    );
    store.shutdown().await;
}

#[test]
fn backup_refuses_an_existing_target_and_a_directory_without_a_log() {
    let root = tempfile::tempdir().unwrap();
    let out = o2ohub(&[
        "backup",
        "--data-dir",
        path(&root.path().join("nothing")),
        "--to",
        path(&root.path().join("b")),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no event log"));

    std::fs::create_dir_all(root.path().join("data/log")).unwrap();
    std::fs::create_dir_all(root.path().join("taken")).unwrap();
    let out = o2ohub(&[
        "backup",
        "--data-dir",
        path(&root.path().join("data")),
        "--to",
        path(&root.path().join("taken")),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}
