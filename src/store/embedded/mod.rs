//! The embedded event store, the default backend: a purpose-built
//! append-only log in a directory on local disk, no server.
//!
//! - [`format`]: one record per commit (events and idempotency claim
//!   together), length-prefixed and CRC-checked.
//! - [`segment`]: preallocated, zero-filled segment files; recovery on open.
//! - [`index`]: the in-memory index rebuilt on open (positions, streams,
//!   claims).
//! - [`writer`]: the single writer thread; a group of concurrent commits is
//!   one durable write ([`durable`]: `O_DIRECT | O_DSYNC` where the file
//!   system allows it, else `pwrite` + `fdatasync`).
//! - [`backup`]: online backup — a consistent, durable prefix of the log
//!   copied while the store keeps writing.
//!
//! Acknowledged means fsync'd. Recovery discards only a torn final record
//! (never acknowledged: the answer comes after the sync) and refuses any
//! other damage with the file and the last good position.
//!
//! **Architecture Invariant:** one thread writes the log, so positions are
//! assigned in commit order without gaps; a data directory is used by one
//! process at a time (an exclusive lock on `log/LOCK`).

pub mod backup;
mod durable;
mod format;
mod index;
mod segment;
mod writer;

use async_trait::async_trait;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, RwLock};

pub use self::backup::{backup, BackupReport};
pub use self::durable::time_group_writes;
use self::index::{Index, Location};
use self::segment::{Preparer, Segment};
use self::writer::Writer;
use super::group::Request;
use super::live::{Live, LiveSubscription};
use super::{
    Commit, CommitOutcome, EventStore, IdempotencyRecord, Position, RecordedEvent, StoreError,
    Subscription,
};

/// The log's directory inside a data directory.
pub const LOG_DIR: &str = "log";

/// Tunables of the log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Bytes per segment file (default 64 MiB, at least 64 KiB). A commit's
    /// record must fit in one.
    pub segment_bytes: u64,
    /// Write groups with `O_DIRECT | O_DSYNC` where the file system allows
    /// it (default), instead of `pwrite` + `fdatasync`. Both are durable on
    /// acknowledgement; direct writes are faster on the disks measured.
    pub direct_writes: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_bytes: 64 << 20,
            direct_writes: true,
        }
    }
}

/// A handle to the embedded store; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The log directory.
    dir: PathBuf,
    /// Requests to the writer thread.
    writer: mpsc::Sender<Request>,
    /// Recent events and the head position.
    live: Arc<Live>,
    /// The index, shared with the writer.
    index: Arc<RwLock<Index>>,
    /// The segments, shared with the writer.
    segments: Arc<RwLock<Vec<Arc<Segment>>>>,
    /// Largest record a commit may become.
    max_record: usize,
    /// Folded streams, for the command layer's loads.
    folds: super::folds::Folds,
    /// Holds the directory's exclusive lock while the store is open.
    _lock: File,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `data_dir`, recovering from a crash and
    /// refusing a damaged log.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, LogOptions::default())
    }

    /// Opens with explicit options.
    pub fn open_with(data_dir: &Path, options: LogOptions) -> Result<Self, StoreError> {
        if options.segment_bytes < 64 << 10 {
            return Err(StoreError::Invalid(
                "log segments are at least 64 KiB".into(),
            ));
        }
        let dir = data_dir.join(LOG_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| {
            StoreError::Backend(format!(
                "cannot create the log directory {}: {e}",
                dir.display()
            ))
        })?;
        let lock = lock(&dir)?;
        let mut index = Index::default();
        let recovered = segment::recover(&dir, &mut |segment, offset, len, record| {
            let at = Location {
                segment: segment as u32,
                offset: offset as u32,
                len,
            };
            index.add(&record.events, record.claim.as_ref(), at);
        })?;
        let head = index.head();
        let preparer = Preparer::start(&dir, options.segment_bytes)?;
        let mut segments: Vec<Arc<Segment>> =
            recovered.segments.into_iter().map(Arc::new).collect();
        let mut offset = recovered.end_offset;
        if segments.is_empty() {
            segments.push(Arc::new(preparer.next_segment(head + 1)?));
            offset = segment::SEGMENT_HEADER;
        }
        let active = segments.last().expect("made above when none were found");
        let active_bytes = active.file.metadata().map(|m| m.len()).map_err(|e| {
            StoreError::Backend(format!("cannot read {}: {e}", active.path.display()))
        })?;
        let live = Arc::new(Live::new(head));
        let index = Arc::new(RwLock::new(index));
        let segments = Arc::new(RwLock::new(segments));
        let writer = Writer {
            index: index.clone(),
            segments: segments.clone(),
            offset,
            active_bytes,
            segment_bytes: options.segment_bytes,
            preparer,
            durable: durable::DurableWriter::new(options.direct_writes),
            live: live.clone(),
            stopped: None,
        };
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("o2ohub-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        let max_record = (options
            .segment_bytes
            .saturating_sub(segment::SEGMENT_HEADER) as usize)
            .min(format::MAX_BODY + format::HEADER);
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                dir,
                writer: tx,
                live,
                index,
                segments,
                max_record,
                folds: super::folds::Folds::default(),
                _lock: lock,
            }),
        })
    }

    /// The log directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// Finishes queued writes and stops the writer; later writes fail with
    /// [`StoreError::Closed`].
    pub async fn shutdown(&self) {
        super::group::stop(&self.inner.writer).await;
    }

    /// Reads the events at `positions` (ascending), from memory when recent,
    /// else from their records on disk.
    async fn read_positions(
        &self,
        positions: Vec<Position>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut out = Vec::with_capacity(positions.len());
        let mut missing = Vec::new();
        for p in positions {
            match self.inner.live.get(p) {
                Some(e) if missing.is_empty() => out.push(e),
                _ => missing.push(p),
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let inner = self.inner.clone();
        let from_disk = tokio::task::spawn_blocking(move || inner.read_from_disk(&missing))
            .await
            .map_err(|e| StoreError::Backend(format!("reader task failed: {e}")))??;
        out.extend(from_disk);
        Ok(out)
    }
}

impl Inner {
    fn read_from_disk(&self, positions: &[Position]) -> Result<Vec<RecordedEvent>, StoreError> {
        let located: Vec<(Position, Location)> = {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            positions
                .iter()
                .filter_map(|p| index.location(*p).map(|l| (*p, l)))
                .collect()
        };
        let segments = self
            .segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = Vec::with_capacity(located.len());
        // Events of the record being read; taken (not cloned) as they are handed out.
        let mut current: Option<(Location, Position, Vec<Option<RecordedEvent>>)> = None;
        for (p, at) in located {
            if current.as_ref().is_none_or(|(l, _, _)| *l != at) {
                let record = segment::read_record(
                    &segments[at.segment as usize],
                    u64::from(at.offset),
                    at.len,
                )
                .map_err(|e| match e {
                    StoreError::Corrupt { file, detail, .. } => StoreError::Corrupt {
                        file,
                        last_good_position: p - 1,
                        detail: format!("{detail} (position {p})"),
                    },
                    other => other,
                })?;
                current = Some((
                    at,
                    record.first_position,
                    record.events.into_iter().map(Some).collect(),
                ));
            }
            // A record's events have consecutive positions.
            if let Some((_, first, events)) = &mut current {
                if let Some(e) = p
                    .checked_sub(*first)
                    .and_then(|i| events.get_mut(i as usize))
                    .and_then(Option::take)
                {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }
}

/// Takes the exclusive lock of a log directory.
fn lock(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("LOCK");
    let file = File::create(&path)
        .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", path.display())))?;
    // SAFETY: flock on a file descriptor we own; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(StoreError::Backend(format!(
            "{} is in use by another o2ohub process; stop it or choose another data directory",
            dir.display()
        )));
    }
    Ok(file)
}

#[async_trait]
impl EventStore for EmbeddedStore {
    async fn commit(&self, commit: Commit) -> Result<CommitOutcome, StoreError> {
        if format::commit_len(&commit) > self.inner.max_record {
            return Err(StoreError::Invalid(format!(
                "a commit may encode to at most {} bytes",
                self.inner.max_record
            )));
        }
        super::group::submit(&self.inner.writer, commit).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let positions = self
            .inner
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .stream_positions(stream, from_version);
        self.read_positions(positions).await
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
        let head = self
            .inner
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .head();
        let to = head.min(from.saturating_add(limit as u64).saturating_sub(1));
        self.read_positions((from..=to).collect()).await
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
        Ok(self
            .inner
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .claim(key))
    }

    fn folds(&self) -> Option<&super::folds::Folds> {
        Some(&self.inner.folds)
    }
}
