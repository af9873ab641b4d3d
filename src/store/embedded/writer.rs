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
    /// Segment size.
    pub segment_bytes: u64,
    /// Makes new segments.
    pub preparer: Preparer,
    /// Makes each group's bytes durable.
    pub durable: DurableWriter,
    /// Recent events and the head position, published after each group.
    pub live: Arc<Live>,
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
            Err(e) => group::fail(group, &e),
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
            if self.offset + len > self.segment_bytes {
                // Start the next segment at this record's first position.
                let next = self.preparer.next_segment(position)?;
                self.segments
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Arc::new(next));
                segment += 1;
                self.offset = SEGMENT_HEADER;
            }
            if placed.last().is_none_or(|p| p.segment != segment) {
                let room = self.segment_bytes - self.offset;
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
