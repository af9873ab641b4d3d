//! The read models a Kafka-fed worker keeps, and their snapshot: every
//! model, their fold versions and the sequencer's [`Applied`] state in one
//! file written atomically, so the models and the record of what they hold
//! can never disagree after a crash.

use o2ohub_events::Envelope;
use o2ohub_projections::analytics::Analytics;
use o2ohub_projections::search::MerchantSearch;
use o2ohub_projections::supply::Supply;
use o2ohub_projections::views::consumer::ConsumerActivity;
use o2ohub_projections::views::rider::RiderBoards;
use o2ohub_projections::views::store::StoreDays;
use o2ohub_projections::Projection;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::sequencer::{Applied, Ordering};

/// Every read model of the hub, fed together.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ModelSet {
    /// A consumer's visits and orders.
    pub consumer_activity: ConsumerActivity,
    /// A store's day.
    pub store_days: StoreDays,
    /// A rider's offers and route.
    pub rider_boards: RiderBoards,
    /// Riders and open deliveries on H3 cells.
    pub supply: Supply,
    /// Analytics per merchant and area.
    pub analytics: Analytics,
    /// Merchants by service area, with slot availability.
    pub merchant_search: MerchantSearch,
}

impl ModelSet {
    /// Folds one event into every model.
    pub fn apply(&mut self, envelope: &Envelope) {
        self.consumer_activity.apply(envelope);
        self.store_days.apply(envelope);
        self.rider_boards.apply(envelope);
        self.supply.apply(envelope);
        self.analytics.apply(envelope);
        self.merchant_search.apply(envelope);
    }

    /// `(name, fold version)` of every model: a snapshot with other versions
    /// is not resumed from.
    pub fn versions(&self) -> Vec<(String, u32)> {
        fn v<P: Projection>(p: &P) -> (String, u32) {
            (p.name().to_owned(), p.version())
        }
        vec![
            v(&self.consumer_activity),
            v(&self.store_days),
            v(&self.rider_boards),
            v(&self.supply),
            v(&self.analytics),
            v(&self.merchant_search),
        ]
    }
}

/// The snapshot file of a worker.
#[derive(Clone, Serialize, Deserialize)]
pub struct WorkerSnapshot {
    /// The consumer group the worker belongs to.
    pub group: String,
    /// The ordering it applied events in.
    pub ordering: Ordering,
    /// Fold versions of the models when saved.
    pub versions: Vec<(String, u32)>,
    /// What the models hold.
    pub applied: Applied,
    /// Poison messages set aside so far.
    pub poison: u64,
    /// The models.
    pub models: ModelSet,
}

/// Why a snapshot could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading or writing failed.
    #[error("cannot use the worker snapshot {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The snapshot file of `group` under `data_dir`.
pub fn snapshot_path(data_dir: &Path, group: &str) -> PathBuf {
    data_dir.join("kafka").join(format!("worker-{group}.json"))
}

/// Loads a snapshot if it exists, belongs to `group`, and was made by the
/// same fold versions and ordering; `None` means start from nothing.
pub fn load(path: &Path, group: &str, ordering: Ordering) -> Option<WorkerSnapshot> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice::<WorkerSnapshot>(&bytes) {
        Ok(s)
            if s.group == group
                && s.ordering == ordering
                && s.versions == ModelSet::default().versions() =>
        {
            Some(s)
        }
        Ok(_) => {
            tracing::warn!(file = %path.display(), "worker snapshot is of another group, ordering or fold version: starting from nothing");
            None
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "unreadable worker snapshot: starting from nothing");
            None
        }
    }
}

/// Writes a snapshot atomically (temporary file, sync, rename, sync directory).
pub fn save(path: &Path, snapshot: &WorkerSnapshot) -> Result<(), SnapshotError> {
    let io = |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
    serde_json::to_writer(&mut file, snapshot).map_err(|e| io(e.into()))?;
    let file = file.into_inner().map_err(|e| io(e.into_error()))?;
    (&file).flush().map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}
