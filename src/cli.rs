//! The `o2ohub` command line: parses arguments into one typed command and
//! runs it. Each subcommand is a thin shell over a library function.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

use crate::bench;
use o2ohub_events::Role;

/// o2ohub: an event-sourced O2O order and local-service hub.
#[derive(Debug, Parser)]
#[command(name = "o2ohub", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (on the embedded store unless --store says otherwise).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "O2OHUB_ADDR", default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// The data directory.
        #[arg(long, env = "O2OHUB_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// The event store: embedded or eventstoredb (needs the `eventstoredb` build feature).
        #[arg(long, env = "O2OHUB_STORE", default_value = "embedded")]
        store: String,
        /// EventStoreDB/KurrentDB connection string, for --store eventstoredb.
        #[arg(long, env = "O2OHUB_ESDB_URL")]
        esdb_url: Option<String>,
        /// Prefix of the hub's streams on the EventStoreDB server (to share a cluster).
        #[arg(long, env = "O2OHUB_ESDB_NAMESPACE", default_value = "")]
        esdb_namespace: String,
    },
    /// Play a simulated city day against the hub through its HTTP API, in
    /// accelerated time, and print what happened.
    Demo {
        /// Seed of the city and the day (the same seed plays the same day).
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Merchants in the city.
        #[arg(long, default_value_t = 60)]
        merchants: usize,
        /// Riders in the city.
        #[arg(long, default_value_t = 40)]
        riders: usize,
        /// Business hours to play, from 11:00 local.
        #[arg(long, default_value_t = 12.0, allow_negative_numbers = true)]
        hours: f64,
        /// Business seconds per wall-clock second.
        #[arg(long, default_value_t = 900.0, allow_negative_numbers = true)]
        speed: f64,
        /// The demo's own data directory (it records the seed there).
        #[arg(long, default_value = "data/demo")]
        data_dir: PathBuf,
        /// Keep serving the API after the day, until Ctrl-C.
        #[arg(long)]
        serve: bool,
        /// Write an HTML report of the day here.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Mint a bearer token for local use, signed with the configured key.
    Token {
        /// consumer, staff, rider or admin.
        #[arg(long)]
        role: String,
        /// The subject (a consumer, staff or rider id); a new id when absent.
        #[arg(long)]
        subject: Option<String>,
        /// For staff: the merchant they act for.
        #[arg(long)]
        merchant: Option<String>,
        /// Hours the token is valid.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
        /// The data directory (where a local key lives when O2OHUB_JWT_SECRET is unset).
        #[arg(long, env = "O2OHUB_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
    },
    /// Solve a Li & Lim PDPTW instance with the route optimiser; prints one
    /// JSON line (instance, vehicles, distance, seconds, feasible).
    Solve {
        /// The instance file.
        file: PathBuf,
        /// Time budget in seconds.
        #[arg(long, default_value_t = 10.0)]
        time: f64,
        /// Seed of the search (with --iterations the run is reproducible).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Iteration cap instead of (or besides) the time budget.
        #[arg(long)]
        iterations: Option<u64>,
        /// Write the routes in SINTEF format here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Measure the hub's parts against their peers.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Fold the whole log into fresh read models (all, or the one named),
    /// with progress and events/s, and save the snapshots the hub resumes from.
    Rebuild {
        /// One of: consumer_activity, store_days, rider_boards, supply, analytics.
        name: Option<String>,
        /// The data directory.
        #[arg(long, env = "O2OHUB_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
    },
    /// What-if dispatch: play the recorded day's deliveries under a policy and
    /// the other, next to what the log says happened.
    Replay {
        /// The dispatch policy to replay with.
        #[arg(long, value_enum, default_value = "greedy")]
        policy: crate::dispatch::Policy,
        /// The data directory holding the recorded day.
        #[arg(long, env = "O2OHUB_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Back up the embedded store while a hub may keep serving from it: copies
    /// a consistent, durable prefix of the log (and the PII key vault) into a
    /// new directory that `serve --data-dir DIR` starts on.
    Backup {
        /// The data directory to back up.
        #[arg(long, env = "O2OHUB_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// The new directory to write the backup into.
        #[arg(long)]
        to: PathBuf,
    },
    /// Feed the read models from Kafka as a member of a consumer group
    /// (needs O2OHUB_KAFKA_BROKERS); snapshots under the data directory.
    Project {
        /// Where events come from.
        #[arg(long, value_enum, default_value = "kafka")]
        source: crate::kafka::project::ProjectionSource,
        /// The consumer group.
        #[arg(long)]
        group: String,
        /// The data directory (the worker's snapshot: kafka/worker-<group>.json).
        #[arg(long, env = "O2OHUB_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// global: apply in log order (this worker owns every partition, a
        /// full copy); stream: per-aggregate order (workers split a group).
        #[arg(long, value_enum, default_value = "global")]
        ordering: crate::kafka::sequencer::Ordering,
        /// Milliseconds between snapshot-and-commit.
        #[arg(long, default_value_t = 1000)]
        commit_ms: u64,
        /// Serve Prometheus metrics on this address.
        #[arg(long)]
        metrics_addr: Option<std::net::SocketAddr>,
    },
    /// Create the hub's Kafka topics (O2OHUB_KAFKA_BROKERS; partitions from
    /// O2OHUB_KAFKA_PARTITIONS) if they do not exist.
    KafkaTopics,
    /// Inspect a data directory's event store: open it (which recovers and
    /// verifies every record) and print its head position and size on disk.
    Check {
        /// The data directory.
        #[arg(long, env = "O2OHUB_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
    },
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Merchant search on a 100k-merchant city: in-process, over HTTP against
    /// `o2ohub serve`, and Redis GEOSEARCH on the same queries.
    Geo {
        /// Merchants in the synthetic city.
        #[arg(long, default_value_t = 100_000)]
        merchants: usize,
        /// Queries per target (with `--client wrk`, the HTTP target cycles
        /// through them for `--seconds`).
        #[arg(long, default_value_t = 100_000)]
        queries: usize,
        /// Concurrent clients for the HTTP and Redis targets.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// The HTTP target's load generator: `wrk` (Debian's package;
        /// measures the server) or `builtin` (reqwest in this process,
        /// sharing the cores).
        #[arg(long, value_enum, default_value = "wrk")]
        client: crate::bench::wrk::LoadClient,
        /// Seconds of HTTP queries with `--client wrk`.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Print one JSON object per measurement.
        #[arg(long)]
        json: bool,
        /// Skip the Redis target.
        #[arg(long)]
        no_redis: bool,
        /// Skip the HTTP target.
        #[arg(long)]
        no_http: bool,
        /// Seed of the city and the queries.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Queries look for shops open in the four hours from this local
        /// hour: 10 (the default) finds every shop open, 20 some closing, 2
        /// the city closed. Only 10 can be compared with Redis, which knows
        /// no opening hours: another hour needs --no-redis.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..24))]
        local_hour: u32,
    },
    /// One dispatcher tick at city scale (5,000 deliveries × 2,000 riders) and
    /// a simulated hour of the global policy against greedy nearest-rider.
    Dispatch {
        /// Open deliveries in the timed tick.
        #[arg(long, default_value_t = 5_000)]
        deliveries: usize,
        /// On-shift riders in the timed tick.
        #[arg(long, default_value_t = 2_000)]
        riders: usize,
        /// Times the tick is planned (the median is reported).
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Riders in the simulated hour.
        #[arg(long, default_value_t = 300)]
        sim_riders: usize,
        /// Orders in the simulated hour.
        #[arg(long, default_value_t = 1_500)]
        sim_orders: usize,
        /// Skip the simulated hour.
        #[arg(long)]
        no_sim: bool,
        /// Seed of the city and the demand.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Print one JSON object per measurement.
        #[arg(long)]
        json: bool,
    },
    /// Booking commands end to end over HTTP against `o2ohub serve`:
    /// commands/s and p50/p99 latency.
    Api {
        /// Bookings measured with `--client builtin`.
        #[arg(long, default_value_t = 50_000)]
        commands: usize,
        /// Seconds of bookings measured with `--client wrk`.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Clients (connections) sending at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Merchants the bookings are spread over.
        #[arg(long, default_value_t = 64)]
        merchants: usize,
        /// The load generator: `wrk` (Debian's package; measures the
        /// server) or `builtin` (reqwest in this process, sharing the cores).
        #[arg(long, value_enum, default_value = "wrk")]
        client: crate::bench::wrk::LoadClient,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The Kafka relay against a raw producer on the same records, and
    /// command → Kafka-fed read model latency (needs O2OHUB_KAFKA_BROKERS;
    /// `scripts/kafka.sh start` runs a local broker).
    Kafka {
        /// Approximate events of the throughput run.
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        /// Commands per second of the latency run.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Seconds of the latency run.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Alternating raw/relay rounds of the throughput run; medians are
        /// reported (`ratio_vs_raw`: the median of the rounds' ratios).
        #[arg(long, default_value_t = 9)]
        rounds: usize,
        /// Print one JSON object per measurement.
        #[arg(long)]
        json: bool,
        /// Scratch directory.
        #[arg(long, default_value = "target/bench-kafka")]
        dir: PathBuf,
    },
    /// Events/s folded when every read model is rebuilt from a synthetic log.
    Rebuild {
        /// Approximate number of events in the synthetic log.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Print one JSON object per measurement.
        #[arg(long)]
        json: bool,
        /// Seed of the synthetic day.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Scratch directory.
        #[arg(long, default_value = "target/bench-rebuild")]
        dir: PathBuf,
    },
    /// Durable appends/s of the embedded store against PostgreSQL, at several concurrencies.
    Store {
        /// Client counts to measure, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
        concurrency: Vec<usize>,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// PostgreSQL connection string (libpq style); omit to measure the embedded store alone.
        /// `scripts/bench-store.sh` starts a durable PostgreSQL and passes this.
        #[arg(long, env = "O2OHUB_BENCH_POSTGRES")]
        postgres: Option<String>,
        /// Print one JSON object per measurement.
        #[arg(long)]
        json: bool,
        /// Scratch directory for the stores (on the disk being measured).
        #[arg(long, default_value = "target/bench-store")]
        dir: PathBuf,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Bench(BenchCommand::Dispatch {
            deliveries,
            riders,
            repeats,
            sim_riders,
            sim_orders,
            no_sim,
            seed,
            json,
        }) => crate::bench::dispatch::run(&crate::bench::dispatch::DispatchBench {
            deliveries,
            riders,
            repeats,
            sim: crate::dispatch::sim::SimConfig {
                seed,
                riders: sim_riders,
                orders: sim_orders,
                ..Default::default()
            },
            no_sim,
            json,
        }),
        Command::Bench(BenchCommand::Store {
            concurrency,
            seconds,
            postgres,
            json,
            dir,
        }) => {
            if concurrency.is_empty()
                || concurrency.contains(&0)
                || seconds.is_nan()
                || seconds <= 0.0
            {
                anyhow::bail!(
                    "--concurrency takes positive client counts and --seconds a positive duration"
                );
            }
            bench::store::run(bench::store::StoreBench {
                concurrency,
                seconds,
                postgres,
                json,
                dir,
            })
            .await
        }
        Command::Bench(BenchCommand::Geo {
            merchants,
            queries,
            concurrency,
            client,
            seconds,
            json,
            no_redis,
            no_http,
            seed,
            local_hour,
        }) => {
            if merchants == 0 || queries == 0 || concurrency == 0 {
                anyhow::bail!("--merchants, --queries and --concurrency must be positive");
            }
            if local_hour != 10 && !no_redis {
                anyhow::bail!("--local-hour {local_hour} needs --no-redis: Redis knows no opening hours, so only the default hour (10, every shop open) compares like with like");
            }
            let opts = bench::geo::GeoBench {
                merchants,
                queries,
                concurrency,
                client,
                seconds,
                json,
                redis: !no_redis,
                http: !no_http,
                seed,
                local_hour,
            };
            bench::geo::run(opts).await
        }
        Command::Bench(BenchCommand::Api {
            commands,
            seconds,
            concurrency,
            merchants,
            client,
            json,
        }) => {
            bench::api::run(bench::api::ApiBench {
                commands,
                seconds,
                concurrency,
                merchants,
                json,
                client,
            })
            .await
        }
        Command::Bench(BenchCommand::Kafka {
            events,
            rate,
            seconds,
            rounds,
            json,
            dir,
        }) => {
            if events == 0 || rate == 0 || rounds == 0 || seconds.is_nan() || seconds <= 0.0 {
                anyhow::bail!("--events, --rate, --rounds and --seconds must be positive");
            }
            let kafka = crate::kafka::KafkaConfig::from_env()?.ok_or_else(|| {
                anyhow::anyhow!(
                    "O2OHUB_KAFKA_BROKERS is not set: start a broker with `scripts/kafka.sh start` and export what it prints"
                )
            })?;
            bench::kafka::run(bench::kafka::KafkaBench {
                kafka,
                events,
                rate,
                seconds,
                rounds,
                json,
                dir,
            })
            .await
        }
        Command::Bench(BenchCommand::Rebuild {
            events,
            json,
            seed,
            dir,
        }) => {
            bench::rebuild::run(bench::rebuild::RebuildBench {
                events,
                dir,
                json,
                seed,
            })
            .await
        }
        Command::Solve {
            file,
            time,
            seed,
            iterations,
            out,
        } => crate::solve::run(&file, time, seed, iterations, out.as_deref()),
        Command::Serve {
            addr,
            data_dir,
            store,
            esdb_url,
            esdb_namespace,
        } => {
            let mut config = crate::hub::HubConfig::new(data_dir);
            config.store = crate::hub::StoreBackend::choose(&store, esdb_url, esdb_namespace)?;
            config.kafka = crate::kafka::KafkaConfig::from_env()?;
            crate::serve::run_with(addr, config).await
        }
        Command::Demo {
            seed,
            merchants,
            riders,
            hours,
            speed,
            data_dir,
            serve,
            report,
        } => {
            let summary = crate::demo::run(crate::demo::DemoOptions {
                seed,
                merchants,
                riders,
                hours,
                speed,
                data_dir,
                serve,
                report,
                print: true,
            })
            .await?;
            if !summary.all_checks_hold() {
                anyhow::bail!("the day broke an invariant (see the checks above)");
            }
            Ok(())
        }
        Command::Token {
            role,
            subject,
            merchant,
            ttl_hours,
            data_dir,
        } => {
            let role = o2ohub_events::Role::parse(&role)
                .filter(|r| matches!(r, Role::Consumer | Role::Staff | Role::Rider | Role::Admin))
                .ok_or_else(|| anyhow::anyhow!("--role is one of consumer, staff, rider, admin"))?;
            let merchant = merchant
                .map(|m| o2ohub_events::MerchantId::parse(&m))
                .transpose()
                .map_err(|_| anyhow::anyhow!("--merchant is a merchant id (UUID)"))?;
            if role == Role::Staff && merchant.is_none() {
                anyhow::bail!("a staff token needs --merchant <merchant id>");
            }
            let subject = subject.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            let secrets = crate::secrets::Secrets::load(&data_dir)?;
            let keys = crate::api::auth::Keys::from_secret(&secrets.jwt);
            let principal = crate::api::auth::Principal {
                role,
                subject,
                merchant,
            };
            println!("{}", keys.mint(&principal, ttl_hours * 3600)?);
            Ok(())
        }
        Command::Replay {
            policy,
            data_dir,
            json,
        } => crate::replay::run(&data_dir, policy, json).await,
        Command::Rebuild { name, data_dir } => {
            let store = crate::store::embedded::EmbeddedStore::open(&data_dir)?;
            let result =
                crate::rebuild::run(&store, name.as_deref(), &data_dir.join("projections")).await;
            store.shutdown().await;
            result
        }
        Command::Backup { data_dir, to } => {
            let started = std::time::Instant::now();
            let report = crate::store::embedded::backup(&data_dir, &to)?;
            println!(
                "{}: backed up positions 1..={} ({} commits, {:.1} MB of records, {} segments, {} vault keys) in {:.2} s",
                to.display(),
                report.head,
                report.records,
                report.record_bytes as f64 / 1e6,
                report.segments,
                report.vault_keys,
                started.elapsed().as_secs_f64()
            );
            println!(
                "restore: o2ohub check --data-dir {0} && o2ohub serve --data-dir {0} (with the same secrets in the environment)",
                to.display()
            );
            Ok(())
        }
        Command::Project {
            source,
            group,
            data_dir,
            ordering,
            commit_ms,
            metrics_addr,
        } => {
            if commit_ms == 0 {
                anyhow::bail!("--commit-ms must be positive");
            }
            crate::kafka::project::run(crate::kafka::project::ProjectCommand {
                source,
                group,
                data_dir,
                ordering,
                commit_every: std::time::Duration::from_millis(commit_ms),
                metrics_addr,
            })
            .await
        }
        Command::KafkaTopics => {
            let kafka = crate::kafka::KafkaConfig::from_env()?.ok_or_else(|| {
                anyhow::anyhow!("O2OHUB_KAFKA_BROKERS is not set: point it at the Kafka cluster")
            })?;
            let created = crate::kafka::topics::ensure_topics(&kafka).await?;
            for suffix in crate::kafka::topics::EVENT_TOPICS
                .iter()
                .chain([&crate::kafka::topics::DEAD_LETTER])
            {
                let name = format!("{}{suffix}", kafka.topic_prefix);
                let state = if created.contains(&name) {
                    "created"
                } else {
                    "exists"
                };
                println!(
                    "{name}: {state} ({} partitions wanted)",
                    crate::kafka::topics::partitions_of(&kafka, suffix)
                );
            }
            Ok(())
        }
        Command::Check { data_dir } => {
            use crate::store::EventStore;
            let store = crate::store::embedded::EmbeddedStore::open(&data_dir)?;
            let head = store.head().await?;
            let segments: Vec<u64> = std::fs::read_dir(store.path())?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
                .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                .collect();
            println!(
                "{}: intact, {head} events in {} segments ({:.0} MB preallocated)",
                store.path().display(),
                segments.len(),
                segments.iter().sum::<u64>() as f64 / 1e6
            );
            store.shutdown().await;
            Ok(())
        }
    }
}
