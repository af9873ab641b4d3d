//! One-time codes: the redemption code a consumer shows at the store and the
//! hand-over code a rider collects at the door. Codes are 8 characters of
//! Crockford base32 (40 bits); the log only keeps a keyed digest.

use hmac::{Hmac, KeyInit, Mac};
use o2ohub_events::{CodeDigest, ValueError};
use sha2::Sha256;
use std::fmt;

/// Crockford's base32 alphabet: no I, L, O, U, so codes read aloud well.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code.
pub const CODE_LENGTH: usize = 8;

/// A one-time code as the consumer sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimeCode(String);

impl OneTimeCode {
    /// A code from 40 random bits (the caller brings the randomness, so
    /// deciding stays pure).
    pub fn from_random(bits: u64) -> Self {
        let code = (0..CODE_LENGTH)
            .map(|i| ALPHABET[((bits >> (5 * i)) & 31) as usize] as char)
            .collect();
        OneTimeCode(code)
    }

    /// The code of one thing (a visit, an order), derived from a secret key,
    /// so it never has to be stored: a retried request gets the same code.
    pub fn derive(key: &[u8], of: &[u8]) -> Self {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(b"one-time-code:");
        mac.update(of);
        let bytes = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[..8]);
        Self::from_random(u64::from_le_bytes(first))
    }

    /// Reads what a person typed: case-insensitive, `-` and spaces ignored,
    /// and the look-alikes O→0, I/L→1 mapped as Crockford intends.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let mut code = String::with_capacity(CODE_LENGTH);
        for c in text.chars().filter(|c| !matches!(c, '-' | ' ')) {
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !ALPHABET.contains(&(c as u8)) || !c.is_ascii() {
                return Err(ValueError::new(
                    "code",
                    "a code uses digits and letters other than U",
                ));
            }
            code.push(c);
        }
        if code.len() != CODE_LENGTH {
            return Err(ValueError::new("code", "a code has 8 characters"));
        }
        Ok(OneTimeCode(code))
    }

    /// The keyed digest stored in events.
    pub fn digest(&self, key: &[u8]) -> CodeDigest {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(self.0.as_bytes());
        CodeDigest(hex::encode(mac.finalize().into_bytes()))
    }

    /// The code for display, e.g. `7K3M-Q9TD`.
    pub fn display(&self) -> String {
        format!("{}-{}", &self.0[..4], &self.0[4..])
    }
}

// Codes are secrets: keep them out of logs.
impl fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeCode(****)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_forms_read_back_to_the_same_code() {
        let code = OneTimeCode::from_random(0x00DE_ADBE_EF42);
        let typed = code
            .display()
            .to_lowercase()
            .replace('0', "o")
            .replace('1', "l");
        assert_eq!(OneTimeCode::parse(&typed).unwrap(), code);
    }

    #[test]
    fn digests_are_keyed_and_stable() {
        let code = OneTimeCode::parse("7K3M-Q9TD").unwrap();
        assert_eq!(code.digest(b"k1"), code.digest(b"k1"));
        assert_ne!(code.digest(b"k1"), code.digest(b"k2"));
        assert_ne!(
            code.digest(b"k1"),
            OneTimeCode::parse("7K3M-Q9TE").unwrap().digest(b"k1")
        );
    }

    #[test]
    fn derived_codes_are_stable_per_thing_and_key() {
        let a = OneTimeCode::derive(b"k1", b"visit-1");
        assert_eq!(a, OneTimeCode::derive(b"k1", b"visit-1"));
        assert_ne!(a, OneTimeCode::derive(b"k1", b"visit-2"));
        assert_ne!(a, OneTimeCode::derive(b"k2", b"visit-1"));
        assert_eq!(OneTimeCode::parse(&a.display()).unwrap(), a);
    }

    #[test]
    fn refuses_malformed_codes() {
        assert!(OneTimeCode::parse("7K3M-Q9T").is_err());
        assert!(OneTimeCode::parse("7K3M-Q9TU").is_err());
        assert!(OneTimeCode::parse("7K3M-Q9T€").is_err());
        assert!(!format!("{:?}", OneTimeCode::parse("7K3MQ9TD").unwrap()).contains("7K3M"));
    }
}
