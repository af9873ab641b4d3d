//! Money as integer minor units with an ISO 4217 currency: no floats, no
//! rounding surprises, no adding yen to euros.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::ValueError;

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses `EUR`, `CNY`, …; anything but three upper-case letters is refused.
    pub fn parse(code: &str) -> Result<Self, ValueError> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(ValueError::new(
                "currency",
                "currency must be an ISO 4217 code of three upper-case letters",
            ));
        }
        Ok(Self([bytes[0], bytes[1], bytes[2]]))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount in minor units (cents, fen) of one currency; never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Minor units, e.g. 1250 for 12.50 EUR.
    pub minor: u64,
    /// The currency the amount is in.
    pub currency: Currency,
}

impl Money {
    /// Builds an amount; amounts above 10^12 minor units are refused as typos.
    pub fn parse(minor: i64, currency: &str) -> Result<Self, ValueError> {
        let currency = Currency::parse(currency)?;
        if !(0..=1_000_000_000_000).contains(&minor) {
            return Err(ValueError::new(
                "minor",
                "amount must be between 0 and 10^12 minor units",
            ));
        }
        Ok(Self {
            minor: minor as u64,
            currency,
        })
    }

    /// Sum of two amounts of the same currency; `None` on a currency mismatch.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        (self.currency == other.currency).then(|| Money {
            minor: self.minor.saturating_add(other.minor),
            currency: self.currency,
        })
    }

    /// This amount times a quantity.
    pub fn times(self, quantity: u32) -> Money {
        Money {
            minor: self.minor.saturating_mul(u64::from(quantity)),
            currency: self.currency,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:02} {}",
            self.minor / 100,
            self.minor % 100,
            self.currency.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(Money::parse(1250, "EUR").unwrap().to_string(), "12.50 EUR");
        assert!(Money::parse(-1, "EUR").is_err());
        assert!(Money::parse(1, "eur").is_err());
        assert!(Money::parse(1, "EURO").is_err());
        assert!(serde_json::from_str::<Money>(r#"{"minor":1,"currency":"E1R"}"#).is_err());
    }

    #[test]
    fn adding_different_currencies_is_refused() {
        let a = Money::parse(100, "EUR").unwrap();
        let b = Money::parse(100, "USD").unwrap();
        assert_eq!(a.checked_add(b), None);
        assert_eq!(a.checked_add(a).unwrap().minor, 200);
    }

    proptest! {
        #[test]
        fn json_round_trip(minor in 0i64..1_000_000_000_000, code in "[A-Z]{3}") {
            let m = Money::parse(minor, &code).unwrap();
            let back: Money = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            prop_assert_eq!(back, m);
        }
    }
}
