//! The `o2ohub` binary.

use clap::Parser;

/// mimalloc instead of glibc's malloc: the store's writer and answering
/// threads free events that request handlers allocated, and glibc's
/// per-thread arenas make such cross-thread frees slow. Measured in
/// docs/benchmarks.md (bench store, bench rebuild).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("O2OHUB_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = o2ohub::cli::Cli::parse();
    if let Err(e) = o2ohub::cli::run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
