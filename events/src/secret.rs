//! Values that must not be readable from the event log: consumer PII sealed
//! with a per-consumer key, and digests of one-time codes.

use serde::{Deserialize, Serialize};

/// Consumer PII encrypted with that consumer's data key (AEAD). The log keeps
/// only this; deleting the key (crypto-shredding) makes it unreadable forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Which consumer key sealed it.
    pub key_id: String,
    /// Base64 of nonce ‖ ciphertext ‖ tag.
    pub ciphertext: String,
}

/// A keyed digest (HMAC-SHA256, hex) of a one-time code, so the log never
/// holds a code that could be replayed at the counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CodeDigest(pub String);
