//! Snapshots of the merchant search: only what was folded (profiles, pauses,
//! seats held) is written; the cell index is rebuilt when read, so the
//! snapshot format does not depend on the index layout.

use h3o::Resolution;
use o2ohub_events::{MerchantId, MerchantProfile};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::MerchantSearch;

/// One merchant as written.
#[derive(Serialize)]
struct MerchantOut<'a> {
    merchant_id: MerchantId,
    profile: Option<&'a MerchantProfile>,
    paused: bool,
    /// (service id, slot start in epoch seconds, seats held).
    seats: Vec<(&'a str, i64, u32)>,
}

/// The snapshot as written.
#[derive(Serialize)]
struct SnapshotOut<'a> {
    resolution: u8,
    merchants: Vec<MerchantOut<'a>>,
}

/// One merchant as read.
#[derive(Deserialize)]
struct MerchantIn {
    merchant_id: MerchantId,
    profile: Option<MerchantProfile>,
    paused: bool,
    seats: Vec<(String, i64, u32)>,
}

/// The snapshot as read.
#[derive(Deserialize)]
struct SnapshotIn {
    resolution: u8,
    merchants: Vec<MerchantIn>,
}

impl Serialize for MerchantSearch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SnapshotOut {
            resolution: u8::from(self.resolution()),
            merchants: self
                .merchants
                .iter()
                .map(|m| MerchantOut {
                    merchant_id: m.id,
                    profile: m.listed.as_ref().map(|l| &l.profile),
                    paused: m.paused,
                    seats: m.ledger.entries().collect(),
                })
                .collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for MerchantSearch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let snapshot = SnapshotIn::deserialize(d)?;
        let resolution =
            Resolution::try_from(snapshot.resolution).map_err(serde::de::Error::custom)?;
        let mut search = MerchantSearch::with_resolution(resolution);
        for m in snapshot.merchants {
            let pos = search.position(m.merchant_id) as usize;
            let ledger = &mut search.merchants[pos].ledger;
            for (service, start, seats) in m.seats {
                let key = ledger.key(&service);
                for _ in 0..seats {
                    ledger.take(key, start);
                }
            }
            search.set_paused(pos as u32, m.paused);
            if let Some(profile) = m.profile {
                search.upsert(m.merchant_id, &profile);
            }
        }
        Ok(search)
    }
}
