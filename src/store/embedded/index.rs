//! The log's in-memory index, rebuilt from the segments on open: where each
//! event's record is, each stream's positions, and every idempotency claim.
//! The writer thread is its only mutator; readers take a read lock briefly
//! to copy locations, then read the files without it.

use o2ohub_projections::sharded::ShardedMap;

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

/// The index of the log. It grows with every commit while the writer holds
/// its lock, so nothing in it grows by copying all it holds at once: one
/// map of 115k streams took 32–93 ms to rehash, and every commit and read
/// waited meanwhile (measured under `bench api`); locations grow a chunk at
/// a time and the maps a shard at a time.
#[derive(Default)]
pub(super) struct Index {
    /// Where the record of position `p` is, at `p - 1`.
    locations: Locations,
    /// Each stream's event positions; version `v` is at `[v - 1]`.
    streams: ShardedMap<String, Vec<Position>>,
    /// Every idempotency claim.
    claims: ShardedMap<String, IdempotencyRecord>,
}

/// Locations per chunk: 768 KB.
const LOCATION_CHUNK: usize = 1 << 16;

/// The locations of every position, in fixed chunks.
#[derive(Default)]
struct Locations {
    chunks: Vec<Vec<Location>>,
    len: usize,
}

impl Locations {
    fn push(&mut self, location: Location) {
        if self
            .chunks
            .last()
            .is_none_or(|chunk| chunk.len() == LOCATION_CHUNK)
        {
            self.chunks.push(Vec::with_capacity(LOCATION_CHUNK));
        }
        self.chunks
            .last_mut()
            .expect("a chunk with room was just ensured")
            .push(location);
        self.len += 1;
    }

    fn get(&self, i: usize) -> Option<Location> {
        self.chunks
            .get(i / LOCATION_CHUNK)?
            .get(i % LOCATION_CHUNK)
            .copied()
    }
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
        self.locations.len as Position
    }

    /// Where position `p` is.
    pub(super) fn location(&self, p: Position) -> Option<Location> {
        p.checked_sub(1)
            .and_then(|i| self.locations.get(usize::try_from(i).ok()?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_read_back_across_chunks() {
        let mut locations = Locations::default();
        let n = LOCATION_CHUNK * 2 + 5;
        for i in 0..n {
            locations.push(Location {
                segment: (i / 1000) as u32,
                offset: i as u32,
                len: 7,
            });
        }
        assert_eq!(locations.len, n);
        assert_eq!(locations.chunks.len(), 3);
        for i in [
            0,
            1,
            LOCATION_CHUNK - 1,
            LOCATION_CHUNK,
            2 * LOCATION_CHUNK,
            n - 1,
        ] {
            assert_eq!(
                locations.get(i).map(|l| l.offset),
                Some(i as u32),
                "position {}",
                i + 1
            );
        }
        assert_eq!(locations.get(n), None);
    }
}
