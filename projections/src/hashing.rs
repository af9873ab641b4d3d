//! The read models' hashing: ahash with fixed seeds — fast for stream ids
//! and integer keys, and no seed drawn from the operating system (read
//! models are pure, and fold to the same state in every process).

use ahash::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

/// The fixed-seed hasher itself.
pub(crate) fn hasher() -> RandomState {
    RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
}

/// [`hasher`] as a map's `BuildHasher`, so a map made by `Default` (or read
/// back from a snapshot) hashes the same way as one made in code.
#[derive(Clone)]
pub struct Seeded(RandomState);

impl Default for Seeded {
    fn default() -> Self {
        Seeded(hasher())
    }
}

impl BuildHasher for Seeded {
    type Hasher = ahash::AHasher;

    fn build_hasher(&self) -> ahash::AHasher {
        self.0.build_hasher()
    }
}

/// A `HashMap` hashing with [`Seeded`].
pub type Map<K, V> = HashMap<K, V, Seeded>;
