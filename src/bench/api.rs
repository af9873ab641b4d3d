//! `o2ohub bench api`: booking commands end to end over HTTP. A separate
//! `o2ohub serve` process on a scratch data directory (the embedded store,
//! durable commits); operators register merchants whose services hold
//! plenty of seats per slot, then `concurrency` clients book visits —
//! `POST /v1/visits` with a bearer token and an `Idempotency-Key`, each a
//! multi-stream commit of the visit and its slot — spread over merchants and
//! slots so that concurrent bookings rarely share a slot stream. Prints
//! commands/s and p50/p99 latency of the whole request.
//!
//! The measured bookings come from `wrk` by default (a separate C process
//! on epoll: what is measured is the server, not a Rust client sharing its
//! two cores), or from reqwest tasks in this process (`--client builtin`,
//! a fixed count). The warm-up and the set-up always use reqwest.

use anyhow::{bail, Result};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::latency::Latencies;
use super::served::Served;
use super::wrk::LoadClient;
use o2ohub_events::Role;

/// Options of one run.
#[derive(Debug, Clone)]
pub struct ApiBench {
    /// Bookings measured (after a warm-up of `concurrency × 4`) with the
    /// built-in client.
    pub commands: usize,
    /// Seconds of bookings measured with wrk (which runs for a time, not a
    /// count).
    pub seconds: u64,
    /// Clients sending at once.
    pub concurrency: usize,
    /// Merchants the bookings are spread over.
    pub merchants: usize,
    /// One JSON object instead of a table.
    pub json: bool,
    /// What sends the measured bookings (the warm-up always uses the
    /// built-in client).
    pub client: LoadClient,
}

/// Consumers the bookings come from (one token each).
const CONSUMERS: usize = 256;
/// Bookable slots per merchant used: a week of 15-minute slots.
const SLOTS: usize = 7 * 96;

/// A merchant open around the clock whose one service seats `capacity` per slot.
fn merchant(n: usize, capacity: u32) -> serde_json::Value {
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .map(|d| json!({"day": d, "open": 0, "close": 1440}));
    json!({
        "name": format!("Bench Salon {n}"), "category": "salon",
        "location": {"lat": 31.2 + (n % 100) as f64 * 0.001, "lng": 121.4 + (n / 100) as f64 * 0.001},
        "opening_hours": {"utc_offset_minutes": 0,
            "intervals": days},
        "services": [{"service_id": "cut", "name": "Cut", "duration_minutes": 15,
                      "price": {"minor": 2500, "currency": "EUR"}, "slot_capacity": capacity}],
        "service_area": {"kind": "radius", "meters": 5000}, "rating_tenths": 40
    })
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Bookings answered 201.
    pub commands: usize,
    /// Other answers (conflicts, errors).
    pub failed: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Throughput.
    pub commands_per_sec: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

/// Sends bookings `from..to` of the plan from `concurrency` clients.
async fn drive(
    client: &reqwest::Client,
    url: &str,
    merchants: &Arc<Vec<String>>,
    tokens: &Arc<Vec<String>>,
    first_slot: DateTime<Utc>,
    (from, to): (usize, usize),
    concurrency: usize,
) -> Result<Measurement> {
    let next = Arc::new(AtomicUsize::new(from));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, merchants, tokens, next) = (
                client.clone(),
                url.to_owned(),
                merchants.clone(),
                tokens.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                let mut lat = Latencies::default();
                let mut failed = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= to {
                        break;
                    }
                    // Consecutive commands go to different merchants, then different slots.
                    let m = i % merchants.len();
                    let slot =
                        first_slot + Duration::minutes(15 * ((i / merchants.len()) % SLOTS) as i64);
                    let body = format!(
                        r#"{{"merchant_id":"{}","service_id":"cut","slot_start":"{}"}}"#,
                        merchants[m],
                        slot.format("%Y-%m-%dT%H:%M:%SZ")
                    );
                    let t = Instant::now();
                    let resp = client
                        .post(&url)
                        .bearer_auth(&tokens[i % tokens.len()])
                        .header("idempotency-key", format!("bench-{i}"))
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await?;
                    let ok = resp.status() == reqwest::StatusCode::CREATED;
                    let _ = resp.bytes().await?;
                    lat.record(t.elapsed().as_micros());
                    failed += usize::from(!ok);
                }
                anyhow::Ok((lat, failed))
            })
        })
        .collect();
    let mut latencies = Latencies::default();
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await??;
        latencies.merge(l);
        failed += f;
    }
    let seconds = started.elapsed().as_secs_f64();
    let answered = latencies.len();
    Ok(Measurement {
        commands: answered - failed,
        failed,
        seconds,
        commands_per_sec: (answered - failed) as f64 / seconds,
        p50_ms: latencies.percentile_ms(50.0),
        p99_ms: latencies.percentile_ms(99.0),
    })
}

/// Sends bookings from `from` on, of the same plan as [`drive`], through wrk
/// for `seconds`.
fn drive_wrk(
    base: &str,
    merchants: &[String],
    tokens: &[String],
    first_slot: DateTime<Utc>,
    (from, seconds): (usize, u64),
    concurrency: usize,
) -> Result<Measurement> {
    let list = |items: &[String]| {
        items
            .iter()
            .map(|m| format!("\"{m}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    // Request `n` of thread `tid` is booking `from + n * threads + tid`:
    // the threads interleave over the same plan the built-in client follows.
    let threads = 2.min(concurrency);
    let script = format!(
        r#"
local merchants = {{{merchants}}}
local tokens = {{{tokens}}}
local first_slot, slots, from, threads = {first}, {SLOTS}, {from}, {threads}
-- Everything that does not change per request is formatted once, here, so
-- the load generator spends little of the two cores the server runs on.
local bodies, slot_texts, authorizations = {{}}, {{}}, {{}}
for m = 1, #merchants do
  bodies[m] = '{{"merchant_id":"' .. merchants[m] .. '","service_id":"cut","slot_start":"'
end
for s = 0, slots - 1 do
  slot_texts[s] = os.date("!%Y-%m-%dT%H:%M:%SZ", first_slot + 900 * s) .. '"}}'
end
for t = 1, #tokens do
  authorizations[t] = "\r\nAuthorization: Bearer " .. tokens[t] .. "\r\nIdempotency-Key: bench-"
end
local head
local sent = 0
function request()
  head = head or ("POST /v1/visits HTTP/1.1\r\nHost: " .. wrk.headers["Host"])
  local i = from + sent * threads + tid
  sent = sent + 1
  local body = bodies[i % #merchants + 1] .. slot_texts[math.floor(i / #merchants) % slots]
  return head .. authorizations[i % #tokens + 1] .. i
    .. "\r\nContent-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end
"#,
        merchants = list(merchants),
        tokens = list(tokens),
        first = first_slot.timestamp(),
    );
    let run = super::wrk::run(
        base,
        &script,
        seconds,
        concurrency,
        threads,
        super::wrk::Expect::Status(201),
    )?;
    Ok(Measurement {
        commands: run.ok as usize,
        failed: run.failed as usize,
        seconds: run.seconds,
        commands_per_sec: run.ok as f64 / run.seconds.max(1e-9),
        p50_ms: run.p50_ms,
        p99_ms: run.p99_ms,
    })
}

/// Runs the benchmark (see the module doc).
pub async fn run(opts: ApiBench) -> Result<()> {
    if opts.commands == 0 || opts.concurrency == 0 || opts.merchants == 0 {
        bail!("--commands, --concurrency and --merchants must be positive");
    }
    let warmup = opts.concurrency * 4;
    // Bookings the run can make at most: wrk's at a rate no 2-core machine reaches.
    let most = match opts.client {
        LoadClient::Builtin => opts.commands,
        LoadClient::Wrk => opts.seconds as usize * 100_000,
    };
    // Every (merchant, slot) pair is booked this often at most: seats to spare.
    let per_slot = (most + warmup).div_ceil(opts.merchants * SLOTS) as u32 + 1;
    if per_slot > 10_000 {
        bail!(
            "too many commands for {} merchants: raise --merchants",
            opts.merchants
        );
    }
    eprintln!("starting `o2ohub serve` on a scratch data directory…");
    let served = Served::start(Served::scratch("api")?, std::time::Duration::from_secs(60)).await?;
    let result = measure(&served, &opts, warmup, per_slot).await;
    served.stop();
    let m = result?;
    if opts.json {
        println!(
            "{}",
            json!({
                "bench": "api", "target": "book_visit", "clients": opts.concurrency,
                "load": format!("{:?}", opts.client).to_lowercase(),
                "merchants": opts.merchants, "commands": m.commands, "failed": m.failed,
                "seconds": m.seconds, "commands_per_sec": m.commands_per_sec.round(),
                "p50_ms": m.p50_ms, "p99_ms": m.p99_ms,
            })
        );
    } else {
        println!("command      clients  commands  failed   commands/s    p50 ms    p99 ms");
        println!(
            "book_visit {:>9} {:>9} {:>7} {:>12.0} {:>9.3} {:>9.3}",
            opts.concurrency, m.commands, m.failed, m.commands_per_sec, m.p50_ms, m.p99_ms
        );
    }
    if m.failed * 100 > m.commands {
        bail!("{} of {} bookings failed", m.failed, m.commands + m.failed);
    }
    Ok(())
}

async fn measure(
    served: &Served,
    opts: &ApiBench,
    warmup: usize,
    per_slot: u32,
) -> Result<Measurement> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.concurrency)
        .build()?;
    let admin = served.token(Role::Admin, "bench".into())?;
    eprintln!(
        "registering {} merchants ({per_slot} seats per slot)…",
        opts.merchants
    );
    let mut merchants = Vec::with_capacity(opts.merchants);
    for n in 0..opts.merchants {
        let resp = client
            .post(format!("{}/v1/merchants", served.base))
            .bearer_auth(&admin)
            .json(&merchant(n, per_slot))
            .send()
            .await?;
        if resp.status() != reqwest::StatusCode::CREATED {
            bail!(
                "registering a merchant answered {}: {}",
                resp.status(),
                resp.text().await?
            );
        }
        let body: serde_json::Value = resp.json().await?;
        merchants.push(body["merchant_id"].as_str().unwrap_or_default().to_owned());
    }
    let tokens = (0..CONSUMERS)
        .map(|_| served.token(Role::Consumer, uuid::Uuid::now_v7().to_string()))
        .collect::<Result<Vec<_>>>()?;
    let (merchants, tokens) = (Arc::new(merchants), Arc::new(tokens));
    // The first slot on the grid at least an hour from now.
    let first_slot = (Utc::now() + Duration::hours(1)).duration_trunc(Duration::minutes(15))?;
    let url = format!("{}/v1/visits", served.base);
    eprintln!("warming up ({warmup} bookings)…");
    drive(
        &client,
        &url,
        &merchants,
        &tokens,
        first_slot,
        (0, warmup),
        opts.concurrency,
    )
    .await?;
    match opts.client {
        LoadClient::Wrk => eprintln!(
            "booking visits for {} s from {} connections (wrk)…",
            opts.seconds, opts.concurrency
        ),
        LoadClient::Builtin => eprintln!(
            "booking {} visits from {} clients (built-in client)…",
            opts.commands, opts.concurrency
        ),
    }
    if opts.client == LoadClient::Wrk {
        return drive_wrk(
            &served.base,
            &merchants,
            &tokens,
            first_slot,
            (warmup, opts.seconds),
            opts.concurrency,
        );
    }
    let measured = (warmup, warmup + opts.commands);
    drive(
        &client,
        &url,
        &merchants,
        &tokens,
        first_slot,
        measured,
        opts.concurrency,
    )
    .await
}
