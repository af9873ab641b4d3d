//! `o2ohub rebuild [NAME]`: folds the whole log into fresh read models from
//! position 1, with a progress bar, prints events/s, and saves the snapshots
//! the hub resumes from.

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
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
use crate::store::EventStore;

/// Every read model by name, as `rebuild` accepts them.
pub const NAMES: [&str; 5] = [
    "consumer_activity",
    "store_days",
    "rider_boards",
    "supply",
    "analytics",
];

/// Events read per batch.
const BATCH: usize = 16_384;

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
    let mut model = Checkpointed::new(fresh);
    let started = Instant::now();
    loop {
        let batch = store.read_all(model.position + 1, BATCH).await?;
        if batch.is_empty() {
            break;
        }
        runner::fold(&mut model, &batch);
        bar.set_position(model.position);
    }
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
            _ => rebuild_one(store, Analytics::default(), Some(snapshots), true).await?,
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
