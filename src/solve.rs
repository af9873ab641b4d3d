//! `o2ohub solve FILE`: reads a Li & Lim PDPTW instance, runs the route
//! optimiser within a time budget, prints one JSON line and optionally writes
//! the routes in the SINTEF format the benchmark verifier checks.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::routing::{lilim, solve_model, Budget, Model, Params, SystemClock};

/// Runs `o2ohub solve`.
pub fn run(
    file: &Path,
    seconds: f64,
    seed: u64,
    iterations: Option<u64>,
    out: Option<&Path>,
) -> Result<()> {
    if !(seconds.is_finite() && seconds > 0.0) {
        bail!("--time takes a positive number of seconds");
    }
    let started = Instant::now();
    let clock = SystemClock::start();
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let instance =
        lilim::parse_named(&text, &name).with_context(|| format!("{}", file.display()))?;
    let model = Model::new(&instance.problem).with_context(|| format!("{}", file.display()))?;
    let budget = Budget {
        time: Some(Duration::from_secs_f64(seconds)),
        iterations,
    };
    let solution = solve_model(&model, &budget, seed, &clock, &Params::default());
    if let Some(path) = out {
        std::fs::write(path, lilim::write_sintef(&instance, &solution, "o2ohub"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let line = serde_json::json!({
        "instance": name,
        "vehicles": solution.vehicles,
        "distance": (solution.distance * 1e4).round() / 1e4,
        "seconds": (started.elapsed().as_secs_f64() * 1e3).round() / 1e3,
        "feasible": solution.unserved.is_empty() && solution.check(&model).is_ok(),
        "unserved": solution.unserved.len(),
        "iterations": solution.iterations,
    });
    println!("{line}");
    Ok(())
}
