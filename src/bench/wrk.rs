//! `wrk` (Debian's package) as the load generator of an HTTP bench: a C
//! client on epoll that costs the shared cores far less per request than a
//! Rust client in the bench's own process, so what is measured is the
//! server. The bench gives a Lua body that defines `request()` (and may use
//! the `tid` global, the wrk thread's number); this module adds the
//! bookkeeping — it counts answers other than the expected status — runs
//! wrk for a fixed time and reads the JSON line its `done()` prints. (wrk
//! runs for its whole `--duration`; a thread cannot end the run early.)

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::process::Command;

/// The load generator of a measured HTTP run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadClient {
    /// `wrk` from Debian's package, a separate C process: the server's cost.
    Wrk,
    /// reqwest tasks in this process: a Rust client's view, sharing the cores.
    Builtin,
}

/// What one wrk run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkRun {
    /// Requests answered with the expected status.
    pub ok: u64,
    /// Requests answered otherwise, or failed at the socket.
    pub failed: u64,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

/// Which answers a run counts as served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this status, checked on every answer by a Lua `response()`
    /// hook (wrk then hands each answer's headers and body to Lua).
    Status(u16),
    /// Any status below 400, as wrk counts by itself: no per-answer Lua,
    /// for a bench whose server answers faster than the hook would run.
    Success,
}

/// The bookkeeping around a bench's `request()`: per-thread ids, answers
/// with another status counted (by the hook when `expected_status` is set,
/// else wrk's own count of statuses from 400 up), and the summary as one
/// JSON line.
const FRAME: &str = r#"
local threads = {}
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end
unexpected = 0
if expected_status then
  function response(status, headers, body)
    if status ~= expected_status then unexpected = unexpected + 1 end
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  local bad = e.status
  if expected_status then
    bad = 0
    for _, t in ipairs(threads) do bad = bad + t:get("unexpected") end
  end
  io.write(string.format(
    '{"requests":%d,"unexpected":%d,"socket_errors":%d,"micros":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, bad, e.connect + e.read + e.write + e.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
"#;

/// Sends requests to `url` for `seconds` from `connections` connections on
/// `threads` threads, each request made by the Lua `script` (which defines
/// `request()`), counting the answers `expect` does not accept as failed.
pub fn run(
    url: &str,
    script: &str,
    seconds: u64,
    connections: usize,
    threads: usize,
    expect: Expect,
) -> Result<WrkRun> {
    let threads = threads.clamp(1, connections.max(1));
    let mut file = scratch_file("wrk", "lua")?;
    let expected_status = match expect {
        Expect::Status(status) => status.to_string(),
        Expect::Success => "nil".to_owned(),
    };
    writeln!(
        file.1,
        "expected_status = {expected_status}\n{script}\n{FRAME}"
    )?;
    drop(file.1);
    let output = Command::new("wrk")
        .args([
            "--threads",
            &threads.to_string(),
            "--connections",
            &connections.to_string(),
            "--duration",
            &format!("{}s", seconds.max(1)),
            "--timeout",
            "10s",
            "--script",
        ])
        .arg(&file.0)
        .arg(url)
        .output();
    let _ = std::fs::remove_file(&file.0);
    let output = output.context(
        "cannot run wrk; install it (`apt-get install wrk` on Debian) or use --client builtin",
    )?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("wrk printed no summary:\n{stdout}"))?;
    parse_summary(line)
}

/// A private scratch file `o2ohub-<stem>-<pid>-<uuid>.<extension>` in the
/// temporary directory, for wrk's script and the data it reads.
pub fn scratch_file(stem: &str, extension: &str) -> Result<(std::path::PathBuf, std::fs::File)> {
    let path = std::env::temp_dir().join(format!(
        "o2ohub-{stem}-{}-{}.{extension}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    ));
    let file =
        std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok((path, file))
}

/// Reads the JSON line the frame's `done()` prints.
fn parse_summary(line: &str) -> Result<WrkRun> {
    let v: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("unreadable wrk summary: {line}"))?;
    let int = |k: &str| v[k].as_u64().unwrap_or(0);
    let requests = int("requests");
    let failed = int("unexpected") + int("socket_errors");
    Ok(WrkRun {
        ok: requests.saturating_sub(int("unexpected")),
        failed,
        seconds: int("micros") as f64 / 1e6,
        p50_ms: int("p50_us") as f64 / 1000.0,
        p99_ms: int("p99_us") as f64 / 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_reads_into_a_run() {
        let run = parse_summary(
            r#"{"requests":1000,"unexpected":3,"socket_errors":2,"micros":500000,"p50_us":1500,"p99_us":9000}"#,
        )
        .unwrap();
        assert_eq!(
            run,
            WrkRun {
                ok: 997,
                failed: 5,
                seconds: 0.5,
                p50_ms: 1.5,
                p99_ms: 9.0,
            }
        );
        assert!(parse_summary("not json").is_err());
    }
}
