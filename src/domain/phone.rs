//! Phone numbers in E.164 form. Consumer phone numbers are PII: they are only
//! ever stored sealed (see `o2ohub_events::Sealed`).

use o2ohub_events::ValueError;
use std::fmt;

/// A phone number in E.164: `+` and 8 to 15 digits, the first not 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts `+86 138-0013-8000` style input; spaces, dashes, dots and
    /// brackets are dropped before checking.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let compact: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').ok_or_else(|| {
            ValueError::new(
                "phone",
                "a phone number starts with + and the country code (E.164)",
            )
        })?;
        let valid = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !valid {
            return Err(ValueError::new(
                "phone",
                "a phone number is + then 8 to 15 digits, not starting with 0",
            ));
        }
        Ok(PhoneNumber(compact))
    }

    /// The E.164 text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(
            PhoneNumber::parse("+86 138-0013-8000").unwrap().as_str(),
            "+8613800138000"
        );
        assert_eq!(
            PhoneNumber::parse("+1 (415) 555.0100").unwrap().as_str(),
            "+14155550100"
        );
    }

    #[test]
    fn refuses_with_a_reason() {
        for bad in [
            "13800138000",
            "+0138001380",
            "+86abc",
            "+1234567",
            "+1234567890123456",
            "",
        ] {
            let err = PhoneNumber::parse(bad).unwrap_err();
            assert_eq!(err.field, "phone", "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_valid_number_parses_to_itself(n in "[1-9][0-9]{7,14}") {
            let text = format!("+{n}");
            let parsed = PhoneNumber::parse(&text).unwrap();
            prop_assert_eq!(parsed.as_str(), text.as_str());
        }
    }
}
