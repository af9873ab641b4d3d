//! A hash map split into a fixed number of maps by the key's hash, for the
//! maps that grow with the log (one entry per stream, per consumer).
//!
//! A single `HashMap` grows by rehashing every entry at once: at 115k
//! streams that took 32–93 ms in the store's index and 65 ms in a view's
//! fold, and whatever waited on it (every commit, or every request on that
//! runtime thread) waited that long. Split into [`SHARDS`] maps, the keys
//! spread evenly and each growth rehashes a 256th of them. Serialised as
//! one map, exactly as a `HashMap` of the same entries, so snapshots read
//! either way.
//!
//! Inside each shard keys hash with [`Seeded`](crate::hashing::Seeded)
//! (ahash) rather than the standard library's SipHash: stream ids are the
//! hub's own, and SipHash was a tenth of a booking's fold time.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::collections::hash_map;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

use crate::hashing::{hasher, Map};

/// Maps per [`ShardedMap`].
pub const SHARDS: usize = 256;

/// A map split by key hash into [`SHARDS`] maps (see the module doc).
#[derive(Clone)]
pub struct ShardedMap<K, V> {
    shards: Vec<Map<K, V>>,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap {
            shards: (0..SHARDS).map(|_| Map::default()).collect(),
        }
    }
}

/// The shard of a key: bits 48–55 of its hash. A shard's own table places
/// keys by the low bits of the same hash and tags them with the top seven,
/// so the keys of one shard, which share the shard bits, still spread over
/// its buckets. (Hashing again with other seeds does not give independent
/// bits: ahash's output under two seedings of one key is correlated, and
/// every key of a shard landed in one bucket.)
fn shard_of<Q: Hash + ?Sized>(key: &Q) -> usize {
    (hasher().hash_one(key) >> 48) as usize % SHARDS
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    /// The value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[shard_of(key)].get(key)
    }

    /// The value of `key`, to change.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[shard_of(key)].get_mut(key)
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.shards[shard_of(&key)].insert(key, value)
    }

    /// The entry of `key`, as `HashMap::entry`.
    pub fn entry(&mut self, key: K) -> hash_map::Entry<'_, K, V> {
        self.shards[shard_of(&key)].entry(key)
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[shard_of(key)].remove(key)
    }

    /// Entries in all.
    pub fn len(&self) -> usize {
        self.shards.iter().map(Map::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(Map::is_empty)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flatten()
    }
}

impl<K: Hash + Eq + fmt::Debug, V: fmt::Debug> fmt::Debug for ShardedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Hash + Eq, V: PartialEq> PartialEq for ShardedMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        // Equal keys are in equal shards.
        self.shards == other.shards
    }
}

impl<K: Hash + Eq + Serialize, V: Serialize> Serialize for ShardedMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, K, V> Deserialize<'de> for ShardedMap<K, V>
where
    K: Hash + Eq + Deserialize<'de>,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<K, V>(PhantomData<(K, V)>);
        impl<'de, K, V> Visitor<'de> for Entries<K, V>
        where
            K: Hash + Eq + Deserialize<'de>,
            V: Deserialize<'de>,
        {
            type Value = ShardedMap<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = ShardedMap::default();
                while let Some((k, v)) = access.next_entry()? {
                    map.insert(k, v);
                }
                Ok(map)
            }
        }
        deserializer.deserialize_map(Entries(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::hash::BuildHasher;

    #[test]
    fn finds_every_key_it_was_given_and_no_other() {
        let mut map = ShardedMap::default();
        for i in 0..10_000u32 {
            assert_eq!(map.insert(format!("visit-{i}"), i), None);
        }
        *map.get_mut("visit-42").unwrap() += 1;
        *map.entry("visit-7".to_owned()).or_default() += 1;
        *map.entry("slot-1".to_owned()).or_default() += 5;
        assert_eq!(map.get("visit-42"), Some(&43));
        assert_eq!(map.get("visit-7"), Some(&8));
        assert_eq!(map.get("slot-1"), Some(&5));
        assert!((0..10_000u32)
            .filter(|i| ![7, 42].contains(i))
            .all(|i| map.get(format!("visit-{i}").as_str()) == Some(&i)));
        assert_eq!(map.get("visit-10000"), None);
        assert_eq!(map.len(), 10_001);
        assert_eq!(map.remove("slot-1"), Some(5));
        assert_eq!((map.len(), map.is_empty()), (10_000, false));
        // The keys spread over the shards rather than landing in a few, and
        // within a shard over the table's buckets and tags.
        assert!(map.shards.iter().all(|s| s.len() > 10_000 / SHARDS / 2));
        let spread = |shard: &Map<String, u32>, bits: fn(u64) -> u64| {
            let seen: std::collections::HashSet<u64> = shard
                .keys()
                .map(|k| bits(shard.hasher().hash_one(k)))
                .collect();
            seen.len()
        };
        for shard in &map.shards {
            assert!(spread(shard, |h| h & 0xff) > shard.len() / 2);
            assert!(spread(shard, |h| h >> 57) > shard.len() / 4);
        }
    }

    #[test]
    fn serialises_as_the_hash_map_of_the_same_entries_and_reads_back() {
        let entries: HashMap<String, u32> = (0..500).map(|i| (format!("s{i}"), i)).collect();
        let mut sharded = ShardedMap::default();
        for (k, v) in &entries {
            sharded.insert(k.clone(), *v);
        }
        let json = serde_json::to_string(&sharded).unwrap();
        let as_plain: HashMap<String, u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(as_plain, entries);
        let back: ShardedMap<String, u32> =
            serde_json::from_str(&serde_json::to_string(&entries).unwrap()).unwrap();
        assert_eq!(back, sharded);
        assert_ne!(back, ShardedMap::default());
    }
}
