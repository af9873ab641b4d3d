//! The PII vault: consumer personal data (name, phone, address) is sealed
//! with a per-consumer data key before it enters any event. Keys live apart
//! from the events, one file per consumer under `<data dir>/vault/`, each
//! wrapped with the master key (`O2OHUB_PII_MASTER_KEY`, or a local one
//! generated into `<data dir>/secrets/`). Erasing a consumer deletes their
//! key: the events stay, and what they sealed can never be read again
//! (crypto-shredding).

use anyhow::{Context, Result};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use o2ohub_events::{ConsumerId, Sealed};
use rand::RngExt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Per-consumer data keys, wrapped by the master key.
pub struct Vault {
    /// One `<consumer id>.key` file per consumer.
    dir: PathBuf,
    /// Wraps and unwraps the data keys.
    master: XChaCha20Poly1305,
}

/// What opening sealed data can find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The plaintext.
    Clear(String),
    /// The consumer's key was deleted: the data is gone for good.
    Erased,
}

fn seal_with(cipher: &XChaCha20Poly1305, plaintext: &[u8]) -> Result<Vec<u8>> {
    let nonce: [u8; 24] = rand::rng().random();
    let sealed = cipher
        .encrypt(&XNonce::from(nonce), plaintext)
        .map_err(|_| anyhow::anyhow!("encryption failed"))?;
    Ok([nonce.as_slice(), &sealed].concat())
}

fn open_with(cipher: &XChaCha20Poly1305, sealed: &[u8]) -> Result<Vec<u8>> {
    anyhow::ensure!(sealed.len() > 24, "sealed data is too short");
    let (nonce, body) = sealed.split_at(24);
    let nonce: [u8; 24] = nonce.try_into().context("nonce")?;
    cipher.decrypt(&XNonce::from(nonce), body).map_err(|_| {
        anyhow::anyhow!("sealed data does not open with this key (tampered, or another key)")
    })
}

fn cipher(key: &[u8]) -> Result<XChaCha20Poly1305> {
    XChaCha20Poly1305::new_from_slice(key).map_err(|_| anyhow::anyhow!("a key is 32 bytes"))
}

impl Vault {
    /// Opens the vault of a data directory with the master key.
    pub fn open(data_dir: &Path, master_key: &[u8]) -> Result<Self> {
        let dir = data_dir.join("vault");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(master_key).into();
        Ok(Vault {
            dir,
            master: cipher(&digest)?,
        })
    }

    fn key_path(&self, consumer: &ConsumerId) -> PathBuf {
        self.dir.join(format!("{consumer}.key"))
    }

    /// The consumer's data key, created on first use.
    fn key(&self, consumer: &ConsumerId, create: bool) -> Result<Option<XChaCha20Poly1305>> {
        let path = self.key_path(consumer);
        match std::fs::read(&path) {
            Ok(wrapped) => Ok(Some(cipher(&open_with(&self.master, &wrapped)?)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let key: [u8; 32] = rand::rng().random();
                let wrapped = seal_with(&self.master, &key)?;
                let tmp = path.with_extension("tmp");
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(&wrapped)?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)?;
                std::fs::File::open(&self.dir)?.sync_all()?;
                Ok(Some(cipher(&key)?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Seals `plaintext` for `consumer` (creating their key if needed).
    pub fn seal(&self, consumer: &ConsumerId, plaintext: &str) -> Result<Sealed> {
        let key = self
            .key(consumer, true)?
            .context("a key was just created")?;
        let sealed = seal_with(&key, plaintext.as_bytes())?;
        Ok(Sealed {
            key_id: consumer.to_string(),
            ciphertext: base64::engine::general_purpose::STANDARD.encode(sealed),
        })
    }

    /// Opens sealed data, or says it was erased.
    pub fn open_sealed(&self, sealed: &Sealed) -> Result<Opened> {
        let consumer =
            ConsumerId::parse(&sealed.key_id).context("sealed data names no consumer")?;
        let Some(key) = self.key(&consumer, false)? else {
            return Ok(Opened::Erased);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&sealed.ciphertext)
            .context("not base64")?;
        Ok(Opened::Clear(
            String::from_utf8(open_with(&key, &bytes)?).context("not UTF-8")?,
        ))
    }

    /// Deletes the consumer's key, durably. Returns whether there was one.
    pub fn erase(&self, consumer: &ConsumerId) -> Result<bool> {
        let path = self.key_path(consumer);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                std::fs::File::open(&self.dir)?.sync_all()?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot delete {}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_until_the_key_is_erased() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path(), b"master key for tests, 32 bytes!!").unwrap();
        let me = ConsumerId::new();
        let sealed = vault.seal(&me, "+8613800138000, 1 Nanjing Road").unwrap();
        assert!(!sealed.ciphertext.contains("13800138000"));
        assert_eq!(
            vault.open_sealed(&sealed).unwrap(),
            Opened::Clear("+8613800138000, 1 Nanjing Road".into())
        );
        let other = Vault::open(dir.path(), b"another master key, 32 bytes!!!!").unwrap();
        assert!(
            other.open_sealed(&sealed).is_err(),
            "the wrapped key needs the master key"
        );
        assert!(vault.erase(&me).unwrap());
        assert_eq!(vault.open_sealed(&sealed).unwrap(), Opened::Erased);
        assert!(!vault.erase(&me).unwrap());
    }
}
