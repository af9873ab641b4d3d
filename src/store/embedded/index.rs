//! The log's in-memory index, rebuilt from the segments on open: where each
//! event's record is, each stream's positions, and every idempotency claim.
//! The writer thread is its only mutator; readers take a read lock briefly
//! to copy locations, then read the files without it.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

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
    streams: Sharded<Vec<Position>>,
    /// Every idempotency claim.
    claims: Sharded<IdempotencyRecord>,
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

/// Maps per [`Sharded`] map.
const SHARDS: usize = 256;

/// A map from strings split into [`SHARDS`] maps by the key's hash, so that
/// growing rehashes one shard, not every key.
struct Sharded<V> {
    shards: Vec<HashMap<String, V>>,
    hasher: RandomState,
}

impl<V> Default for Sharded<V> {
    fn default() -> Self {
        Sharded {
            shards: (0..SHARDS).map(|_| HashMap::new()).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl<V> Sharded<V> {
    fn shard(&self, key: &str) -> usize {
        self.hasher.hash_one(key) as usize % SHARDS
    }

    fn get(&self, key: &str) -> Option<&V> {
        self.shards[self.shard(key)].get(key)
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let shard = self.shard(key);
        self.shards[shard].get_mut(key)
    }

    fn insert(&mut self, key: String, value: V) {
        let shard = self.shard(&key);
        self.shards[shard].insert(key, value);
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

    #[test]
    fn a_sharded_map_finds_every_key_it_was_given_and_no_other() {
        let mut map = Sharded::default();
        for i in 0..10_000u32 {
            map.insert(format!("visit-{i}"), i);
        }
        *map.get_mut("visit-42").unwrap() += 1;
        assert_eq!(map.get("visit-42"), Some(&43));
        assert!((0..10_000u32)
            .filter(|i| *i != 42)
            .all(|i| map.get(&format!("visit-{i}")) == Some(&i)));
        assert_eq!(map.get("visit-10000"), None);
        assert!(map.get_mut("slot-1").is_none());
        // The keys spread over the shards rather than landing in a few.
        assert!(map.shards.iter().all(|s| !s.is_empty()));
    }
}
