//! `o2ohub serve`: the hub on its embedded store behind the HTTP API, until
//! Ctrl-C or SIGTERM; then in-flight requests finish, the store is closed and
//! read-model snapshots are saved.

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::api::{self, AppState};
use crate::hub::{Hub, HubConfig};
use crate::secrets::Secrets;

/// Installs the Prometheus recorder once per process.
pub fn metrics() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Starts a hub and its API on `addr` (port 0 picks one); returns the bound
/// address, the state, and the server future. Used by `serve`, `demo` and tests.
pub async fn start(
    addr: SocketAddr,
    data_dir: &Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(
    SocketAddr,
    Arc<AppState>,
    impl std::future::Future<Output = ()>,
)> {
    let mut config = HubConfig::new(data_dir.to_path_buf());
    config.kafka = crate::kafka::KafkaConfig::from_env()?;
    start_with(addr, config, shutdown).await
}

/// Like [`start`], with the hub's settings given rather than read from the
/// environment (tests point each hub at its own Kafka broker).
pub async fn start_with(
    addr: SocketAddr,
    config: HubConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(
    SocketAddr,
    Arc<AppState>,
    impl std::future::Future<Output = ()>,
)> {
    let dispatch = crate::dispatch::DispatchConfig::from_env()?;
    start_dispatching(addr, config, dispatch, shutdown).await
}

/// [`start_with`] with a given dispatcher configuration (the demo ticks in
/// business time, so its wall-clock tick depends on its speed).
pub async fn start_dispatching(
    addr: SocketAddr,
    config: HubConfig,
    dispatch: crate::dispatch::DispatchConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(
    SocketAddr,
    Arc<AppState>,
    impl std::future::Future<Output = ()>,
)> {
    let data_dir = config.data_dir.as_path();
    let secrets = Secrets::load(data_dir)?;
    let mut hub = Hub::open(&config).await.with_context(|| {
        format!(
            "cannot open the store ({:?}, data in {})",
            config.store,
            data_dir.display()
        )
    })?;
    hub.caught_up().await?;
    if dispatch.active {
        hub.start_dispatcher(dispatch);
    }
    let vault = crate::vault::Vault::open(data_dir, &secrets.pii_master)?;
    let state = Arc::new(AppState::new(hub, &secrets, vault, metrics()));
    let (bound, server) = api::serve(state.clone(), addr, shutdown)
        .with_context(|| format!("cannot listen on {addr}"))?;
    Ok((bound, state, server))
}

/// Runs `o2ohub serve` on the embedded store.
pub async fn run(addr: SocketAddr, data_dir: &Path) -> Result<()> {
    run_with(addr, HubConfig::new(data_dir.to_path_buf())).await
}

/// Runs `o2ohub serve` with a whole hub configuration.
pub async fn run_with(addr: SocketAddr, config: HubConfig) -> Result<()> {
    let data_dir = config.data_dir.clone();
    let data_dir = data_dir.as_path();
    let (bound, state, server) = start_with(addr, config, shutdown_signal()).await?;
    let head = state.hub.store.head().await?;
    println!(
        "o2ohub serving on http://{bound} (data: {}, {head} events)",
        data_dir.display()
    );
    println!(
        "mint a token: o2ohub token --role admin --data-dir {}",
        data_dir.display()
    );
    server.await;
    match Arc::try_unwrap(state) {
        Ok(state) => state.hub.shutdown().await,
        Err(_) => tracing::warn!(
            "state still shared at shutdown; the store closes when the process exits"
        ),
    }
    Ok(())
}
