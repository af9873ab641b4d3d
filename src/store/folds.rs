//! A memo of folded streams, kept by a store for the command layer: per
//! stream, the version folded up to and the state that fold gave (type-erased:
//! the store knows no aggregates). A command's load takes the memo, reads only
//! the events after it and puts the new state back, so a booking stops
//! re-reading a merchant's registration — long gone from the live edge, so a
//! disk read and a JSON decode — and a slot's earlier seats on every command.
//!
//! The log stays the authority: a load always reads the stream's tail after
//! the memo, so the state it returns is as current as a full fold's, and the
//! commit's expected-version check catches whatever is appended between the
//! load and the commit. A memo is never newer than the log (it is put after
//! reading, or after a commit has landed, with the state its events fold
//! to), and streams never shrink, so it is never wrong, only sometimes short
//! of the tail. Least recently used streams are forgotten
//! beyond a fixed number per shard.

use hashlink::LruCache;
use std::any::Any;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

/// Streams remembered in all: a city's merchants and the slots and visits
/// of the last hours. A merchant's state is a few kilobytes at most.
pub const FOLDS_CAPACITY: usize = 65_536;

/// Shards, so that concurrent commands rarely wait on one lock.
const SHARDS: usize = 16;

/// One stream's fold: the state after the events up to `version`.
#[derive(Clone)]
pub struct Folded {
    /// The stream version the state includes.
    pub version: u64,
    /// The folded state (an aggregate, as the command layer stored it).
    pub state: Arc<dyn Any + Send + Sync>,
}

/// The memo (see the module doc).
pub struct Folds {
    shards: Vec<Mutex<LruCache<String, Folded>>>,
    hasher: RandomState,
}

impl Default for Folds {
    fn default() -> Self {
        Self::with_capacity(FOLDS_CAPACITY)
    }
}

impl Folds {
    /// A memo remembering about `capacity` streams.
    pub fn with_capacity(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Folds {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per_shard)))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, stream: &str) -> &Mutex<LruCache<String, Folded>> {
        &self.shards[self.hasher.hash_one(stream) as usize % SHARDS]
    }

    /// The fold remembered for `stream`, if any.
    pub fn get(&self, stream: &str) -> Option<Folded> {
        let mut shard = self.shard(stream).lock().unwrap_or_else(|p| p.into_inner());
        shard.get(stream).cloned()
    }

    /// Remembers `folded` for `stream`, unless a fold of a later version is
    /// remembered already (two loads of one stream may finish out of order).
    pub fn put(&self, stream: &str, folded: Folded) {
        let mut shard = self.shard(stream).lock().unwrap_or_else(|p| p.into_inner());
        if shard
            .get(stream)
            .is_some_and(|known| known.version > folded.version)
        {
            return;
        }
        shard.insert(stream.to_owned(), folded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(version: u64, state: &'static str) -> Folded {
        Folded {
            version,
            state: Arc::new(state),
        }
    }

    fn state(f: &Folded) -> &'static str {
        f.state.downcast_ref::<&'static str>().copied().unwrap()
    }

    #[test]
    fn a_later_fold_replaces_an_earlier_one_never_the_reverse() {
        let folds = Folds::default();
        assert!(folds.get("s").is_none());
        folds.put("s", folded(2, "two"));
        folds.put("s", folded(1, "one"));
        assert_eq!(state(&folds.get("s").unwrap()), "two");
        folds.put("s", folded(3, "three"));
        let got = folds.get("s").unwrap();
        assert_eq!((got.version, state(&got)), (3, "three"));
    }

    #[test]
    fn the_least_recently_used_streams_are_forgotten_beyond_capacity() {
        let folds = Folds::with_capacity(SHARDS * 2);
        for i in 0..SHARDS * 20 {
            folds.put(&format!("s{i}"), folded(1, "x"));
        }
        let kept = (0..SHARDS * 20)
            .filter(|i| folds.get(&format!("s{i}")).is_some())
            .count();
        assert!(kept <= SHARDS * 2, "{kept} remembered");
        // The latest put of every shard is still there.
        assert!(folds.get(&format!("s{}", SHARDS * 20 - 1)).is_some());
    }
}
