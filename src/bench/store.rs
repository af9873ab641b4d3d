//! `o2ohub bench store`: durable single-event appends per second at several
//! client concurrencies, each client waiting for its acknowledgement, on the
//! embedded log (with direct writes, and with `fdatasync`), on the SQLite
//! backend, and on a PostgreSQL events table with a unique (stream, version)
//! constraint and `synchronous_commit=on`, in one run. Also measures this
//! disk's physical bounds: a small write + fdatasync, and the latency floor of
//! group commit when the disk is kept busy.

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::latency::Latencies;
use crate::store::embedded::{time_group_writes, EmbeddedStore, LogOptions};
use crate::store::sqlite::SqliteStore;
use crate::store::{EventMetadata, EventStore, ExpectedVersion, NewEvent};

/// Options of one bench run.
#[derive(Debug, Clone)]
pub struct StoreBench {
    /// Client counts to measure.
    pub concurrency: Vec<usize>,
    /// Seconds measured per concurrency and backend.
    pub seconds: f64,
    /// A libpq-style connection string for PostgreSQL; `None` skips it.
    pub postgres: Option<String>,
    /// One JSON object per measurement instead of a table.
    pub json: bool,
    /// Where the embedded stores and the fsync probe file go.
    pub dir: std::path::PathBuf,
}

/// Streams each client rotates over: many streams, as in production.
const STREAMS_PER_CLIENT: u64 = 64;

/// One measurement.
struct Measured {
    appends_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    appends: usize,
    /// CPU time of this process (every thread) per append, µs: the whole
    /// cost of a local backend, the client side only for PostgreSQL.
    cpu_us_per_append: f64,
    /// Time to reopen the store afterwards (the log only).
    reopen: Option<Reopen>,
}

/// CPU time this process has used so far (user + system, every thread).
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn payload() -> String {
    // About the size of a real event payload.
    r#"{"visit_id":"0193a8f2-6a7e-7c3b-9d2e-4b5a6c7d8e9f","consumer_id":"0193a8f2-6a7e-7c3b-9d2e-4b5a6c7d8e90","service_id":"haircut","slot":"2026-11-25T10:00:00Z","duration_minutes":30,"price":{"minor":2500,"currency":"EUR"}}"#.to_owned()
}

fn metadata() -> EventMetadata {
    EventMetadata {
        occurred_at: chrono::Utc::now(),
        correlation_id: uuid::Uuid::now_v7(),
        causation_id: None,
        actor: o2ohub_events::Actor::system("bench"),
    }
}

/// Median and p99 of a 128-byte overwrite + fdatasync on `dir`'s disk, in ms.
pub fn fsync_latency(dir: &Path, samples: usize) -> Result<(f64, f64)> {
    let path = dir.join("fsync-probe");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let buf = [7u8; 128];
    let mut lat = Latencies::default();
    for _ in 0..samples {
        let t = Instant::now();
        file.write_at(&buf, 0)?;
        file.sync_data()?;
        lat.record(t.elapsed().as_micros());
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok((lat.percentile_ms(50.0), lat.percentile_ms(99.0)))
}

/// Bytes of the group timed by [`saturated_floor`]: about a group of 40
/// of the bench's commits.
const GROUP_BYTES: usize = 16 << 10;

/// What group commit can do at best on `dir`'s disk when it is kept busy.
struct Floor {
    /// One group's durable write, alone: p50 and p99, ms.
    write: (f64, f64),
    /// A commit arriving at a random moment while the disk writes group
    /// after group waits for the write in flight, then its own: p50 and
    /// p99 of that wait, ms, with no CPU spent anywhere. No client of a
    /// group-committing store on this disk can do better at saturation.
    saturated: (f64, f64),
}

/// Times 2,000 back-to-back group writes the way the log makes them durable
/// and derives [`Floor`] from them.
fn saturated_floor(dir: &Path) -> Result<Floor> {
    let times: Vec<u128> = time_group_writes(dir, GROUP_BYTES, 2000)?
        .into_iter()
        .map(|t| t.as_micros().max(1))
        .collect();
    let mut alone = Latencies::default();
    let mut saturated = Latencies::default();
    // Arrivals every `step` µs of the whole run: at most ~1M samples, even
    // on a disk whose writes stall for seconds.
    let step = (times.iter().sum::<u128>() / 1_000_000).max(1);
    let mut at = 0u128;
    for (i, &write) in times.iter().enumerate() {
        alone.record(write);
        // Arrivals during this write wait out its remainder, then the next.
        if let Some(&next) = times.get(i + 1) {
            while at < write {
                saturated.record(write - at + next);
                at += step;
            }
        }
        at = at.saturating_sub(write);
    }
    Ok(Floor {
        write: (alone.percentile_ms(50.0), alone.percentile_ms(99.0)),
        saturated: (saturated.percentile_ms(50.0), saturated.percentile_ms(99.0)),
    })
}

/// Runs `clients` loops of `op(client, i)` for `seconds`, timing each call.
async fn drive<F, Fut>(clients: usize, seconds: f64, op: F) -> Result<Measured>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let cpu_before = process_cpu();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (op, stop) = (op.clone(), stop.clone());
            tokio::spawn(async move {
                let mut lat = Latencies::default();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    op(c, i).await?;
                    lat.record(t.elapsed().as_micros());
                    i += 1;
                }
                Ok::<_, anyhow::Error>(lat)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Latencies::default();
    for t in tasks {
        all.merge(t.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = process_cpu().saturating_sub(cpu_before);
    let appends = all.len();
    Ok(Measured {
        appends_per_sec: appends as f64 / elapsed,
        p50_ms: all.percentile_ms(50.0),
        p99_ms: all.percentile_ms(99.0),
        appends,
        cpu_us_per_append: cpu.as_secs_f64() * 1e6 / appends.max(1) as f64,
        reopen: None,
    })
}

/// The local backends measured side by side.
#[derive(Debug, Clone, Copy)]
enum Local {
    /// The embedded log (the default backend).
    Log,
    /// The embedded log with `pwrite` + `fdatasync` instead of direct
    /// writes (where direct I/O is refused, or turned off).
    LogFsync,
    /// The SQLite backend (the suggested engine the log must beat).
    Sqlite,
}

async fn local(backend: Local, dir: &Path, clients: usize, seconds: f64) -> Result<Measured> {
    let store_dir = dir.join(format!("{backend:?}-c{clients}").to_lowercase());
    let _ = std::fs::remove_dir_all(&store_dir);
    let store: Arc<dyn EventStore> = match backend {
        Local::Log => Arc::new(EmbeddedStore::open(&store_dir)?),
        Local::LogFsync => Arc::new(EmbeddedStore::open_with(
            &store_dir,
            LogOptions {
                direct_writes: false,
                ..LogOptions::default()
            },
        )?),
        Local::Sqlite => Arc::new(SqliteStore::open(&store_dir)?),
    };
    let (payload, meta) = (payload(), metadata());
    let shared = store.clone();
    let m = drive(clients, seconds, move |c, i| {
        let (store, payload, meta) = (shared.clone(), payload.clone(), meta.clone());
        async move {
            let stream = format!("bench-{c}-{}", i % STREAMS_PER_CLIENT);
            let version = i / STREAMS_PER_CLIENT;
            let event = NewEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: "VisitBooked".into(),
                schema_version: 1,
                payload,
                metadata: meta,
            };
            store
                .append(&stream, ExpectedVersion::Exact(version), vec![event])
                .await?;
            Ok(())
        }
    })
    .await?;
    drop(store);
    // Opening scans and verifies the whole log and rebuilds the index: time it.
    let reopen = match backend {
        Local::Log | Local::LogFsync => {
            let t = Instant::now();
            let store = EmbeddedStore::open(&store_dir)?;
            let events = store.head().await?;
            let seconds = t.elapsed().as_secs_f64();
            store.shutdown().await;
            Some(Reopen { events, seconds })
        }
        Local::Sqlite => None,
    };
    let _ = std::fs::remove_dir_all(&store_dir);
    Ok(Measured { reopen, ..m })
}

/// How long opening a store of `events` took.
#[derive(Debug, Clone, Copy)]
struct Reopen {
    events: u64,
    seconds: f64,
}

async fn postgres(conninfo: &str, clients: usize, seconds: f64) -> Result<Measured> {
    let (setup, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at `{conninfo}`; start it with scripts/bench-store.sh"))?;
    tokio::spawn(conn);
    setup
        .batch_execute(
            "SET client_min_messages = warning;
             DROP TABLE IF EXISTS bench_events;
             CREATE TABLE bench_events (
                 position BIGSERIAL PRIMARY KEY,
                 stream TEXT NOT NULL,
                 version BIGINT NOT NULL,
                 event_id UUID NOT NULL,
                 event_type TEXT NOT NULL,
                 payload TEXT NOT NULL,
                 recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                 UNIQUE (stream, version));
             SET synchronous_commit = on;",
        )
        .await?;
    let sync: String = setup
        .query_one("SHOW synchronous_commit", &[])
        .await?
        .get(0);
    let fsync: String = setup.query_one("SHOW fsync", &[]).await?.get(0);
    if sync != "on" || fsync != "on" {
        bail!(
            "PostgreSQL must run with fsync=on and synchronous_commit=on for a durable comparison"
        );
    }
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (client, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let insert = client
            .prepare(
                "INSERT INTO bench_events (stream, version, event_id, event_type, payload) \
                 VALUES ($1, $2, $3::text::uuid, $4, $5)",
            )
            .await?;
        connections.push(Arc::new((client, insert)));
    }
    let payload = payload();
    let m = drive(clients, seconds, move |c, i| {
        let conn = connections[c].clone();
        let payload = payload.clone();
        async move {
            let stream = format!("bench-{c}-{}", i % STREAMS_PER_CLIENT);
            let version = (i / STREAMS_PER_CLIENT + 1) as i64;
            let id = uuid::Uuid::now_v7().to_string();
            let (client, insert) = &*conn;
            client
                .execute(insert, &[&stream, &version, &id, &"VisitBooked", &payload])
                .await?;
            Ok(())
        }
    })
    .await?;
    setup.batch_execute("DROP TABLE bench_events").await?;
    Ok(m)
}

/// Runs the bench and prints the results.
pub async fn run(opts: StoreBench) -> Result<()> {
    std::fs::create_dir_all(&opts.dir)?;
    let (fsync_p50, fsync_p99) = fsync_latency(&opts.dir, 2000)?;
    let floor = saturated_floor(&opts.dir)?;
    let out = std::io::stdout();
    let mut out = out.lock();
    if opts.json {
        writeln!(
            out,
            "{}",
            json!({"measurement": "fsync", "p50_ms": fsync_p50, "p99_ms": fsync_p99})
        )?;
        writeln!(
            out,
            "{}",
            json!({"measurement": "group_write", "bytes": GROUP_BYTES,
                "p50_ms": floor.write.0, "p99_ms": floor.write.1,
                "saturated_p50_ms": floor.saturated.0, "saturated_p99_ms": floor.saturated.1})
        )?;
    } else {
        writeln!(
            out,
            "small write + fdatasync on {}: p50 {fsync_p50:.3} ms, p99 {fsync_p99:.3} ms",
            opts.dir.display()
        )?;
        writeln!(
            out,
            "a {} KiB group's durable write: p50 {:.3} ms, p99 {:.3} ms; with the disk kept busy, \
             waiting for the write in flight and then its own: p50 {:.3} ms, p99 {:.3} ms \
             (the floor of group commit's latency at saturation)",
            GROUP_BYTES >> 10,
            floor.write.0,
            floor.write.1,
            floor.saturated.0,
            floor.saturated.1
        )?;
        writeln!(
            out,
            "{:<14} {:>11} {:>12} {:>9} {:>9} {:>14} {:>14}",
            "backend",
            "concurrency",
            "appends/s",
            "p50 ms",
            "p99 ms",
            "bound c/fsync",
            "cpu µs/append"
        )?;
    }
    let mut rates: Vec<(&str, usize, f64)> = Vec::new();
    for &c in &opts.concurrency {
        let mut rows = vec![
            (
                "embedded",
                local(Local::Log, &opts.dir, c, opts.seconds).await?,
            ),
            (
                "embedded-fsync",
                local(Local::LogFsync, &opts.dir, c, opts.seconds).await?,
            ),
            (
                "sqlite",
                local(Local::Sqlite, &opts.dir, c, opts.seconds).await?,
            ),
        ];
        if let Some(url) = &opts.postgres {
            rows.push(("postgres", postgres(url, c, opts.seconds).await?));
        }
        for (backend, m) in rows {
            rates.push((backend, c, m.appends_per_sec));
            let bound = c as f64 / (fsync_p50 / 1000.0);
            if opts.json {
                let line = json!({
                    "backend": backend, "concurrency": c, "appends_per_sec": m.appends_per_sec.round(),
                    "p50_ms": m.p50_ms, "p99_ms": m.p99_ms, "appends": m.appends, "fsync_bound_per_sec": bound.round(),
                    "cpu_us_per_append": (m.cpu_us_per_append * 100.0).round() / 100.0,
                });
                writeln!(out, "{line}")?;
            } else {
                writeln!(
                    out,
                    "{backend:<14} {c:>11} {:>12.0} {:>9.3} {:>9.3} {bound:>14.0} {:>14.2}",
                    m.appends_per_sec, m.p50_ms, m.p99_ms, m.cpu_us_per_append
                )?;
            }
            if let Some(r) = m.reopen {
                if opts.json {
                    let line = json!({"measurement": "reopen", "backend": backend, "events": r.events,
                        "seconds": r.seconds, "events_per_sec": (r.events as f64 / r.seconds).round()});
                    writeln!(out, "{line}")?;
                } else {
                    writeln!(
                        out,
                        "{:<14} reopened {} events in {:.3} s ({:.0} events/s scanned and verified)",
                        "", r.events, r.seconds, r.events as f64 / r.seconds
                    )?;
                }
            }
            out.flush()?;
        }
    }
    let rate = |backend: &str, c: usize| {
        rates
            .iter()
            .find(|r| r.0 == backend && r.1 == c)
            .map(|r| r.2)
    };
    let ratio = |peer: &str, c: usize| {
        Some((rate("embedded", c)? / rate(peer, c)? * 100.0).round() / 100.0)
    };
    let by_concurrency = |peer: &str| -> serde_json::Map<String, serde_json::Value> {
        opts.concurrency
            .iter()
            .filter_map(|&c| Some((c.to_string(), json!(ratio(peer, c)?))))
            .collect()
    };
    if opts.json {
        let summary = json!({
            "ratio_vs_postgres": ratio("postgres", 64),
            "ratio_vs_postgres_by_concurrency": by_concurrency("postgres"),
            "ratio_vs_sqlite_by_concurrency": by_concurrency("sqlite"),
            "fsync_p50_ms": fsync_p50,
        });
        writeln!(out, "{summary}")?;
    } else {
        for peer in ["postgres", "sqlite"] {
            let ratios: Vec<String> = opts
                .concurrency
                .iter()
                .filter_map(|&c| Some(format!("{:.2}x at {c}", ratio(peer, c)?)))
                .collect();
            if !ratios.is_empty() {
                writeln!(out, "embedded / {peer}: {}", ratios.join(", "))?;
            }
        }
    }
    Ok(())
}
