//! `o2ohub project --source kafka --group NAME`: the process around a
//! [`worker`](super::worker) — settings from the environment, an optional
//! `/metrics` endpoint, Ctrl-C/SIGTERM as a clean stop (snapshot saved,
//! offsets committed), and a closing report.

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use warp::Filter;

use super::sequencer::Ordering;
use super::worker::{self, WorkerOptions};
use super::KafkaConfig;

/// Where a projection worker reads events from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProjectionSource {
    /// Consumer group on the hub's Kafka topics (`O2OHUB_KAFKA_BROKERS`).
    Kafka,
}

/// What `o2ohub project` was asked.
#[derive(Debug, Clone)]
pub struct ProjectCommand {
    /// The source (Kafka only: the store-fed runners live inside `serve`).
    pub source: ProjectionSource,
    /// The consumer group.
    pub group: String,
    /// Where the worker's snapshot lives.
    pub data_dir: PathBuf,
    /// Log order (full copy) or per-aggregate order (split group).
    pub ordering: Ordering,
    /// Snapshot-and-commit interval.
    pub commit_every: Duration,
    /// Serve Prometheus metrics here.
    pub metrics_addr: Option<SocketAddr>,
}

/// Runs the worker until Ctrl-C or SIGTERM.
pub async fn run(command: ProjectCommand) -> Result<()> {
    let ProjectionSource::Kafka = command.source;
    let kafka = KafkaConfig::from_env()?.context(
        "O2OHUB_KAFKA_BROKERS is not set: point it at the Kafka cluster (for a local broker: scripts/kafka.sh start)",
    )?;
    if command.group.trim().is_empty() {
        anyhow::bail!("--group needs a consumer group name");
    }
    if let Some(addr) = command.metrics_addr {
        let handle = crate::serve::metrics();
        let route = warp::path!("metrics").and(warp::get()).map(move || {
            let text = handle.as_ref().map(|h| h.render()).unwrap_or_default();
            warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4")
        });
        let (bound, server) = warp::serve(route)
            .try_bind_ephemeral(addr)
            .with_context(|| format!("cannot listen on {addr} for /metrics"))?;
        tokio::spawn(server);
        eprintln!("worker metrics on http://{bound}/metrics");
    } else {
        crate::serve::metrics();
    }
    eprintln!(
        "o2ohub project: group {} on {} ({:?} ordering); Ctrl-C stops after saving",
        command.group, kafka.brokers, command.ordering
    );
    let report = worker::run(
        WorkerOptions {
            kafka,
            group: command.group.clone(),
            data_dir: command.data_dir,
            ordering: command.ordering,
            commit_every: command.commit_every,
            progress: None,
        },
        crate::serve::shutdown_signal(),
    )
    .await?;
    println!(
        "group {}: {} events applied, {} re-sends dropped, {} poison messages set aside",
        command.group, report.applied, report.duplicates, report.poison
    );
    Ok(())
}
