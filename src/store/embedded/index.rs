//! The log's in-memory index, rebuilt from the segments on open: where each
//! event's record is, each stream's positions, and every idempotency claim.
//! The writer thread is its only mutator; readers take a read lock briefly
//! to copy locations, then read the files without it.

use std::collections::HashMap;

use crate::store::group::DurableState;
use crate::store::{IdempotencyClaim, IdempotencyRecord, Position, RecordedEvent, StoreError};

/// Where one event's record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Location {
    /// Index of the segment in the store's segment list.
    pub segment: u32,
    /// Byte offset of the record in that segment.
    pub offset: u32,
    /// Total bytes of the record (header included).
    pub len: u32,
}

/// The index of the log.
#[derive(Default)]
pub(super) struct Index {
    /// `locations[p - 1]` is where the record of position `p` is.
    locations: Vec<Location>,
    /// Each stream's event positions; version `v` is at `[v - 1]`.
    streams: HashMap<String, Vec<Position>>,
    /// Every idempotency claim.
    claims: HashMap<String, IdempotencyRecord>,
}

impl Index {
    /// Adds a durable record's events and claim, found at `location`.
    pub(super) fn add(
        &mut self,
        events: &[RecordedEvent],
        claim: Option<&IdempotencyClaim>,
        location: Location,
    ) {
        for e in events {
            self.locations.push(location);
            match self.streams.get_mut(e.stream.as_str()) {
                Some(positions) => positions.push(e.position),
                None => {
                    self.streams.insert(e.stream.clone(), vec![e.position]);
                }
            }
        }
        if let Some(c) = claim {
            self.claims.insert(
                c.key.clone(),
                IdempotencyRecord {
                    key: c.key.clone(),
                    fingerprint: c.fingerprint.clone(),
                    outcome: c.outcome.clone(),
                },
            );
        }
    }

    /// The last position (0 when empty).
    pub(super) fn head(&self) -> Position {
        self.locations.len() as Position
    }

    /// Where position `p` is.
    pub(super) fn location(&self, p: Position) -> Option<Location> {
        p.checked_sub(1)
            .and_then(|i| self.locations.get(i as usize))
            .copied()
    }

    /// Positions of a stream's events from `from_version` on.
    pub(super) fn stream_positions(&self, stream: &str, from_version: u64) -> Vec<Position> {
        let skip = from_version.saturating_sub(1) as usize;
        self.streams
            .get(stream)
            .map(|p| p.iter().skip(skip).copied().collect())
            .unwrap_or_default()
    }

    /// The record of a claimed key.
    pub(super) fn claim(&self, key: &str) -> Option<IdempotencyRecord> {
        self.claims.get(key).cloned()
    }
}

impl DurableState for &Index {
    fn stream_version(&mut self, stream: &str) -> Result<u64, StoreError> {
        Ok(self.streams.get(stream).map_or(0, |p| p.len() as u64))
    }

    fn claimed(&mut self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.claim(key))
    }
}
