//! The projection runner: keeps a read model current from the store's global
//! log — catching up from its checkpoint, then following the live
//! subscription — and saves a snapshot (state + position + fold version)
//! so a restart resumes where it stopped. Snapshots are written from a copy
//! on a blocking thread while folding goes on, one at a time. A read model
//! whose fold version changed, or that has no snapshot, replays history from
//! position 1.
//!
//! Events that cannot be decoded (written by a newer hub) are skipped,
//! counted and logged with their position; they never stop the runner.

use o2ohub_events::{DecodeError, Envelope};
use o2ohub_projections::{Checkpointed, Projection};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::store::{EventStore, Position, StoreError, SubscribedEvent};

/// Events read per batch while catching up.
const CATCH_UP_BATCH: usize = 8192;

/// A read model shared between its runner and the readers that query it.
pub type Shared<P> = Arc<RwLock<Checkpointed<P>>>;

/// Where a read model's snapshot lives, and how often it is saved.
#[derive(Debug, Clone)]
pub struct Snapshots {
    /// Directory of `<name>.json` snapshot files.
    pub dir: PathBuf,
    /// Save at most this often while live.
    pub every: Duration,
}

/// A snapshot file.
#[derive(Serialize, Deserialize)]
struct Snapshot<P> {
    /// The read model's name.
    name: String,
    /// Its fold version when saved.
    version: u32,
    /// The last position folded into `model`.
    position: Position,
    /// The state.
    model: P,
}

/// Why a runner stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The store failed or shut down.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A snapshot could not be written.
    #[error("cannot save the snapshot {path}: {source}")]
    Snapshot {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Loads a read model from its snapshot if the snapshot is of the same fold
/// version; otherwise a fresh model at position 0 (a full replay).
pub fn load<P>(fresh: P, snapshots: Option<&Snapshots>) -> Checkpointed<P>
where
    P: Projection + DeserializeOwned,
{
    let name = fresh.name();
    let version = fresh.version();
    let Some(dir) = snapshots.map(|s| &s.dir) else {
        return Checkpointed::new(fresh);
    };
    let path = dir.join(format!("{name}.json"));
    let Ok(bytes) = std::fs::read(&path) else {
        return Checkpointed::new(fresh);
    };
    match serde_json::from_slice::<Snapshot<P>>(&bytes) {
        Ok(s) if s.version == version && s.name == name => {
            tracing::info!(
                projection = name,
                position = s.position,
                "resuming from snapshot"
            );
            Checkpointed {
                model: s.model,
                position: s.position,
            }
        }
        Ok(s) => {
            tracing::info!(
                projection = name,
                old = s.version,
                new = version,
                "fold version changed: replaying from zero"
            );
            Checkpointed::new(fresh)
        }
        Err(e) => {
            tracing::warn!(projection = name, error = %e, file = %path.display(), "unreadable snapshot: replaying from zero");
            Checkpointed::new(fresh)
        }
    }
}

/// Saves a snapshot atomically (temporary file, sync, rename, sync directory).
pub fn save<P>(model: &Checkpointed<P>, dir: &Path) -> Result<(), RunnerError>
where
    P: Projection + Serialize,
{
    let name = model.model.name();
    let path = dir.join(format!("{name}.json"));
    let io = |source| RunnerError::Snapshot {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let snapshot = Snapshot {
        name: name.to_owned(),
        version: model.model.version(),
        position: model.position,
        model: &model.model,
    };
    let tmp = dir.join(format!("{name}.json.tmp"));
    // Buffered: serde_json writes token by token, a syscall each unbuffered.
    let mut file =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).map_err(io)?);
    serde_json::to_writer(&mut file, &snapshot).map_err(|e| io(e.into()))?;
    file.flush().map_err(io)?;
    file.get_ref().sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

/// Folds a batch of events into a model, skipping positions it has already
/// applied and events it cannot decode. Returns events applied.
pub fn fold<P: Projection>(model: &mut Checkpointed<P>, batch: &[Arc<SubscribedEvent>]) -> u64 {
    let mut applied = 0;
    for event in batch {
        // Decoding is most of a fold's cost: not for an event already applied.
        if event.position > model.position && apply_decoded(model, event.position, event.envelope())
        {
            applied += 1;
        }
    }
    applied
}

/// Folds the event at `position`, already decoded, unless the model has
/// applied that position; an event that could not be decoded is skipped,
/// counted and logged, and the model's position moves past it. Returns
/// whether it was applied.
pub fn apply_decoded<P: Projection>(
    model: &mut Checkpointed<P>,
    position: Position,
    decoded: Result<&Envelope, &DecodeError>,
) -> bool {
    if position <= model.position {
        return false;
    }
    match decoded {
        Ok(envelope) => model.apply(envelope),
        Err(e) => {
            metrics::counter!("o2ohub_projection_undecodable_events_total", "projection" => model.model.name())
                .increment(1);
            tracing::warn!(projection = model.model.name(), position, error = %e, "skipping an event this build cannot read");
            // Keep the position moving: the event is not for this build.
            model.position = position;
            false
        }
    }
}

/// Brings a model up to the store's current head; returns events applied.
pub async fn catch_up<P: Projection>(
    store: &dyn EventStore,
    model: &RwLock<Checkpointed<P>>,
) -> Result<u64, RunnerError> {
    let mut applied = 0;
    loop {
        let from = model.read().unwrap_or_else(|p| p.into_inner()).position + 1;
        let batch = SubscribedEvent::each(store.read_all(from, CATCH_UP_BATCH).await?);
        if batch.is_empty() {
            return Ok(applied);
        }
        applied += fold(
            &mut model.write().unwrap_or_else(|p| p.into_inner()),
            &batch,
        );
    }
}

/// Follows the store forever: catch up, then apply live batches, saving a
/// snapshot at most every `snapshots.every`. Returns when the store shuts down.
pub async fn run<P>(
    store: Arc<dyn EventStore>,
    model: Shared<P>,
    snapshots: Option<Snapshots>,
) -> Result<(), RunnerError>
where
    P: Projection + Serialize + Clone + Send + Sync + 'static,
{
    let name = model.read().unwrap_or_else(|p| p.into_inner()).model.name();
    catch_up(store.as_ref(), &model).await?;
    let from = model.read().unwrap_or_else(|p| p.into_inner()).position + 1;
    let mut subscription = store.subscribe_all(from).await?;
    let mut last_save = Instant::now();
    // A snapshot being written: a copy, saved on a blocking thread, so that
    // neither folding nor the async threads wait for serialising and syncing
    // a large model (a city's merchant index).
    let mut saving: Option<tokio::task::JoinHandle<Result<(), RunnerError>>> = None;
    loop {
        let batch = match subscription.next_batch().await {
            Ok(b) => b,
            Err(StoreError::Closed) => break,
            Err(e) => return Err(e.into()),
        };
        let position = {
            let mut m = model.write().unwrap_or_else(|p| p.into_inner());
            fold(&mut m, &batch);
            m.position
        };
        metrics::gauge!("o2ohub_projection_position", "projection" => name).set(position as f64);
        if let Some(s) = &snapshots {
            let idle = saving.as_ref().is_none_or(|h| h.is_finished());
            if last_save.elapsed() >= s.every && idle {
                finish_save(&mut saving).await?;
                let copy = model.read().unwrap_or_else(|p| p.into_inner()).clone();
                let dir = s.dir.clone();
                saving = Some(tokio::task::spawn_blocking(move || save(&copy, &dir)));
                last_save = Instant::now();
            }
        }
    }
    finish_save(&mut saving).await?;
    if let Some(s) = &snapshots {
        // Folding is over: the last snapshot needs no copy.
        let (model, dir) = (model.clone(), s.dir.clone());
        joined(tokio::task::spawn_blocking(move || {
            save(&model.read().unwrap_or_else(|p| p.into_inner()), &dir)
        }))
        .await?;
    }
    Ok(())
}

/// The outcome of a task, its panic passed on.
pub(crate) async fn joined<T>(task: tokio::task::JoinHandle<T>) -> T {
    task.await
        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
}

/// Waits for the snapshot being written in the background, if any, and
/// passes on its outcome (`None` when none was being written).
pub(crate) async fn finish_save<T, E>(
    saving: &mut Option<tokio::task::JoinHandle<Result<T, E>>>,
) -> Result<Option<T>, E> {
    match saving.take() {
        Some(save) => joined(save).await.map(Some),
        None => Ok(None),
    }
}
