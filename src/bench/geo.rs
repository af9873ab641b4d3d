//! `o2ohub bench geo`: the merchant search on a synthetic city of 100,000
//! merchants around Shanghai — registration events folded per second into
//! [`MerchantSearch`], then "nearest 20 of category C within 3 km" queries
//! answered in-process (p50/p99, queries/s) — next to Redis `GEOSEARCH` on
//! the same points with 64 concurrent clients, and a check on a sample that
//! both engines return the same merchants in the same order, so the two
//! figures measure the same question.
//!
//! The city and the queries are deterministic for a seed
//! ([`synthetic_city`], [`query_set`]), so the HTTP target and the demo can
//! reuse them.

use anyhow::{bail, Context, Result};
use chrono::Duration;
use o2ohub_events::schedule::utc;
use o2ohub_events::{
    Actor, Category, Envelope, LatLng, MerchantEvent, MerchantId, MerchantProfile,
    MerchantRegistered, Money, OpeningHours, Service, ServiceArea,
};
use o2ohub_projections::search::{MerchantSearch, SearchHit, SearchQuery};
use o2ohub_projections::Projection;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::latency::Latencies;
use super::wrk::LoadClient;

/// Options of one run.
#[derive(Debug, Clone)]
pub struct GeoBench {
    /// Merchants in the synthetic city.
    pub merchants: usize,
    /// Queries per target.
    pub queries: usize,
    /// Concurrent clients of the HTTP and Redis targets (each on its own
    /// connection).
    pub concurrency: usize,
    /// The HTTP target's load generator.
    pub client: LoadClient,
    /// Seconds of the HTTP target with wrk (it cycles through the queries).
    pub seconds: u64,
    /// One JSON object per measurement instead of a table.
    pub json: bool,
    /// Also measure Redis (needs `/usr/bin/redis-server`).
    pub redis: bool,
    /// Also measure the HTTP search route of `o2ohub serve` (a child process).
    pub http: bool,
    /// Seed of the city and the queries.
    pub seed: u64,
    /// Queries ask for shops open at a minute in the four hours from this
    /// local hour (0..24). The default, 10, is when every shop is open;
    /// from 20 some close, and 2 finds the city closed.
    pub local_hour: u32,
}

impl Default for GeoBench {
    fn default() -> Self {
        GeoBench {
            merchants: 100_000,
            queries: 100_000,
            concurrency: 64,
            client: LoadClient::Wrk,
            seconds: 10,
            json: false,
            redis: true,
            http: true,
            seed: 42,
            local_hour: 10,
        }
    }
}

/// One target's query measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// `inprocess`, `redis` or `http`.
    pub target: &'static str,
    /// Threads or clients that sent queries at once.
    pub clients: usize,
    /// Queries answered.
    pub queries: usize,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// Throughput.
    pub queries_per_sec: f64,
    /// Median latency per query, ms.
    pub p50_ms: f64,
    /// 99th percentile latency per query, ms.
    pub p99_ms: f64,
    /// Average number of merchants returned.
    pub mean_results: f64,
}

/// The question every target answers: nearest 20 within 3 km.
pub const K: usize = 20;
/// The search radius of every query, metres.
pub const RADIUS_M: f64 = 3_000.0;

/// People's Square, Shanghai.
const CENTRE: (f64, f64) = (31.23, 121.47);
/// Districts around the centre: (km north, km east, spread in km).
const DISTRICTS: [(f64, f64, f64); 8] = [
    (6.0, -8.0, 2.0),
    (9.0, 4.0, 2.5),
    (-7.0, -6.0, 2.0),
    (-10.0, 5.0, 3.0),
    (2.0, 12.0, 2.5),
    (-2.0, -14.0, 2.0),
    (14.0, -3.0, 3.0),
    (-15.0, -12.0, 2.5),
];
/// How merchants split across categories (cumulative weights out of 100).
const CATEGORY_MIX: [(Category, u32); 5] = [
    (Category::FoodDelivery, 35),
    (Category::Restaurant, 60),
    (Category::Salon, 75),
    (Category::Repair, 85),
    (Category::Cleaning, 100),
];
/// Shanghai is UTC+8.
const UTC_OFFSET_MINUTES: i16 = 480;

/// A point `north_m`, `east_m` from (lat, lng) on a locally flat earth
/// (plenty for a synthetic city).
fn offset(lat: f64, lng: f64, north_m: f64, east_m: f64) -> LatLng {
    let lat = (lat + north_m / 111_195.0).clamp(-85.0, 85.0);
    let lng = lng + east_m / (111_195.0 * lat.to_radians().cos());
    LatLng::parse(lat, lng).unwrap_or(LatLng { lat, lng: 0.0 })
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Where people and shops are: 30% a dense centre, 50% eight districts, 20%
/// a sparse edge 10–30 km out.
fn city_point(rng: &mut Xoshiro256PlusPlus) -> LatLng {
    let (lat, lng) = CENTRE;
    let zone: f64 = rng.random();
    if zone < 0.3 {
        offset(lat, lng, 2500.0 * normal(rng), 2500.0 * normal(rng))
    } else if zone < 0.8 {
        let (n, e, spread) = DISTRICTS[rng.random_range(0..DISTRICTS.len())];
        let d = offset(lat, lng, n * 1000.0, e * 1000.0);
        let s = spread * 1000.0;
        offset(d.lat, d.lng, s * normal(rng), s * normal(rng))
    } else {
        // Uniform over the annulus.
        let r = (rng.random_range(100.0f64..900.0)).sqrt() * 1000.0;
        let a = rng.random_range(0.0..std::f64::consts::TAU);
        offset(lat, lng, r * a.cos(), r * a.sin())
    }
}

fn category(rng: &mut Xoshiro256PlusPlus) -> Category {
    let draw = rng.random_range(0..100);
    CATEGORY_MIX
        .iter()
        .find(|(_, upto)| draw < *upto)
        .map_or(Category::Cleaning, |(c, _)| *c)
}

fn services(category: Category, rng: &mut Xoshiro256PlusPlus) -> Vec<Service> {
    let menu: &[(&str, u32)] = match category {
        Category::FoodDelivery => return Vec::new(),
        Category::Restaurant => &[("table_2", 90), ("table_4", 120), ("private_room", 180)],
        Category::Salon => &[("hair_cut", 30), ("colour", 90), ("nails", 45)],
        Category::Repair => &[("phone_screen", 60), ("bike_tune", 45), ("appliance", 90)],
        Category::Cleaning => &[("home_2h", 120), ("deep_clean", 240), ("windows", 60)],
    };
    let n = rng.random_range(1..=menu.len());
    menu[..n]
        .iter()
        .map(|&(id, minutes)| Service {
            service_id: id.to_owned(),
            name: id.replace('_', " "),
            duration_minutes: minutes,
            price: Money::parse(rng.random_range(30..500) * 100, "CNY")
                .unwrap_or_else(|_| unreachable!("CNY is a valid currency")),
            slot_capacity: rng.random_range(1..=6),
        })
        .collect()
}

/// Radii by trade (delivery and home services travel farther); one
/// merchant in ten draws a hand-made polygon instead (star-shaped, so simple).
fn service_area(category: Category, at: LatLng, rng: &mut Xoshiro256PlusPlus) -> ServiceArea {
    if rng.random_range(0..10) == 0 {
        let n = rng.random_range(6..=10);
        let ring = (0..n)
            .map(|i| {
                let a = std::f64::consts::TAU * (f64::from(i) + rng.random_range(0.0..0.7))
                    / f64::from(n);
                let r = rng.random_range(1_500.0..5_000.0);
                offset(at.lat, at.lng, r * a.cos(), r * a.sin())
            })
            .collect();
        return ServiceArea::Polygon { ring };
    }
    let meters = match category {
        Category::FoodDelivery => rng.random_range(3_000..=6_000),
        Category::Cleaning => rng.random_range(3_000..=8_000),
        Category::Repair => rng.random_range(2_000..=6_000),
        Category::Salon | Category::Restaurant => rng.random_range(1_500..=5_000),
    };
    ServiceArea::Radius { meters }
}

/// The merchants of a synthetic city, as their registrations: clustered
/// like a real city (a dense centre, eight districts, a sparse edge) around
/// Shanghai, every shop open from 07:00–10:00 to 20:00–02:00 local time.
/// The same `(merchants, seed)` always gives the same city.
pub fn synthetic_city(merchants: usize, seed: u64) -> Vec<MerchantRegistered> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..merchants)
        .map(|i| {
            let id =
                uuid::Builder::from_random_bytes(rng.random::<u128>().to_le_bytes()).into_uuid();
            let category = category(&mut rng);
            let location = city_point(&mut rng);
            let open = 7 * 60 + 15 * rng.random_range(0..=12u16);
            let close = 20 * 60 + 15 * rng.random_range(0..=24u16);
            MerchantRegistered {
                merchant_id: MerchantId(id),
                profile: MerchantProfile {
                    name: format!("{} {i}", category.as_str()),
                    category,
                    location,
                    opening_hours: OpeningHours::daily(UTC_OFFSET_MINUTES, open, close),
                    services: services(category, &mut rng),
                    service_area: service_area(category, location, &mut rng),
                    rating_tenths: rng.random_range(30..=50),
                },
            }
        })
        .collect()
}

/// The envelope a store would deliver for a registration at `position`.
pub fn registration_envelope(position: u64, registered: &MerchantRegistered) -> Envelope {
    let at = utc(2026, 11, 1, 0, 0) + Duration::milliseconds(position as i64);
    Envelope {
        event_id: uuid::Uuid::from_u128(u128::from(position)),
        stream_id: registered.merchant_id.stream(),
        stream_version: 1,
        global_position: position,
        schema_version: 2,
        occurred_at: at,
        recorded_at: at,
        correlation_id: uuid::Uuid::from_u128(u128::from(position)),
        causation_id: None,
        actor: Actor::system("bench"),
        event: MerchantEvent::Registered(registered.clone()).into(),
    }
}

/// The queries of a run: points drawn like the merchants, a category drawn
/// like theirs, at a time in the four hours from `local_hour` on a
/// Wednesday (from 10:00, every shop of the city is open); nearest [`K`]
/// within [`RADIUS_M`].
pub fn query_set(queries: usize, seed: u64, local_hour: u32) -> Vec<SearchQuery> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    let local_midnight = utc(2026, 11, 25, 0, 0) - Duration::minutes(i64::from(UTC_OFFSET_MINUTES));
    let morning = local_midnight + Duration::hours(i64::from(local_hour));
    (0..queries)
        .filter_map(|_| {
            let point = city_point(&mut rng);
            let category = category(&mut rng);
            let at = morning + Duration::minutes(rng.random_range(0..240));
            SearchQuery::new(category, point, at, K, Some(RADIUS_M), None).ok()
        })
        .collect()
}

/// Resident memory of a process, from `/proc/<pid>/status`, in MB.
fn rss_mb(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Folds the registrations into a fresh index; returns it and events/s.
/// Envelopes are built in chunks outside the timed loop, so only the fold
/// is measured and the whole log never sits in memory at once.
fn fold(city: &[MerchantRegistered]) -> (MerchantSearch, f64) {
    let mut model = MerchantSearch::new();
    let mut folding = std::time::Duration::ZERO;
    for (c, chunk) in city.chunks(10_000).enumerate() {
        let envelopes: Vec<Envelope> = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| registration_envelope((c * 10_000 + i + 1) as u64, r))
            .collect();
        let t = Instant::now();
        for e in &envelopes {
            model.apply(e);
        }
        folding += t.elapsed();
    }
    (model, city.len() as f64 / folding.as_secs_f64())
}

/// What a snapshot of the index costs: the copy the runner takes while
/// folding waits, and the serialisation done afterwards on a blocking thread.
struct SnapshotCost {
    copy_ms: f64,
    serialise_ms: f64,
    json_mb: f64,
}

/// Times a copy of `model` and the serialisation of that copy.
fn snapshot_cost(model: &MerchantSearch) -> Result<SnapshotCost> {
    let started = Instant::now();
    let copy = model.clone();
    let copy_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let mut json = Vec::new();
    serde_json::to_writer(&mut json, &copy)?;
    let serialise_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(SnapshotCost {
        copy_ms,
        serialise_ms,
        json_mb: json.len() as f64 / (1 << 20) as f64,
    })
}

/// Queries answered in-process, on as many threads as there are cores.
fn measure_inprocess(model: &MerchantSearch, queries: &[SearchQuery]) -> Measurement {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Warm the caches the way a running replica's are.
    for q in queries.iter().take(1000) {
        std::hint::black_box(model.search(q));
    }
    let t = Instant::now();
    let (mut latencies, results) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                s.spawn(move || {
                    let mut lat = Latencies::default();
                    let mut results = 0usize;
                    for q in queries.iter().skip(w).step_by(threads) {
                        let t = Instant::now();
                        let hits = model.search(q);
                        lat.record(t.elapsed().as_micros());
                        results += hits.len();
                    }
                    (lat, results)
                })
            })
            .collect();
        let mut all = Latencies::default();
        let mut results = 0;
        for w in workers {
            let (lat, r) = w.join().unwrap_or_default();
            all.merge(lat);
            results += r;
        }
        (all, results)
    });
    let seconds = t.elapsed().as_secs_f64();
    Measurement {
        target: "inprocess",
        clients: threads,
        queries: queries.len(),
        seconds,
        queries_per_sec: queries.len() as f64 / seconds,
        p50_ms: latencies.percentile_ms(50.0),
        p99_ms: latencies.percentile_ms(99.0),
        mean_results: results as f64 / queries.len().max(1) as f64,
    }
}

// ---------------------------------------------------------------------------
// HTTP target: the same queries against `o2ohub serve`, a separate process
// on a data directory holding the city's registration events.

/// `o2ohub serve` on a store holding the city, and a consumer's token.
struct Served {
    hub: super::served::Served,
    token: String,
}

impl Served {
    /// Writes the city into a fresh store, starts `o2ohub serve` on it and
    /// waits until it is ready (its read models have folded the city).
    async fn start(city: &[MerchantRegistered]) -> Result<Served> {
        use crate::store::embedded::EmbeddedStore;
        use crate::store::{
            Commit, EventMetadata, EventStore, ExpectedVersion, NewEvent, StreamWrite,
        };
        let dir = super::served::Served::scratch("geo")?;
        {
            let store = EmbeddedStore::open(&dir)?;
            let meta = EventMetadata {
                occurred_at: utc(2026, 11, 1, 0, 0),
                correlation_id: uuid::Uuid::nil(),
                causation_id: None,
                actor: Actor::system("bench"),
            };
            for chunk in city.chunks(1000) {
                let writes = chunk
                    .iter()
                    .map(|r| StreamWrite {
                        stream: r.merchant_id.stream(),
                        expected: ExpectedVersion::NoStream,
                        events: vec![NewEvent::from_event(
                            &MerchantEvent::Registered(r.clone()).into(),
                            &meta,
                        )],
                    })
                    .collect();
                store
                    .commit(Commit {
                        writes,
                        idempotency: None,
                    })
                    .await?;
            }
            store.shutdown().await;
        }
        let hub = super::served::Served::start(dir, std::time::Duration::from_secs(120)).await?;
        let token = hub.token(
            o2ohub_events::Role::Consumer,
            uuid::Uuid::now_v7().to_string(),
        )?;
        Ok(Served { hub, token })
    }

    fn base(&self) -> &str {
        &self.hub.base
    }

    fn stop(self) {
        self.hub.stop();
    }
}

/// The search URL of a query.
fn search_url(base: &str, q: &SearchQuery) -> String {
    let p = q.point();
    let mut url = format!(
        "{base}/v1/merchants/search?category={}&lat={}&lng={}&at={}&k={}",
        q.category().as_str(),
        p.lat,
        p.lng,
        q.at().format("%Y-%m-%dT%H:%M:%SZ"),
        q.k()
    );
    if let Some(d) = q.max_distance_m() {
        url.push_str(&format!("&max_distance_m={d}"));
    }
    url
}

/// Measures the HTTP search endpoint of `served` on `queries` from
/// `concurrency` clients sharing one connection pool.
async fn measure_http(
    served: &Served,
    queries: &[SearchQuery],
    concurrency: usize,
) -> Result<Measurement> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let urls: Arc<Vec<String>> = Arc::new(
        queries
            .iter()
            .map(|q| search_url(served.base(), q))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, urls, next, token) = (
                client.clone(),
                urls.clone(),
                next.clone(),
                served.token.clone(),
            );
            tokio::spawn(async move {
                let mut lat = Latencies::default();
                let mut results = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(url) = urls.get(i) else { break };
                    let t = Instant::now();
                    let resp = client.get(url).bearer_auth(&token).send().await?;
                    if !resp.status().is_success() {
                        bail!(
                            "search answered {}: {}",
                            resp.status(),
                            resp.text().await.unwrap_or_default()
                        );
                    }
                    let body: serde_json::Value = resp.json().await?;
                    lat.record(t.elapsed().as_micros());
                    results += body["merchants"].as_array().map_or(0, Vec::len);
                }
                anyhow::Ok((lat, results))
            })
        })
        .collect();
    let mut latencies = Latencies::default();
    let mut results = 0;
    for t in tasks {
        let (l, r) = t.await??;
        latencies.merge(l);
        results += r;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Measurement {
        target: "http",
        clients: concurrency,
        queries: queries.len(),
        seconds,
        queries_per_sec: queries.len() as f64 / seconds,
        p50_ms: latencies.percentile_ms(50.0),
        p99_ms: latencies.percentile_ms(99.0),
        mean_results: results as f64 / queries.len().max(1) as f64,
    })
}

/// Measures the HTTP search endpoint of `served` with wrk: `concurrency`
/// connections for `seconds`, cycling through `queries` in order (thread
/// `t` of `n` sends queries `t`, `t + n`, …, formatted before the run);
/// every answer must be a success. wrk reads no body (a Lua hook per answer costs the shared cores
/// more than the server's search does), so the mean of results is taken
/// afterwards from the first [`RESULT_SAMPLE`] queries through reqwest.
async fn measure_http_wrk(
    served: &Served,
    queries: &[SearchQuery],
    concurrency: usize,
    seconds: u64,
) -> Result<Measurement> {
    let (paths, file) = super::wrk::scratch_file("geo-queries", "txt")?;
    let mut file = std::io::BufWriter::new(file);
    for q in queries {
        writeln!(file, "{}", search_url("", q))?;
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let threads = 2.min(concurrency);
    // Each thread formats its share of the requests once, before the run,
    // as the Redis target's commands are encoded before its clients start:
    // formatting per request in Lua cost the shared cores ~5% of the run.
    let script = format!(
        r#"
local requests = {{}}
function init(args)
  local threads = {threads}
  local headers = {{["Authorization"] = "Bearer {token}"}}
  local i = 0
  for line in io.lines("{file}") do
    if i % threads == tid then requests[#requests + 1] = wrk.format("GET", line, headers) end
    i = i + 1
  end
end
local sent = 0
function request()
  sent = sent + 1
  return requests[(sent - 1) % #requests + 1]
end
"#,
        file = paths.display(),
        token = served.token,
    );
    let run = super::wrk::run(
        served.base(),
        &script,
        seconds,
        concurrency,
        threads,
        super::wrk::Expect::Success,
    );
    let _ = std::fs::remove_file(&paths);
    let run = run?;
    if run.failed > 0 {
        bail!("{} of the HTTP searches did not succeed", run.failed);
    }
    let sample = &queries[..RESULT_SAMPLE.min(queries.len())];
    let sampled = measure_http(served, sample, concurrency).await?;
    Ok(Measurement {
        target: "http",
        clients: concurrency,
        queries: run.ok as usize,
        seconds: run.seconds,
        queries_per_sec: run.ok as f64 / run.seconds.max(1e-9),
        p50_ms: run.p50_ms,
        p99_ms: run.p99_ms,
        mean_results: sampled.mean_results,
    })
}

/// Queries whose answers the wrk target counts results on.
const RESULT_SAMPLE: usize = 1_000;

// ---------------------------------------------------------------------------
// Redis: a private redis-server and a minimal RESP client (the few commands
// used here need no more; the root crate stays free of a client library).

/// A RESP reply.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// Parses one reply from the front of `buf`; `None` if it is incomplete.
fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let Some((&kind, line)) = buf[..end].split_first() else {
        bail!("empty RESP line");
    };
    let line = std::str::from_utf8(line).context("RESP line is not UTF-8")?;
    let rest = end + 2;
    let number = || {
        line.parse::<i64>()
            .with_context(|| format!("bad RESP length `{line}`"))
    };
    Ok(Some(match kind {
        b'+' => (Reply::Simple(line.to_owned()), rest),
        b'-' => (Reply::Error(line.to_owned()), rest),
        b':' => (Reply::Int(number()?), rest),
        b'$' => {
            let n = number()?;
            if n < 0 {
                return Ok(Some((Reply::Bulk(None), rest)));
            }
            let n = n as usize;
            if buf.len() < rest + n + 2 {
                return Ok(None);
            }
            (
                Reply::Bulk(Some(buf[rest..rest + n].to_vec())),
                rest + n + 2,
            )
        }
        b'*' => {
            let n = number()?;
            if n < 0 {
                return Ok(Some((Reply::Array(None), rest)));
            }
            let mut items = Vec::with_capacity(n as usize);
            let mut at = rest;
            for _ in 0..n {
                let Some((item, used)) = parse_reply(&buf[at..])? else {
                    return Ok(None);
                };
                items.push(item);
                at += used;
            }
            (Reply::Array(Some(items)), at)
        }
        other => bail!("unexpected RESP type byte {other}"),
    }))
}

/// Appends a command to `out` in RESP.
fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One connection to Redis.
struct Resp {
    stream: TcpStream,
    /// Bytes read and not yet parsed.
    buf: Vec<u8>,
}

impl Resp {
    async fn connect(port: u16) -> Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Resp {
            stream,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    async fn read(&mut self) -> Result<Reply> {
        loop {
            if let Some((reply, used)) = parse_reply(&self.buf)? {
                self.buf.drain(..used);
                if let Reply::Error(e) = reply {
                    bail!("redis: {e}");
                }
                return Ok(reply);
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("redis closed the connection");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn call(&mut self, args: &[&[u8]]) -> Result<Reply> {
        let mut out = Vec::new();
        encode(args, &mut out);
        self.send(&out).await?;
        self.read().await
    }
}

/// A redis-server of our own on a free loopback port, without persistence.
struct RedisServer {
    child: tokio::process::Child,
    port: u16,
}

impl RedisServer {
    async fn start() -> Result<Self> {
        let bin = Path::new("/usr/bin/redis-server");
        if !bin.exists() {
            bail!(
                "{} is absent: install Redis with `apt-get install redis-server` \
                 (or run `bench geo` without Redis)",
                bin.display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server")?;
        let server = RedisServer { child, port };
        for _ in 0..100 {
            if let Ok(mut c) = Resp::connect(port).await {
                if c.call(&[b"PING"]).await.is_ok() {
                    return Ok(server);
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        bail!("redis-server did not answer on port {port} within 5 s")
    }

    fn rss_mb(&self) -> Option<f64> {
        rss_mb(&self.child.id()?.to_string())
    }

    async fn stop(mut self) {
        if let Ok(mut c) = Resp::connect(self.port).await {
            // The server closes the connection instead of answering.
            let _ = c.call(&[b"SHUTDOWN", b"NOSAVE"]).await;
        }
        if tokio::time::timeout(std::time::Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

fn key(category: Category) -> String {
    format!("merchants:{}", category.as_str())
}

/// GEOADD every merchant under its category's key, 1000 per command, a
/// category's commands pipelined.
async fn load_redis(port: u16, city: &[MerchantRegistered]) -> Result<()> {
    let mut conn = Resp::connect(port).await?;
    for c in Category::ALL {
        let members: Vec<(String, String, String)> = city
            .iter()
            .filter(|r| r.profile.category == c)
            .map(|r| {
                let at = r.profile.location;
                (
                    at.lng.to_string(),
                    at.lat.to_string(),
                    r.merchant_id.to_string(),
                )
            })
            .collect();
        let key = key(c);
        let mut out = Vec::new();
        let mut commands = 0;
        for batch in members.chunks(1000) {
            let mut args: Vec<&[u8]> = vec![b"GEOADD", key.as_bytes()];
            for (lng, lat, id) in batch {
                args.extend([lng.as_bytes(), lat.as_bytes(), id.as_bytes()]);
            }
            encode(&args, &mut out);
            commands += 1;
        }
        conn.send(&out).await?;
        for _ in 0..commands {
            conn.read().await?;
        }
    }
    Ok(())
}

/// `GEOSEARCH <category> FROMLONLAT lng lat BYRADIUS 3 km ASC [COUNT 20]`.
fn geosearch(q: &SearchQuery, count: bool, withdist: bool) -> Vec<u8> {
    let (key, lng, lat) = (
        key(q.category()),
        q.point().lng.to_string(),
        q.point().lat.to_string(),
    );
    let radius = (RADIUS_M / 1000.0).to_string();
    let mut args: Vec<&[u8]> = vec![
        b"GEOSEARCH",
        key.as_bytes(),
        b"FROMLONLAT",
        lng.as_bytes(),
        lat.as_bytes(),
        b"BYRADIUS",
        radius.as_bytes(),
        b"km",
        b"ASC",
    ];
    let k = K.to_string();
    if count {
        args.extend([b"COUNT".as_slice(), k.as_bytes()]);
    }
    if withdist {
        args.push(b"WITHDIST");
    }
    let mut out = Vec::new();
    encode(&args, &mut out);
    out
}

/// The member names of a GEOSEARCH reply (with or without WITHDIST).
fn members(reply: Reply) -> Vec<String> {
    let Reply::Array(Some(items)) = reply else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| match item {
            Reply::Bulk(Some(b)) => Some(b),
            Reply::Array(Some(mut pair)) if !pair.is_empty() => match pair.swap_remove(0) {
                Reply::Bulk(Some(b)) => Some(b),
                _ => None,
            },
            _ => None,
        })
        .filter_map(|b| String::from_utf8(b).ok())
        .collect()
}

/// The queries against Redis from `clients` connections, each sending its
/// next query when the previous answer arrived.
async fn measure_redis(port: u16, queries: &[SearchQuery], clients: usize) -> Result<Measurement> {
    let commands: Vec<Vec<u8>> = queries.iter().map(|q| geosearch(q, true, false)).collect();
    let commands = std::sync::Arc::new(commands);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let commands = commands.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Resp::connect(port).await?;
            let mut lat = Latencies::default();
            let mut results = 0usize;
            for cmd in commands.iter().skip(c).step_by(clients) {
                let t = Instant::now();
                conn.send(cmd).await?;
                let reply = conn.read().await?;
                lat.record(t.elapsed().as_micros());
                if let Reply::Array(Some(items)) = reply {
                    results += items.len();
                }
            }
            anyhow::Ok((lat, results))
        }));
    }
    let mut latencies = Latencies::default();
    let mut results = 0;
    for task in tasks {
        let (lat, r) = task.await??;
        latencies.merge(lat);
        results += r;
    }
    let seconds = t.elapsed().as_secs_f64();
    Ok(Measurement {
        target: "redis",
        clients,
        queries: queries.len(),
        seconds,
        queries_per_sec: queries.len() as f64 / seconds,
        p50_ms: latencies.percentile_ms(50.0),
        p99_ms: latencies.percentile_ms(99.0),
        mean_results: results as f64 / queries.len().max(1) as f64,
    })
}

/// Distances closer than this are a tie: Redis stores points as 52-bit
/// geohashes (about 0.6 m) and measures on a slightly different sphere.
const TIE_M: f64 = 1.0;

/// Whether Redis, asked for everything within 3 km and filtered by the same
/// rules (serves the point, open, not paused), ranks like the index.
/// Positions may differ only between merchants whose distances tie, and
/// the lists only by merchants at the 3 km edge, where the two spheres'
/// radii disagree by about a metre.
fn agrees(model: &MerchantSearch, q: &SearchQuery, ours: &[SearchHit], redis: Vec<String>) -> bool {
    let theirs: Vec<SearchHit> = redis
        .iter()
        .filter_map(|m| MerchantId::parse(m).ok())
        .filter_map(|id| model.matches(id, q))
        .take(K)
        .collect();
    let n = ours.len().min(theirs.len());
    let edge = RADIUS_M - 5.0;
    let same = ours[..n].iter().zip(&theirs[..n]).all(|(a, b)| {
        a.merchant_id == b.merchant_id || (a.distance_m - b.distance_m).abs() < TIE_M
    });
    let tails_at_edge = ours[n..]
        .iter()
        .chain(&theirs[n..])
        .all(|h| h.distance_m >= edge);
    same && tails_at_edge
}

/// How many sampled queries Redis and the index answer alike.
async fn agreement(
    port: u16,
    model: &MerchantSearch,
    queries: &[SearchQuery],
) -> Result<(usize, usize)> {
    let mut conn = Resp::connect(port).await?;
    let mut agreed = 0;
    for q in queries {
        conn.send(&geosearch(q, false, false)).await?;
        let redis = members(conn.read().await?);
        if agrees(model, q, &model.search(q), redis) {
            agreed += 1;
        }
    }
    Ok((agreed, queries.len()))
}

fn print_measurement(out: &mut impl Write, json: bool, m: &Measurement) -> Result<()> {
    if json {
        let line = json!({
            "bench": "geo", "target": m.target, "clients": m.clients, "queries": m.queries,
            "seconds": m.seconds, "queries_per_sec": m.queries_per_sec.round(),
            "p50_ms": m.p50_ms, "p99_ms": m.p99_ms, "mean_results": m.mean_results,
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "{:<10} {:>8} {:>9} {:>13.0} {:>9.3} {:>9.3} {:>8.1}",
            m.target, m.clients, m.queries, m.queries_per_sec, m.p50_ms, m.p99_ms, m.mean_results
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Runs the benchmark (see the module doc).
pub async fn run(opts: GeoBench) -> Result<()> {
    if opts.merchants == 0 || opts.queries == 0 || opts.concurrency == 0 {
        bail!("--merchants, --queries and --concurrency must be positive");
    }
    let mut out = std::io::stdout().lock();
    eprintln!(
        "building a city of {} merchants (seed {})…",
        opts.merchants, opts.seed
    );
    let city = synthetic_city(opts.merchants, opts.seed);
    let queries = query_set(opts.queries, opts.seed, opts.local_hour);
    let rss_before = rss_mb("self").unwrap_or(0.0);
    eprintln!("folding {} registrations into the index…", city.len());
    let (model, events_per_sec) = fold(&city);
    let rss = rss_mb("self").unwrap_or(0.0);
    let snapshot = snapshot_cost(&model)?;
    let stats = model.stats();
    if opts.json {
        let line = json!({
            "bench": "geo", "measurement": "fold", "merchants": model.len(),
            "events_per_sec": events_per_sec.round(), "resolution": u8::from(model.resolution()),
            "index_buckets": stats.buckets, "index_entries": stats.entries,
            "largest_bucket": stats.largest_bucket,
        });
        writeln!(out, "{line}")?;
        let line = json!({
            "bench": "geo", "measurement": "snapshot", "copy_ms": snapshot.copy_ms,
            "serialise_ms": snapshot.serialise_ms, "json_mb": snapshot.json_mb,
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "folded {} registrations at {events_per_sec:.0} events/s; resolution {}: {} buckets, \
             {} entries (largest {}); RSS {rss:.0} MB ({:.0} MB for the index)",
            model.len(),
            u8::from(model.resolution()),
            stats.buckets,
            stats.entries,
            stats.largest_bucket,
            rss - rss_before
        )?;
        writeln!(
            out,
            "snapshot of the index: copying it takes {:.1} ms (the runner's pause), \
             serialising it {:.1} ms ({:.1} MB of JSON, written off the fold path)",
            snapshot.copy_ms, snapshot.serialise_ms, snapshot.json_mb
        )?;
        writeln!(
            out,
            "{:<10} {:>8} {:>9} {:>13} {:>9} {:>9} {:>8}",
            "target", "clients", "queries", "queries/s", "p50 ms", "p99 ms", "results"
        )?;
    }
    eprintln!("{} in-process queries…", queries.len());
    let inprocess = measure_inprocess(&model, &queries);
    print_measurement(&mut out, opts.json, &inprocess)?;

    let mut http = None;
    if opts.http {
        eprintln!("starting `o2ohub serve` on a store holding the city…");
        let served = Served::start(&city).await?;
        let measured = match opts.client {
            LoadClient::Wrk => {
                eprintln!(
                    "HTTP queries for {} s from {} connections (wrk)…",
                    opts.seconds, opts.concurrency
                );
                measure_http_wrk(&served, &queries, opts.concurrency, opts.seconds).await
            }
            LoadClient::Builtin => {
                eprintln!(
                    "{} HTTP queries from {} clients…",
                    queries.len(),
                    opts.concurrency
                );
                measure_http(&served, &queries, opts.concurrency).await
            }
        };
        served.stop();
        let m = measured?;
        print_measurement(&mut out, opts.json, &m)?;
        http = Some(m);
    }

    let mut redis_result = None;
    if opts.redis {
        eprintln!("starting redis-server…");
        let server = RedisServer::start().await?;
        let outcome = async {
            eprintln!("loading {} merchants into redis…", city.len());
            load_redis(server.port, &city).await?;
            eprintln!(
                "{} redis queries from {} clients…",
                queries.len(),
                opts.concurrency
            );
            let m = measure_redis(server.port, &queries, opts.concurrency).await?;
            let sample = &queries[..queries.len().min(1000)];
            let agreed = agreement(server.port, &model, sample).await?;
            anyhow::Ok((m, agreed, server.rss_mb()))
        }
        .await;
        server.stop().await;
        let (m, agreed, redis_rss) = outcome?;
        print_measurement(&mut out, opts.json, &m)?;
        redis_result = Some((m, agreed, redis_rss));
    }

    let ratio = redis_result
        .as_ref()
        .map(|(m, _, _)| (inprocess.queries_per_sec / m.queries_per_sec * 100.0).round() / 100.0);
    let http_ratio = match (&http, &redis_result) {
        (Some(h), Some((r, _, _))) => {
            Some((h.queries_per_sec / r.queries_per_sec * 100.0).round() / 100.0)
        }
        _ => None,
    };
    let agreement_rate = redis_result
        .as_ref()
        .map(|(_, (a, n), _)| *a as f64 / (*n).max(1) as f64);
    let redis_rss = redis_result.as_ref().and_then(|(_, _, r)| *r);
    if opts.json {
        let line = json!({
            "bench": "geo", "rss_mb": rss.round(), "index_rss_mb": (rss - rss_before).round(),
            "ratio_inprocess_vs_redis": ratio, "ratio_http_vs_redis": http_ratio, "agreement_rate": agreement_rate,
            "agreement_sample": redis_result.as_ref().map(|(_, (_, n), _)| n),
            "redis_rss_mb": redis_rss.map(f64::round),
        });
        writeln!(out, "{line}")?;
    } else if let (Some(ratio), Some(rate)) = (ratio, agreement_rate) {
        writeln!(
            out,
            "in-process answers {ratio:.2}x the queries/s of Redis at {} clients; \
             {:.1}% of {} sampled queries return the same merchants in the same order \
             (Redis RSS {:.0} MB, ours {rss:.0} MB)",
            opts.concurrency,
            rate * 100.0,
            opts.queries.min(1000),
            redis_rss.unwrap_or(0.0)
        )?;
        if let Some(r) = http_ratio {
            writeln!(
                out,
                "over HTTP against `o2ohub serve`: {r:.2}x the queries/s of Redis at {} clients",
                opts.concurrency
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_city_is_deterministic_and_valid() {
        let a = synthetic_city(500, 7);
        assert_eq!(a, synthetic_city(500, 7));
        assert_ne!(a, synthetic_city(500, 8));
        for r in &a {
            r.profile.service_area.validate().unwrap();
            r.profile.opening_hours.validate().unwrap();
        }
        assert_eq!(query_set(50, 7, 10), query_set(50, 7, 10));
    }

    #[test]
    fn every_query_finds_the_shops_open() {
        let city = synthetic_city(2000, 3);
        let mut model = MerchantSearch::new();
        for (i, r) in city.iter().enumerate() {
            model.apply(&registration_envelope(i as u64 + 1, r));
        }
        let queries = query_set(200, 3, 10);
        let found = queries
            .iter()
            .filter(|q| !model.search(q).is_empty())
            .count();
        assert!(found > 150, "{found}");
        for q in &queries {
            assert_eq!(model.search(q), model.search_by_scan(q));
        }
    }

    #[test]
    fn resp_replies_parse_whole_or_not_at_all() {
        let reply = b"*2\r\n$3\r\nabc\r\n*2\r\n$1\r\nx\r\n$3\r\n1.5\r\n";
        let (r, used) = parse_reply(reply).unwrap().unwrap();
        assert_eq!(used, reply.len());
        assert_eq!(members(r), vec!["abc".to_owned(), "x".to_owned()]);
        assert!(parse_reply(&reply[..reply.len() - 3]).unwrap().is_none());
        assert_eq!(parse_reply(b":12\r\n").unwrap().unwrap().0, Reply::Int(12));
        assert_eq!(
            parse_reply(b"-ERR no\r\n").unwrap().unwrap().0,
            Reply::Error("ERR no".to_owned())
        );
        let mut out = Vec::new();
        encode(&[b"PING"], &mut out);
        assert_eq!(out, b"*1\r\n$4\r\nPING\r\n");
    }
}
