//! `o2ohub demo` end to end: a small city plays two simulated hours against a
//! real hub over a real socket, and the day's invariants hold — every
//! booking settled, every delivered order picked up first, the events
//! counted equal the store's, every read model rebuilt from the log equal to
//! the live one. Also: the report is self-contained, the data directory is
//! claimed for one seed, and nonsensical flags are usage errors.
//!
//! The accelerated business clock is process-wide and installed once, so
//! this file plays exactly one demo.

use o2ohub::demo::{claim_data_dir, run, DemoOptions};
use std::process::Command;

fn options(dir: &std::path::Path) -> DemoOptions {
    DemoOptions {
        seed: 11,
        merchants: 24,
        riders: 8,
        hours: 2.0,
        speed: 900.0,
        data_dir: dir.join("demo"),
        serve: false,
        report: Some(dir.join("demo.html")),
        print: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_demo_keeps_the_day_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let summary = run(opts.clone()).await.unwrap();
    let f = &summary.figures;

    assert!(f.visits.booked > 0, "the hour booked visits: {summary}");
    assert!(f.orders.placed > 0, "the hour placed orders: {summary}");
    // Every booking ends redeemed, cancelled or no-show.
    assert_eq!(f.visits.unsettled, 0, "{summary}");
    assert_eq!(
        f.visits.booked,
        f.visits.redeemed + f.visits.cancelled + f.visits.no_shows,
        "{summary}"
    );
    // The dispatcher offered, riders accepted, picked up and handed over.
    assert!(f.orders.offers_accepted > 0, "{summary}");
    assert!(f.orders.delivered > 0, "{summary}");
    // Every delivered order was picked up first.
    assert_eq!(f.orders.delivered_without_pickup, 0, "{summary}");
    assert!(f.orders.delivered <= f.orders.picked_up);
    // Paid exactly once per order; a cancelled paid order is refunded.
    assert_eq!(f.orders.paid, f.orders.placed);
    assert_eq!(f.orders.refunded, f.orders.cancelled);
    // Events written equals the store's count; the log alone tells the story.
    assert_eq!(f.events, summary.store_events);
    assert!(summary.store_events > 0);
    // Rebuilding every projection from the log equals the live read models.
    assert_eq!(summary.rebuilt.len(), 6);
    for r in &summary.rebuilt {
        assert!(r.equal, "{} differs after a rebuild: {summary}", r.name);
    }
    assert!(summary.all_checks_hold(), "{summary}");
    // Failures on the wire are incidental at most.
    assert!(
        summary.failed * 20 <= summary.requests,
        "{} of {} requests failed: {:?}",
        summary.failed,
        summary.requests,
        summary.failures
    );

    // The day's demand is recorded next to the log, for replays.
    let demand: serde_json::Value =
        serde_json::from_slice(&std::fs::read(opts.data_dir.join("demand.json")).unwrap()).unwrap();
    assert_eq!(
        demand["demands"].as_array().map(Vec::len),
        Some(summary.demands)
    );

    // The report is one self-contained file with its charts.
    let html = std::fs::read_to_string(opts.report.as_ref().unwrap()).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.matches("<svg").count() >= 4, "charts are inline SVG");
    assert!(html.contains("<polygon"), "the hex map has cells");
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "nothing is fetched"
    );

    // The data directory belongs to seed 11 now: another seed is refused,
    // and so is playing the same day over itself.
    let other = DemoOptions {
        seed: 12,
        ..opts.clone()
    };
    let refused = claim_data_dir(&other).unwrap_err().to_string();
    assert!(
        refused.contains("seed 11") && refused.contains("start fresh"),
        "{refused}"
    );
    let again = claim_data_dir(&opts).unwrap_err().to_string();
    assert!(
        again.contains("already holds the day of seed 11"),
        "{again}"
    );

    // Replay: the recorded deliveries, re-dispatched in the simulation under
    // both policies, are all delivered; the recorded column is the log's.
    let store = o2ohub::store::embedded::EmbeddedStore::open(&opts.data_dir).unwrap();
    let (day, recorded) = o2ohub::replay::recorded_day(&store, 10).await.unwrap();
    store.shutdown().await;
    assert_eq!(recorded.orders as u64, f.orders.ready as u64, "{summary}");
    assert_eq!(
        recorded.delivered as u64, f.orders.delivered as u64,
        "{summary}"
    );
    for policy in [
        o2ohub::dispatch::Policy::Global,
        o2ohub::dispatch::Policy::Greedy,
    ] {
        let replayed = o2ohub::dispatch::sim::play(&day, policy);
        assert_eq!(replayed.orders, recorded.orders);
        assert_eq!(replayed.delivered, replayed.orders, "{replayed:?}");
    }
}

#[test]
fn a_directory_holding_another_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("demo/log")).unwrap();
    let refused = claim_data_dir(&options(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("holds no demo"), "{refused}");
}

#[test]
fn nonsensical_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    for (flags, says) in [
        (vec!["--riders", "0"], "--riders"),
        (vec!["--merchants", "0"], "--merchants"),
        (vec!["--hours", "-2"], "--hours"),
        (vec!["--hours", "0"], "--hours"),
        (vec!["--speed", "0"], "--speed"),
        (vec!["--speed", "NaN"], "--speed"),
        (vec!["--riders", "many"], "--riders"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_o2ohub"))
            .arg("demo")
            .args(&flags)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?} was accepted");
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
        assert!(!data.exists(), "{flags:?} touched the data directory");
    }
}
