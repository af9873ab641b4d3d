//! `o2ohub rebuild [NAME]`: folds the whole log into fresh read models from
//! position 1, with a progress bar, prints events/s, and saves the snapshots
//! the hub resumes from.
//!
//! A rebuild is a pipeline of three threads: the store reads batches from
//! disk (its blocking thread), a decoder turns each into envelopes (JSON,
//! upcasting), and the folder applies them in position order, as the
//! projections require. Each stage costs the same order of CPU per event
//! (about 0.6 µs reading, 0.8 µs decoding, 0.2–0.6 µs folding on the 2 vCPU
//! host of docs/benchmarks.md), so overlapping them uses both cores.

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use o2ohub_events::{DecodeError, Envelope};
use o2ohub_projections::analytics::Analytics;
use o2ohub_projections::search::MerchantSearch;
use o2ohub_projections::supply::Supply;
use o2ohub_projections::views::consumer::ConsumerActivity;
use o2ohub_projections::views::rider::RiderBoards;
use o2ohub_projections::views::store::StoreDays;
use o2ohub_projections::{Checkpointed, Projection};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

use crate::runner;
use crate::store::{EventStore, Position, RecordedEvent, StoreError};

/// Every read model by name, as `rebuild` accepts them.
pub const NAMES: [&str; 6] = [
    "consumer_activity",
    "store_days",
    "rider_boards",
    "supply",
    "analytics",
    "merchant_search",
];

/// Events read per batch.
const BATCH: usize = 16_384;
/// Batches each channel of the pipeline holds: with the one being read,
/// decoded and folded, at most 2 × 2 + 3 batches (about 115k events) are in
/// memory at once.
const READ_AHEAD: usize = 2;

/// What one rebuild did.
#[derive(Debug, Clone, Copy)]
pub struct Rebuilt {
    /// Events folded.
    pub events: u64,
    /// Seconds spent reading and folding (saving excluded).
    pub seconds: f64,
}

/// Folds the log from position 1 into a fresh model and saves its snapshot.
pub async fn rebuild_one<P>(
    store: &dyn EventStore,
    fresh: P,
    snapshots: Option<&Path>,
    show: bool,
) -> Result<Rebuilt>
where
    P: Projection + Serialize,
{
    let head = store.head().await?;
    let name = fresh.name();
    let bar = if show {
        ProgressBar::new(head)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>18} [{bar:40}] {pos}/{len} events ({per_sec}, {eta})",
        )?
        .progress_chars("=> "),
    );
    bar.set_prefix(name);
    let started = Instant::now();
    let (batches, mut to_decode) = tokio::sync::mpsc::channel::<Vec<RecordedEvent>>(READ_AHEAD);
    let (decoded, to_fold) = std::sync::mpsc::sync_channel::<Decoded>(READ_AHEAD);
    let decoder = tokio::task::spawn_blocking(move || {
        while let Some(batch) = to_decode.blocking_recv() {
            let envelopes = batch
                .into_iter()
                .map(|recorded| (recorded.position, recorded.into_envelope()))
                .collect();
            if decoded.send(envelopes).is_err() {
                return; // the folder stopped
            }
        }
    });
    let folder = tokio::task::spawn_blocking({
        let bar = bar.clone();
        move || {
            let mut model = Checkpointed::new(fresh);
            for envelopes in to_fold {
                for (position, envelope) in envelopes {
                    runner::apply_decoded(&mut model, position, envelope.as_ref());
                }
                bar.set_position(model.position);
            }
            model
        }
    });
    let read = read_in_batches(store, &batches).await;
    drop(batches);
    // Both stages end once the reader is gone; a panic in either is passed on.
    runner::joined(decoder).await;
    let model = runner::joined(folder).await;
    read?;
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(dir) = snapshots {
        runner::save(&model, dir)?;
    }
    Ok(Rebuilt {
        events: model.position,
        seconds,
    })
}

/// Reads the log from position 1 into the pipeline, a batch at a time;
/// stops early when a later stage is gone (it panicked: its join says so).
async fn read_in_batches(
    store: &dyn EventStore,
    batches: &tokio::sync::mpsc::Sender<Vec<RecordedEvent>>,
) -> Result<(), StoreError> {
    let mut from = 1;
    loop {
        let batch = store.read_all(from, BATCH).await?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        from = last.position + 1;
        if batches.send(batch).await.is_err() {
            return Ok(());
        }
    }
}

/// A batch of decoded envelopes with their positions, from the decoder to
/// the folder.
type Decoded = Vec<(Position, Result<Envelope, DecodeError>)>;

/// Rebuilds one read model by name, or all of them; prints a line each.
pub async fn run(store: &dyn EventStore, name: Option<&str>, snapshots: &Path) -> Result<()> {
    if let Some(n) = name {
        if !NAMES.contains(&n) {
            bail!(
                "no read model named `{n}`; the names are: {}",
                NAMES.join(", ")
            );
        }
    }
    for n in NAMES.iter().filter(|n| name.is_none_or(|want| want == **n)) {
        let r = match *n {
            "consumer_activity" => {
                rebuild_one(store, ConsumerActivity::default(), Some(snapshots), true).await?
            }
            "store_days" => rebuild_one(store, StoreDays::default(), Some(snapshots), true).await?,
            "rider_boards" => {
                rebuild_one(store, RiderBoards::default(), Some(snapshots), true).await?
            }
            "supply" => rebuild_one(store, Supply::default(), Some(snapshots), true).await?,
            "merchant_search" => {
                rebuild_one(store, MerchantSearch::new(), Some(snapshots), true).await?
            }
            "analytics" => rebuild_one(store, Analytics::default(), Some(snapshots), true).await?,
            other => bail!("`{other}` is listed in NAMES but has no rebuild"),
        };
        println!(
            "{n:>18}: {} events in {:.3} s = {:.0} events/s",
            r.events,
            r.seconds,
            r.events as f64 / r.seconds.max(1e-9)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::verify::canonical;
    use crate::store::embedded::EmbeddedStore;

    /// The model folded one event at a time, in order, as JSON.
    async fn folded_in_order<P: Projection + Serialize>(
        store: &dyn EventStore,
        fresh: P,
    ) -> serde_json::Value {
        let mut model = Checkpointed::new(fresh);
        let batch =
            crate::store::SubscribedEvent::each(store.read_all(1, usize::MAX).await.unwrap());
        runner::fold(&mut model, &batch);
        serde_json::to_value(&model.model).unwrap()
    }

    /// The model a rebuild saved, as JSON.
    fn saved(snapshots: &Path, name: &str) -> serde_json::Value {
        let file = snapshots.join(format!("{name}.json"));
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut snapshot: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        snapshot["model"].take()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_model_of_the_hub_rebuilds_by_name_and_equals_an_in_order_fold() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        // More than two batches, so the pipeline holds several at once.
        let written = crate::bench::rebuild::write_day(&store, 2 * BATCH as u64 + 5_000, 3)
            .await
            .unwrap();
        let snapshots = dir.path().join("projections");
        run(&store, None, &snapshots).await.unwrap();
        let expected = [
            (
                "consumer_activity",
                folded_in_order(&store, ConsumerActivity::default()).await,
            ),
            (
                "store_days",
                folded_in_order(&store, StoreDays::default()).await,
            ),
            (
                "rider_boards",
                folded_in_order(&store, RiderBoards::default()).await,
            ),
            ("supply", folded_in_order(&store, Supply::default()).await),
            (
                "analytics",
                folded_in_order(&store, Analytics::default()).await,
            ),
            (
                "merchant_search",
                folded_in_order(&store, MerchantSearch::new()).await,
            ),
        ];
        assert_eq!(expected.len(), NAMES.len());
        for (name, model) in &expected {
            assert!(NAMES.contains(name), "{name} cannot be rebuilt by name");
            // Some models hold hash sets, serialised in no particular order.
            assert_eq!(
                canonical(saved(&snapshots, name)),
                canonical(model.clone()),
                "{name} differs from an in-order fold"
            );
        }
        // One by name rebuilds that one and reports every event.
        std::fs::remove_dir_all(&snapshots).unwrap();
        run(&store, Some("merchant_search"), &snapshots)
            .await
            .unwrap();
        assert!(snapshots.join("merchant_search.json").exists());
        assert!(!snapshots.join("supply.json").exists());
        let r = rebuild_one(&store, Supply::default(), None, false)
            .await
            .unwrap();
        assert_eq!(r.events, written);
        let unknown = run(&store, Some("nope"), &snapshots).await.unwrap_err();
        assert!(unknown.to_string().contains("merchant_search"), "{unknown}");
        store.shutdown().await;
    }
}
