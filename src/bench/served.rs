//! A running `o2ohub serve` child process on a scratch data directory: the
//! HTTP target of the benches that measure the API from outside, as a client
//! would. Started on a free loopback port, ready once `/readyz` answers,
//! stopped with SIGTERM (a graceful shutdown) and its data removed.

use anyhow::{bail, Context, Result};
use o2ohub_events::Role;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::api::auth::{Keys, Principal};

/// A served hub.
pub struct Served {
    child: std::process::Child,
    dir: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    keys: Keys,
}

impl Served {
    /// A fresh scratch data directory named after `bench` and this process.
    pub fn scratch(bench: &str) -> Result<PathBuf> {
        let dir = std::env::temp_dir().join(format!("o2ohub-bench-{bench}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Starts `o2ohub serve` on `dir` and waits up to `ready_within` for it
    /// to be ready with every read model caught up with what `dir` holds.
    pub async fn start(dir: PathBuf, ready_within: Duration) -> Result<Served> {
        // Create the keys before the server starts, so both sides read the same ones.
        let secrets = crate::secrets::Secrets::load(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = std::process::Command::new(std::env::current_exe()?)
            .args([
                "serve",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&dir)
            .env("O2OHUB_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start `o2ohub serve`")?;
        let served = Served {
            child,
            dir,
            base: format!("http://127.0.0.1:{port}"),
            keys: Keys::from_secret(&secrets.jwt),
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            // `/readyz` passes up to 1,000 events behind the head; a bench
            // measures the whole store folded, so it waits for no lag at all.
            let ready = client.get(format!("{}/readyz", served.base)).send().await;
            if let Ok(answer) = ready.and_then(|r| r.error_for_status()) {
                let body: serde_json::Value = answer.json().await.unwrap_or_default();
                if body["projection_lag"].as_u64() == Some(0) {
                    return Ok(served);
                }
            }
            if started.elapsed() > ready_within {
                bail!(
                    "`o2ohub serve` did not become ready in {} s",
                    ready_within.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A bearer token for `role` and `subject`, valid for an hour.
    pub fn token(&self, role: Role, subject: String) -> Result<String> {
        let principal = Principal {
            role,
            subject,
            merchant: None,
        };
        Ok(self.keys.mint(&principal, 3600)?)
    }

    /// Stops the server (SIGTERM: a graceful shutdown) and removes its data.
    pub fn stop(mut self) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
