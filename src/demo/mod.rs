//! `o2ohub demo`: a synthetic city plays a day against the hub, in
//! accelerated business time, through the real HTTP API, and the day is
//! summed up from the event log.
//!
//! - [`city`]: the seeded city — districts, merchants, riders, consumers.
//! - [`demand`]: the seeded day — who wants what when, and how it ends.
//! - [`client`]: the HTTP client every actor uses, with bounded concurrency
//!   and failure counts.
//! - [`driver`]: registers the city and plays the day with a progress bar.
//! - [`journeys`]: consumers' visit and delivery stories (with the store's
//!   and the payment provider's part in them).
//! - [`riders`]: riders' shifts — offers, movement, pickup, hand-over.
//! - [`figures`]: what happened, counted from the log.
//! - [`verify`]: the closing checks — read models rebuilt from the log.
//! - [`summary`]: the printed summary; [`report`]: the HTML report.
//!
//! The demo owns its data directory: it records the seed there and refuses
//! to play into a store that holds anything else.

pub mod city;
pub mod client;
pub mod demand;
pub mod driver;
pub mod figures;
pub mod journeys;
pub mod report;
pub mod riders;
pub mod summary;
pub mod verify;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::api::auth::{Keys, Principal};
use crate::clock;
use crate::secrets::Secrets;
use crate::store::EventStore;
use city::CitySize;
use o2ohub_events::Role;

/// The file in the data directory naming the demo that wrote it.
pub const MARKER: &str = "demo.json";

/// The file in the data directory holding the day's demand.
pub const DEMAND: &str = "demand.json";

/// Requests in flight at most.
const IN_FLIGHT: usize = 32;

/// How to play the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Seed of the city and the day.
    pub seed: u64,
    /// Merchants.
    pub merchants: usize,
    /// Riders.
    pub riders: usize,
    /// Business hours to play, from 11:00 local.
    pub hours: f64,
    /// Business seconds per wall second.
    pub speed: f64,
    /// Where the hub keeps its data.
    pub data_dir: PathBuf,
    /// Keep serving the API after the day, until Ctrl-C.
    pub serve: bool,
    /// Write the HTML report here.
    pub report: Option<PathBuf>,
    /// Show the progress bar and print the summary.
    pub print: bool,
}

/// What the data directory records about the demo in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// The seed.
    pub seed: u64,
    /// Merchants.
    pub merchants: usize,
    /// Riders.
    pub riders: usize,
    /// Hours played.
    pub hours: f64,
}

impl DemoOptions {
    /// Refuses sizes and times that make no day.
    pub fn validate(&self) -> Result<()> {
        if !(1..=10_000).contains(&self.merchants) {
            bail!(
                "--merchants takes 1 to 10000 merchants (got {})",
                self.merchants
            );
        }
        if !(1..=5_000).contains(&self.riders) {
            bail!("--riders takes 1 to 5000 riders (got {})", self.riders);
        }
        if !(self.hours.is_finite() && self.hours > 0.0 && self.hours <= 24.0) {
            bail!(
                "--hours takes more than 0 and at most 24 business hours (got {})",
                self.hours
            );
        }
        if !(self.speed.is_finite() && self.speed >= 1.0 && self.speed <= 3_600.0) {
            bail!(
                "--speed takes 1 to 3600 business seconds per wall second (got {})",
                self.speed
            );
        }
        Ok(())
    }

    /// Consumers in the city: enough that few order twice.
    pub fn consumers(&self) -> usize {
        (self.merchants * 8).max(50)
    }

    fn marker(&self) -> Marker {
        Marker {
            seed: self.seed,
            merchants: self.merchants,
            riders: self.riders,
            hours: self.hours,
        }
    }
}

/// Claims the data directory for this demo: a fresh or empty directory gets
/// the marker; one holding another demo or another store is refused.
pub fn claim_data_dir(opts: &DemoOptions) -> Result<()> {
    let dir = &opts.data_dir;
    let start_fresh = format!(
        "delete it (`rm -rf {0}`) to start fresh, or pass another --data-dir",
        dir.display()
    );
    if let Ok(bytes) = std::fs::read(dir.join(MARKER)) {
        let marker: Marker = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a demo marker", dir.join(MARKER).display()))?;
        if marker.seed != opts.seed {
            bail!(
                "{} holds the demo of seed {}; refusing to mix seed {} into it: {start_fresh}",
                dir.display(),
                marker.seed,
                opts.seed
            );
        }
        bail!(
            "{} already holds the day of seed {}: explore it with `o2ohub serve --data-dir {}`, or {start_fresh}",
            dir.display(),
            marker.seed,
            dir.display()
        );
    }
    let has_content = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if has_content {
        bail!(
            "{} is not empty and holds no demo; the demo plays only into its own directory: {start_fresh}",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join(MARKER), serde_json::to_vec_pretty(&opts.marker())?)
        .with_context(|| format!("cannot write {}", dir.join(MARKER).display()))?;
    Ok(())
}

/// Business seconds between two dispatcher ticks in the demo.
const TICK_BUSINESS_S: f64 = 20.0;

/// The dispatcher's settings for a day at `speed`: from the environment,
/// except that, unless `O2OHUB_DISPATCH_TICK_MS` says otherwise, it ticks
/// every [`TICK_BUSINESS_S`] of business time rather than every 2 s of wall
/// time (which would be half an hour of the day at ×900), and, unless
/// `O2OHUB_OFFER_TTL_S` says otherwise, an offer stays open at least a
/// quarter second of wall time.
pub fn dispatch_config(speed: f64) -> Result<crate::dispatch::DispatchConfig> {
    let mut config = crate::dispatch::DispatchConfig::from_env()?;
    if std::env::var_os("O2OHUB_DISPATCH_TICK_MS").is_none() {
        let ms = (TICK_BUSINESS_S * 1000.0 / speed).clamp(10.0, 2000.0);
        config.tick = std::time::Duration::from_millis(ms as u64);
    }
    // 45 business seconds are 50 ms of wall time at ×900: too short for a
    // driver answering over HTTP. Give riders at least a quarter second.
    if std::env::var_os("O2OHUB_OFFER_TTL_S").is_none() {
        let seconds = (0.25 * speed).max(config.offer_ttl.num_seconds() as f64);
        config.offer_ttl = chrono::Duration::seconds(seconds as i64);
    }
    Ok(config)
}

/// Counts the whole log up to `head`.
async fn count(store: &dyn EventStore, head: u64) -> Result<figures::Figures> {
    let mut count = figures::Count::default();
    let mut next = 1;
    while next <= head {
        let batch = store
            .read_all(next, ((head - next + 1) as usize).min(16_384))
            .await?;
        if batch.is_empty() {
            break;
        }
        for recorded in &batch {
            next = recorded.position + 1;
            if let Ok(envelope) = recorded.decode() {
                count.apply(&envelope);
            }
        }
    }
    Ok(count.finish())
}

fn window(day: &demand::Day) -> String {
    let (a, weekend) = demand::local_minute(day.start);
    let b = demand::local_minute(day.end).0;
    let local = day.start + chrono::Duration::minutes(i64::from(city::UTC_OFFSET_MINUTES));
    format!(
        "{} ({}) {:02}:{:02}–{:02}:{:02} UTC+8",
        local.format("%a %Y-%m-%d"),
        if weekend { "weekend" } else { "weekday" },
        a / 60,
        a % 60,
        b / 60,
        b % 60
    )
}

/// Plays the demo: installs the accelerated clock (once per process),
/// starts the hub in-process on a free port, plays the day, counts and
/// checks it, prints and reports it; with `serve`, keeps serving until Ctrl-C.
pub async fn run(opts: DemoOptions) -> Result<summary::Summary> {
    opts.validate()?;
    claim_data_dir(&opts)?;
    let size = CitySize {
        merchants: opts.merchants,
        riders: opts.riders,
        consumers: opts.consumers(),
    };
    let plan = city::generate(opts.seed, size);
    let start = demand::day_start(opts.seed);
    let day = demand::draw(&plan, start, opts.hours);
    // The day's demand next to its log, for replays with another policy.
    std::fs::write(opts.data_dir.join(DEMAND), serde_json::to_vec(&day)?)
        .with_context(|| format!("cannot write {}", opts.data_dir.join(DEMAND).display()))?;
    // Business time starts a little before the day: registering the city takes a moment.
    let lead = chrono::Duration::minutes(20);
    clock::accelerate(start - lead, opts.speed).map_err(|_| {
        anyhow::anyhow!(
            "a business clock is already installed in this process; run one demo per process"
        )
    })?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dispatch = dispatch_config(opts.speed)?;
    let (addr, state, server) = crate::serve::start_dispatching(
        "127.0.0.1:0".parse()?,
        crate::hub::HubConfig::new(opts.data_dir.clone()),
        dispatch,
        async {
            let _ = stopped.await;
        },
    )
    .await?;
    let server = tokio::spawn(server);
    let secrets = Secrets::load(&opts.data_dir)?;
    let keys = Keys::from_secret(&secrets.jwt);
    let hub = client::Hub::new(format!("http://{addr}"), IN_FLIGHT);
    if opts.print {
        println!(
            "o2ohub demo: seed {}, {} merchants, {} riders, {} consumers, {} requests of demand over {} h at ×{}; hub on http://{addr}",
            opts.seed,
            opts.merchants,
            opts.riders,
            size.consumers,
            day.demands.len(),
            opts.hours,
            opts.speed
        );
    }
    let window_text = window(&day);
    let districts = plan.districts.iter().map(|d| (d.name, d.centre)).collect();
    let demands = day.demands.len();
    let town = Arc::new(driver::register(plan, day, hub, &keys, secrets.payments.clone()).await?);
    let started = Instant::now();
    driver::play(town.clone(), opts.print).await?;
    let wall_seconds = started.elapsed().as_secs_f64();

    let store = state.hub.store.clone();
    let head = store.head().await?;
    state.hub.caught_up().await?;
    let figures = count(store.as_ref(), head).await?;
    let rebuilt = verify::rebuild_all(store.as_ref(), &state.hub.read).await?;
    let errors = &town.hub.errors;
    let summary = summary::Summary {
        seed: opts.seed,
        city: (opts.merchants, opts.riders, size.consumers),
        demands,
        no_merchant: town
            .tally
            .no_merchant
            .load(std::sync::atomic::Ordering::Relaxed),
        no_slot: town
            .tally
            .no_slot
            .load(std::sync::atomic::Ordering::Relaxed),
        window: window_text,
        wall_seconds,
        speed: opts.speed,
        districts,
        figures,
        store_events: head,
        requests: errors.requests.load(std::sync::atomic::Ordering::Relaxed),
        failed: errors.failed.load(std::sync::atomic::Ordering::Relaxed),
        failures: errors.kinds(),
        rebuilt,
        data_dir: opts.data_dir.clone(),
    };
    if opts.print {
        println!("\n{summary}");
    }
    if let Some(path) = &opts.report {
        std::fs::write(path, report::render(&summary))
            .with_context(|| format!("cannot write the report {}", path.display()))?;
        if opts.print {
            println!("  report      {}", path.display());
        }
    }
    if opts.serve {
        explain_serving(&town, &keys, &addr.to_string(), &opts.data_dir)?;
        tokio::signal::ctrl_c().await?;
    }
    drop(town);
    let _ = stop.send(());
    let _ = server.await;
    match Arc::try_unwrap(state) {
        Ok(state) => state.hub.shutdown().await,
        Err(_) => tracing::warn!(
            "state still shared at shutdown; the store closes when the process exits"
        ),
    }
    Ok(summary)
}

/// Prints how to explore the served hub with curl and minted tokens.
fn explain_serving(town: &driver::Town, keys: &Keys, addr: &str, data_dir: &Path) -> Result<()> {
    let admin = keys.mint(
        &Principal {
            role: Role::Admin,
            subject: "demo-explorer".into(),
            merchant: None,
        },
        24 * 3600,
    )?;
    let merchant = town
        .stores
        .first()
        .map(|s| s.id.to_string())
        .unwrap_or_default();
    let consumer = town.consumers.first().cloned().unwrap_or_default();
    println!(
        "\nServing on http://{addr} until Ctrl-C (business time runs on at ×{:.0}; now {}).",
        clock::speed(),
        clock::now().format("%Y-%m-%d %H:%M UTC")
    );
    println!("  ADMIN={admin}");
    println!("  CONSUMER={consumer}");
    println!(
        "  curl -s 'http://{addr}/v1/supply?resolution=7' -H \"authorization: Bearer $ADMIN\""
    );
    println!("  curl -s http://{addr}/v1/merchants/{merchant}/analytics -H \"authorization: Bearer $ADMIN\"");
    println!("  curl -s http://{addr}/v1/me/orders -H \"authorization: Bearer $CONSUMER\"");
    println!("  curl -s http://{addr}/metrics | grep o2ohub_");
    println!(
        "  more tokens: o2ohub token --role admin --data-dir {}",
        data_dir.display()
    );
    Ok(())
}
