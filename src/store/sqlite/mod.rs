//! The SQLite event store: SQLite (bundled) in WAL mode in one file on local
//! disk. Acknowledged means fsync'd; concurrent appends share one sync (group
//! commit: one transaction per group); idempotency records live in the same
//! transaction as the events; the live edge of the log is served from memory.
//!
//! This is the reference the purpose-built log ([`crate::store::embedded`])
//! is measured against; it passes the same conformance, crash and damage tests.
//!
//! **Architecture Invariant:** exactly one thread writes the file, so stream
//! versions and global positions are assigned without races, and positions
//! are gap-free because a group is one transaction.

mod schema;
mod writer;

use async_trait::async_trait;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use self::writer::Writer;
use super::group::Request;
use super::live::{Live, LiveSubscription};
use super::{
    Commit, CommitOutcome, EventStore, IdempotencyRecord, Position, RecordedEvent, StoreError,
    Subscription,
};

/// The file name of the store inside its data directory.
pub const STORE_FILE: &str = "events.db";

/// A handle to the SQLite store; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The store file.
    path: PathBuf,
    /// Requests to the single writer thread.
    writer: mpsc::Sender<Request>,
    /// Recent events and the head position.
    live: Arc<Live>,
    /// Idle reader connections, reused across reads.
    readers: Mutex<Vec<Connection>>,
}

impl SqliteStore {
    /// Opens (or creates) the store in `data_dir`, refusing a damaged file.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Backend(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(STORE_FILE);
        let conn = schema::open_writer(&path)?;
        let head = schema::head_position(&conn)?;
        let live = Arc::new(Live::new(head));
        let writer = Writer::new(conn, live.clone())?;
        let (tx, rx) = mpsc::channel();
        let running = Arc::new(AtomicBool::new(true));
        let (checkpoint_path, checkpointing) = (path.clone(), running.clone());
        std::thread::Builder::new()
            .name("o2ohub-store-checkpoint".into())
            .spawn(move || schema::checkpoint_loop(&checkpoint_path, &checkpointing))
            .map_err(|e| StoreError::Backend(format!("cannot start the checkpoint thread: {e}")))?;
        std::thread::Builder::new()
            .name("o2ohub-store-writer".into())
            .spawn(move || {
                writer.run(rx);
                running.store(false, Ordering::Relaxed);
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: tx,
                live,
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Finishes queued writes, folds the WAL into the main file and stops the
    /// writer; later writes fail with [`StoreError::Closed`].
    pub async fn shutdown(&self) {
        super::group::stop(&self.inner.writer).await;
    }

    /// Runs `f` on a pooled reader connection on the blocking pool.
    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            let conn = match pooled {
                Some(c) => c,
                None => schema::open_reader(&inner.path)?,
            };
            let result = f(&conn);
            inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("reader task failed: {e}")))?
    }
}

/// Collects rows of an event query, stopping at a damaged record.
fn collect_events(
    path: &Path,
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut out = Vec::new();
    let mut rows = stmt.query(params)?;
    while let Some(row) = rows.next()? {
        match schema::row_to_event(row)? {
            Ok(e) => out.push(e),
            Err(detail) => {
                let last_good_position =
                    out.last().map(|e: &RecordedEvent| e.position).unwrap_or(0);
                return Err(StoreError::Corrupt {
                    file: path.to_path_buf(),
                    last_good_position,
                    detail,
                });
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn commit(&self, commit: Commit) -> Result<CommitOutcome, StoreError> {
        super::group::submit(&self.inner.writer, commit).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let stream = stream.to_owned();
        let path = self.inner.path.clone();
        self.with_reader(move |conn| {
            let sql = format!(
                "SELECT {} FROM events WHERE stream = ?1 AND version >= ?2 ORDER BY version",
                schema::EVENT_COLUMNS
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            collect_events(
                &path,
                &mut stmt,
                rusqlite::params![stream, from_version as i64],
            )
        })
        .await
    }

    async fn read_all(
        &self,
        from: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let from = from.max(1);
        if let Some(events) = self.inner.live.read(from, limit) {
            return Ok(events);
        }
        let path = self.inner.path.clone();
        self.with_reader(move |conn| {
            let sql = format!(
                "SELECT {} FROM events WHERE position >= ?1 ORDER BY position LIMIT ?2",
                schema::EVENT_COLUMNS
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            collect_events(
                &path,
                &mut stmt,
                rusqlite::params![from as i64, limit as i64],
            )
        })
        .await
    }

    async fn head(&self) -> Result<Position, StoreError> {
        self.inner.live.head().ok_or(StoreError::Closed)
    }

    async fn subscribe_all(&self, from: Position) -> Result<Box<dyn Subscription>, StoreError> {
        Ok(Box::new(LiveSubscription {
            store: self.clone(),
            live: self.inner.live.clone(),
            next: from.max(1),
            head: self.inner.live.watch(),
        }))
    }

    async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let key = key.to_owned();
        self.with_reader(move |conn| Ok(schema::idempotency(conn, &key)?))
            .await
    }
}
