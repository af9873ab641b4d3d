//! The hub assembled: the event store, the read models kept current from it
//! by their runners, and the settings the rest of the process needs. `serve`,
//! `demo` and the tests start one of these.

use o2ohub_projections::analytics::Analytics;
use o2ohub_projections::search::MerchantSearch;
use o2ohub_projections::supply::Supply;
use o2ohub_projections::views::consumer::ConsumerActivity;
use o2ohub_projections::views::rider::RiderBoards;
use o2ohub_projections::views::store::StoreDays;
use o2ohub_projections::Projection;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;

use crate::runner::{self, Shared, Snapshots};
use crate::store::embedded::EmbeddedStore;
use crate::store::{EventStore, Position, StoreError};

/// Where the hub keeps its data.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The data directory: the log in `log/`, snapshots in `projections/`.
    pub data_dir: PathBuf,
    /// How often read-model snapshots are saved while running.
    pub snapshot_every: Duration,
}

impl HubConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: PathBuf) -> Self {
        HubConfig {
            data_dir,
            snapshot_every: Duration::from_secs(30),
        }
    }

    fn snapshots(&self) -> Snapshots {
        Snapshots {
            dir: self.data_dir.join("projections"),
            every: self.snapshot_every,
        }
    }
}

/// The read models the hub serves.
#[derive(Clone)]
pub struct ReadModels {
    /// A consumer's visits and orders.
    pub consumers: Shared<ConsumerActivity>,
    /// A store's day.
    pub stores: Shared<StoreDays>,
    /// A rider's offers and route.
    pub riders: Shared<RiderBoards>,
    /// Riders and open deliveries on H3 cells.
    pub supply: Shared<Supply>,
    /// Analytics per merchant and area.
    pub analytics: Shared<Analytics>,
    /// Merchants by service area on H3 cells, with slot availability.
    pub search: Shared<MerchantSearch>,
}

impl ReadModels {
    /// The lowest position every read model has applied.
    pub fn position(&self) -> Position {
        fn pos<P>(m: &Shared<P>) -> Position {
            m.read().unwrap_or_else(|p| p.into_inner()).position
        }
        [
            pos(&self.consumers),
            pos(&self.stores),
            pos(&self.riders),
            pos(&self.supply),
            pos(&self.analytics),
        ]
        .into_iter()
        .min()
        .unwrap_or(0)
    }
}

/// A running hub.
pub struct Hub {
    /// The event store.
    pub store: Arc<dyn EventStore>,
    /// The embedded store handle, for shutdown.
    embedded: EmbeddedStore,
    /// The read models.
    pub read: ReadModels,
    /// The runners feeding them.
    runners: Vec<JoinHandle<()>>,
    /// The dispatcher, when this hub dispatches.
    dispatcher: Option<JoinHandle<()>>,
}

fn start<P>(
    store: &Arc<dyn EventStore>,
    fresh: P,
    snapshots: &Snapshots,
    runners: &mut Vec<JoinHandle<()>>,
) -> Shared<P>
where
    P: Projection + Serialize + DeserializeOwned,
{
    let model: Shared<P> = Arc::new(RwLock::new(runner::load(fresh, Some(snapshots))));
    let (store, shared, snapshots) = (store.clone(), model.clone(), snapshots.clone());
    runners.push(tokio::spawn(async move {
        let name = shared
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .model
            .name();
        if let Err(e) = runner::run(store, shared, Some(snapshots)).await {
            tracing::error!(projection = name, error = %e, "projection runner stopped");
        }
    }));
    model
}

impl Hub {
    /// Opens the store and starts every read model's runner.
    pub async fn open(config: &HubConfig) -> Result<Hub, StoreError> {
        let embedded = EmbeddedStore::open(&config.data_dir)?;
        let store: Arc<dyn EventStore> = Arc::new(embedded.clone());
        let snapshots = config.snapshots();
        let mut runners = Vec::new();
        let read = ReadModels {
            consumers: start(
                &store,
                ConsumerActivity::default(),
                &snapshots,
                &mut runners,
            ),
            stores: start(&store, StoreDays::default(), &snapshots, &mut runners),
            riders: start(&store, RiderBoards::default(), &snapshots, &mut runners),
            supply: start(&store, Supply::default(), &snapshots, &mut runners),
            analytics: start(&store, Analytics::default(), &snapshots, &mut runners),
            search: start(&store, MerchantSearch::new(), &snapshots, &mut runners),
        };
        Ok(Hub {
            store,
            embedded,
            read,
            runners,
            dispatcher: None,
        })
    }

    /// Starts the dispatcher (one per hub: it is the only writer of offers).
    pub fn start_dispatcher(&mut self, config: crate::dispatch::DispatchConfig) {
        if self.dispatcher.is_none() {
            let (store, supply) = (self.store.clone(), self.read.supply.clone());
            self.dispatcher = Some(tokio::spawn(crate::dispatch::run(store, supply, config)));
        }
    }

    /// Events the slowest read model has yet to apply.
    pub async fn lag(&self) -> Result<u64, StoreError> {
        Ok(self
            .store
            .head()
            .await?
            .saturating_sub(self.read.position()))
    }

    /// Waits until every read model has applied everything committed so far.
    pub async fn caught_up(&self) -> Result<(), StoreError> {
        let head = self.store.head().await?;
        while self.read.position() < head {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    /// Stops accepting writes, lets the runners save their snapshots, and
    /// closes the store.
    pub async fn shutdown(self) {
        if let Some(d) = self.dispatcher {
            d.abort();
            let _ = d.await;
        }
        self.embedded.shutdown().await;
        for r in self.runners {
            let _ = r.await;
        }
    }
}
