//! The hub's secrets: the JWT signing key and the key that derives and
//! digests one-time codes. Taken from the environment (`O2OHUB_JWT_SECRET`,
//! `O2OHUB_CODE_KEY`, at least 32 bytes) in production; for local use they are
//! generated once into `<data dir>/secrets/` (mode 0600) so `serve` and
//! `o2ohub token` agree without configuration.

use anyhow::{bail, Context, Result};
use rand::RngExt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The hub's secret keys.
#[derive(Clone)]
pub struct Secrets {
    /// Signs and checks bearer tokens.
    pub jwt: Vec<u8>,
    /// Derives redemption and hand-over codes and keys their digests.
    pub codes: Vec<u8>,
    /// Wraps the per-consumer PII keys in the vault.
    pub pii_master: Vec<u8>,
    /// Signs the payment provider's callbacks.
    pub payments: Vec<u8>,
}

impl Secrets {
    /// Loads the secrets for a data directory.
    pub fn load(data_dir: &Path) -> Result<Self> {
        Ok(Secrets {
            jwt: secret("O2OHUB_JWT_SECRET", &data_dir.join("secrets/jwt.key"))?,
            codes: secret("O2OHUB_CODE_KEY", &data_dir.join("secrets/codes.key"))?,
            pii_master: secret(
                "O2OHUB_PII_MASTER_KEY",
                &data_dir.join("secrets/pii-master.key"),
            )?,
            payments: secret(
                "O2OHUB_PAYMENT_SECRET",
                &data_dir.join("secrets/payments.key"),
            )?,
        })
    }
}

fn secret(var: &str, file: &Path) -> Result<Vec<u8>> {
    if let Ok(value) = std::env::var(var) {
        if value.len() < 32 {
            bail!("{var} must be at least 32 bytes long");
        }
        return Ok(value.into_bytes());
    }
    if let Ok(bytes) = std::fs::read(file) {
        if bytes.len() >= 32 {
            return Ok(bytes);
        }
        bail!(
            "{} is shorter than 32 bytes; delete it to have a new one generated",
            file.display()
        );
    }
    let dir = file.parent().context("secret file has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key: [u8; 32] = rand::rng().random();
    let hex = hex::encode(key);
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    f.write_all(hex.as_bytes())?;
    f.sync_all()?;
    tracing::info!(file = %file.display(), "generated a local secret (set {var} in production)");
    Ok(hex.into_bytes())
}
