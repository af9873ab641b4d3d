//! The log's writer thread: each group of commits (see
//! [`crate::store::group`]) is encoded into records, written at the end of the
//! active segment with one positioned write, made durable (see
//! [`super::durable`]) before anyone is answered.

use chrono::Utc;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, RwLock};

use super::durable::DurableWriter;
use super::format;
use super::index::{Index, Location};
use super::segment::{Preparer, Segment, SEGMENT_HEADER};
use crate::store::group::{self, Accepted, Commit, Reply, Request};
use crate::store::live::Live;
use crate::store::{Position, StoreError};

/// The writer's state.
pub(super) struct Writer {
    /// Shared with readers.
    pub index: Arc<RwLock<Index>>,
    /// Segments, shared with readers; the last one is active.
    pub segments: Arc<RwLock<Vec<Arc<Segment>>>>,
    /// Where the next record goes in the active segment.
    pub offset: u64,
    /// The active segment's size: the one it was created with, which may
    /// differ from `segment_bytes` when the option changed since.
    pub active_bytes: u64,
    /// The size of the segments made from now on.
    pub segment_bytes: u64,
    /// Makes new segments.
    pub preparer: Preparer,
    /// Makes each group's bytes durable.
    pub durable: DurableWriter,
    /// Recent events and the head position, published after each group.
    pub live: Arc<Live>,
    /// Why the log stopped taking writes: a durable write failed. After
    /// that, what reached the disk is unknown (a failed sync may already
    /// have dropped the pages it could not write, and a retry would report
    /// success), and later groups would sit after a hole that recovery
    /// reads as the end of the log. So every later commit is refused; a
    /// restart recovers up to the last acknowledged commit.
    pub stopped: Option<String>,
}

/// Bytes for one segment and where they go.
struct Placed {
    segment: usize,
    offset: u64,
    bytes: Vec<u8>,
}

impl Writer {
    /// Runs until shutdown or until every sender is gone.
    pub(super) fn run(mut self, requests: Receiver<Request>) {
        while let Some((group, shutdown)) = group::next_group(&requests) {
            if !group.is_empty() {
                self.commit_group(group);
            }
            if let Some(done) = shutdown {
                // The spare's thread is stopped before the store says it is
                // closed, so a store opened next never meets it.
                drop(self.preparer);
                self.live.close();
                let _ = done.send(());
                return;
            }
        }
        self.live.close();
    }

    fn next_position(&self) -> Position {
        self.index.read().unwrap_or_else(|p| p.into_inner()).head() + 1
    }

    fn commit_group(&mut self, mut group: Vec<(Commit, Reply)>) {
        if let Some(reason) = &self.stopped {
            return group::fail(group, &StoreError::Backend(reason.clone()));
        }
        let next = self.next_position();
        let plan = {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            group::plan(&mut group, next, Utc::now(), &mut &*index)
        };
        let plan = match plan {
            Ok(p) => p,
            Err(e) => return group::fail(group, &e),
        };
        metrics::histogram!("o2ohub_store_group_commits").record(plan.accepted.len() as f64);
        match self.write(&plan.accepted, next) {
            Ok(locations) => {
                {
                    let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
                    for (accepted, location) in plan.accepted.iter().zip(&locations) {
                        index.add(&accepted.records, accepted.claim.as_ref(), *location);
                    }
                }
                group::publish_and_answer(&self.live, plan.accepted, group, plan.decisions);
            }
            Err(e) => {
                let reason = format!(
                    "the log stopped taking writes after a failed write ({e}); \
                     restart o2ohub once the disk is healthy: recovery keeps every acknowledged commit"
                );
                tracing::error!(error = %e, "a durable write of the log failed; refusing every later commit until restart");
                self.stopped = Some(reason);
                group::fail(group, &e);
            }
        }
    }

    /// Encodes, places, writes and syncs the accepted commits. Returns where
    /// each commit's record went.
    fn write(
        &mut self,
        accepted: &[Accepted],
        first: Position,
    ) -> Result<Vec<Location>, StoreError> {
        let mut placed: Vec<Placed> = Vec::new();
        let mut locations = Vec::with_capacity(accepted.len());
        let mut position = first;
        let mut segment = self
            .segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
            - 1;
        let lens: Vec<u64> = accepted
            .iter()
            .map(|a| format::encoded_len(a.claim.as_ref(), &a.records) as u64)
            .collect();
        let total: u64 = lens.iter().sum();
        for (a, &len) in accepted.iter().zip(&lens) {
            if self.offset + len > self.active_bytes {
                // Start the next segment at this record's first position.
                let next = self.preparer.next_segment(position)?;
                self.segments
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Arc::new(next));
                segment += 1;
                self.offset = SEGMENT_HEADER;
                self.active_bytes = self.segment_bytes;
            }
            if placed.last().is_none_or(|p| p.segment != segment) {
                let room = self.active_bytes - self.offset;
                placed.push(Placed {
                    segment,
                    offset: self.offset,
                    bytes: Vec::with_capacity(total.min(room) as usize),
                });
            }
            let buf = &mut placed.last_mut().expect("just pushed").bytes;
            let before = buf.len();
            format::encode(buf, position, a.claim.as_ref(), &a.records);
            // Offsets follow the bytes actually encoded, never the estimate.
            let len = (buf.len() - before) as u64;
            locations.push(Location {
                segment: segment as u32,
                offset: self.offset as u32,
                len: len as u32,
            });
            self.offset += len;
            position += a.records.len() as u64;
        }
        let segments = self
            .segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for p in &placed {
            let syncing = std::time::Instant::now();
            self.durable
                .write(p.segment, &segments[p.segment], p.offset, &p.bytes)?;
            // The disk's share of every commit: what to look at first when
            // commits slow down with nothing else changed.
            metrics::histogram!("o2ohub_store_sync_seconds")
                .record(syncing.elapsed().as_secs_f64());
        }
        Ok(locations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::event;
    use crate::store::ExpectedVersion;
    use std::sync::atomic::AtomicBool;
    use tokio::sync::oneshot;

    fn commit() -> Commit {
        Commit::single("latch-1", ExpectedVersion::Any, vec![event(1)])
    }

    #[test]
    fn a_failed_write_refuses_every_later_commit() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = 64 << 10;
        let path = super::super::segment::segment_path(dir.path(), 1);
        super::super::segment::create_zeroed(&path, bytes, &AtomicBool::new(false)).unwrap();
        // Opened read-only, so every write through the page cache fails.
        let file = std::fs::File::open(&path).unwrap();
        let mut writer = Writer {
            index: Arc::new(RwLock::new(Index::default())),
            segments: Arc::new(RwLock::new(vec![Arc::new(Segment {
                path,
                file: Arc::new(file),
            })])),
            offset: SEGMENT_HEADER,
            active_bytes: bytes,
            segment_bytes: bytes,
            preparer: Preparer::start(dir.path(), bytes).unwrap(),
            durable: DurableWriter::new(false),
            live: Arc::new(Live::new(0)),
            stopped: None,
        };
        let mut outcome = || {
            let (reply, answer) = oneshot::channel();
            writer.commit_group(vec![(commit(), reply)]);
            answer.blocking_recv().unwrap().unwrap_err().to_string()
        };
        let first = outcome();
        assert!(first.contains("cannot write"), "{first}");
        let second = outcome();
        assert!(second.contains("stopped taking writes"), "{second}");
    }
}
