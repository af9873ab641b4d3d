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

use crate::kafka::relay::{Relay, RelayStatus};
use crate::kafka::KafkaConfig;
use crate::runner::{self, Shared, Snapshots};
use crate::store::embedded::EmbeddedStore;
use crate::store::{EventStore, Position, StoreError};

/// Which event store the hub runs on (`--store`, `O2OHUB_STORE`).
#[derive(Clone, PartialEq, Eq, Default)]
pub enum StoreBackend {
    /// The embedded log in `<data dir>/log` (one process, no server).
    #[default]
    Embedded,
    /// An EventStoreDB/KurrentDB server (cargo feature `eventstoredb`).
    EventStoreDb {
        /// Connection string (`O2OHUB_ESDB_URL`), e.g. `esdb://host:2113?tls=false`.
        url: String,
        /// Prefix of the hub's streams on the server (`O2OHUB_ESDB_NAMESPACE`).
        namespace: String,
    },
}

/// Never prints the connection string: it may carry a password.
impl std::fmt::Debug for StoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreBackend::Embedded => f.write_str("embedded"),
            StoreBackend::EventStoreDb { namespace, .. } => {
                write!(f, "eventstoredb (namespace {namespace:?})")
            }
        }
    }
}

impl StoreBackend {
    /// The backend named `kind` (`embedded` or `eventstoredb`), with the
    /// server's connection string when it needs one.
    pub fn choose(
        kind: &str,
        esdb_url: Option<String>,
        esdb_namespace: String,
    ) -> Result<Self, StoreError> {
        match kind {
            "embedded" => Ok(StoreBackend::Embedded),
            "eventstoredb" => match esdb_url.filter(|u| !u.is_empty()) {
                Some(url) => Ok(StoreBackend::EventStoreDb {
                    url,
                    namespace: esdb_namespace,
                }),
                None => Err(StoreError::Invalid(
                    "--store eventstoredb needs O2OHUB_ESDB_URL (or --esdb-url)".into(),
                )),
            },
            other => Err(StoreError::Invalid(format!(
                "--store is embedded or eventstoredb, not `{other}`"
            ))),
        }
    }
}

/// Where the hub keeps its data.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The data directory: the log in `log/`, snapshots in `projections/`.
    pub data_dir: PathBuf,
    /// How often read-model snapshots are saved while running.
    pub snapshot_every: Duration,
    /// The event store.
    pub store: StoreBackend,
    /// The Kafka cluster the relay publishes the log to; `None` runs on the
    /// store alone.
    pub kafka: Option<KafkaConfig>,
}

impl HubConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: PathBuf) -> Self {
        HubConfig {
            data_dir,
            snapshot_every: Duration::from_secs(30),
            store: StoreBackend::Embedded,
            kafka: None,
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
        // Destructured, so that a read model added to the hub cannot be left
        // out of readiness.
        let ReadModels {
            consumers,
            stores,
            riders,
            supply,
            analytics,
            search,
        } = self;
        [
            pos(consumers),
            pos(stores),
            pos(riders),
            pos(supply),
            pos(analytics),
            pos(search),
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
    /// The backend's own handle, for shutdown.
    backend: OpenStore,
    /// The read models.
    pub read: ReadModels,
    /// The runners feeding them.
    runners: Vec<JoinHandle<()>>,
    /// The dispatcher, when this hub dispatches.
    dispatcher: Option<JoinHandle<()>>,
    /// The relay publishing the log to Kafka, when Kafka is configured.
    relay: Option<Relay>,
}

/// The opened backend, kept to shut it down.
enum OpenStore {
    Embedded(EmbeddedStore),
    #[cfg(feature = "eventstoredb")]
    EventStoreDb(crate::store::esdb::EsdbStore),
}

impl OpenStore {
    async fn open(config: &HubConfig) -> Result<(Arc<dyn EventStore>, OpenStore), StoreError> {
        match &config.store {
            StoreBackend::Embedded => {
                let store = EmbeddedStore::open(&config.data_dir)?;
                Ok((Arc::new(store.clone()), OpenStore::Embedded(store)))
            }
            #[cfg(feature = "eventstoredb")]
            StoreBackend::EventStoreDb { url, namespace } => {
                let store = crate::store::esdb::EsdbStore::connect(url, namespace).await?;
                Ok((Arc::new(store.clone()), OpenStore::EventStoreDb(store)))
            }
            #[cfg(not(feature = "eventstoredb"))]
            StoreBackend::EventStoreDb { .. } => Err(StoreError::Unsupported(
                "this build has no EventStoreDB backend; build with --features eventstoredb".into(),
            )),
        }
    }

    async fn shutdown(&self) {
        match self {
            OpenStore::Embedded(store) => store.shutdown().await,
            #[cfg(feature = "eventstoredb")]
            OpenStore::EventStoreDb(store) => store.shutdown(),
        }
    }
}

fn start<P>(
    store: &Arc<dyn EventStore>,
    fresh: P,
    snapshots: &Snapshots,
    runners: &mut Vec<JoinHandle<()>>,
) -> Shared<P>
where
    P: Projection + Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
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
        let (store, backend) = OpenStore::open(config).await?;
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
        let relay = match &config.kafka {
            Some(kafka) => Some(
                Relay::start(store.clone(), kafka.clone(), &config.data_dir)
                    .map_err(|e| StoreError::Backend(format!("kafka relay: {e}")))?,
            ),
            None => None,
        };
        Ok(Hub {
            store,
            backend,
            read,
            runners,
            dispatcher: None,
            relay,
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

    /// The relay's progress, when Kafka is configured.
    pub fn relay(&self) -> Option<&RelayStatus> {
        self.relay.as_ref().map(|r| r.status.as_ref())
    }

    /// Events committed to the store but not yet confirmed on Kafka
    /// (`None` without Kafka).
    pub async fn relay_lag(&self) -> Result<Option<u64>, StoreError> {
        match self.relay() {
            Some(status) => Ok(Some(
                self.store.head().await?.saturating_sub(status.checkpoint()),
            )),
            None => Ok(None),
        }
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
        self.backend.shutdown().await;
        for r in self.runners {
            let _ = r.await;
        }
        if let Some(relay) = self.relay {
            relay.stopped().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_position_is_that_of_the_model_furthest_behind() {
        fn at<P: Projection>(model: P, position: Position) -> Shared<P> {
            let mut c = o2ohub_projections::Checkpointed::new(model);
            c.position = position;
            Arc::new(RwLock::new(c))
        }
        let models = |search: Position| ReadModels {
            consumers: at(ConsumerActivity::default(), 9),
            stores: at(StoreDays::default(), 9),
            riders: at(RiderBoards::default(), 9),
            supply: at(Supply::default(), 9),
            analytics: at(Analytics::default(), 9),
            search: at(MerchantSearch::new(), search),
        };
        assert_eq!(models(9).position(), 9);
        // The merchant search folds slowest (a city's index): readiness
        // must wait for it too.
        assert_eq!(models(4).position(), 4);
        let behind = models(9);
        behind.consumers.write().unwrap().position = 2;
        assert_eq!(behind.position(), 2);
    }

    #[test]
    fn the_store_is_chosen_by_name_and_the_server_needs_a_url() {
        assert_eq!(
            StoreBackend::choose("embedded", None, String::new()).unwrap(),
            StoreBackend::Embedded
        );
        assert_eq!(
            StoreBackend::choose("eventstoredb", Some("esdb://h:2113".into()), "sh/".into())
                .unwrap(),
            StoreBackend::EventStoreDb {
                url: "esdb://h:2113".into(),
                namespace: "sh/".into()
            }
        );
        assert!(matches!(
            StoreBackend::choose("eventstoredb", None, String::new()),
            Err(StoreError::Invalid(m)) if m.contains("O2OHUB_ESDB_URL")
        ));
        assert!(matches!(
            StoreBackend::choose("eventstoredb", Some(String::new()), String::new()),
            Err(StoreError::Invalid(_))
        ));
        assert!(StoreBackend::choose("postgres", None, String::new()).is_err());
        let secret = StoreBackend::choose("eventstoredb", Some("esdb://u:pw@h".into()), "".into());
        assert!(!format!("{:?}", secret.unwrap()).contains("pw"));
    }
}
