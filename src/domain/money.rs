//! Money as the gateway states it: whole minor units and a three-letter code.

use std::fmt;

/// An amount in minor units (cents), as the gateway's `^\d+$` fields carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Amount(i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("not a whole number of minor units")]
    NotDigits,
    #[error("too large")]
    TooLarge,
    #[error("negative")]
    Negative,
}

impl Amount {
    pub const ZERO: Amount = Amount(0);

    /// Parses the gateway's text form: ASCII digits only, no sign, no decimals.
    pub fn parse(text: &str) -> Result<Self, AmountError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::NotDigits);
        }
        text.parse::<i64>()
            .map(Amount)
            .map_err(|_| AmountError::TooLarge)
    }

    pub fn from_minor(units: i64) -> Result<Self, AmountError> {
        if units < 0 {
            Err(AmountError::Negative)
        } else {
            Ok(Amount(units))
        }
    }

    pub fn minor_units(self) -> i64 {
        self.0
    }

    /// The sum, when it fits: `None` lets a total past `i64::MAX` be a decision
    /// (flagged for review), not a database error that fails every retry.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A currency code exactly as sent: three ASCII letters (historical codes such
/// as `LTL` included, so no ISO list is imposed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Currency(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a three-letter currency code")]
pub struct CurrencyError;

impl Currency {
    pub fn parse(text: &str) -> Result<Self, CurrencyError> {
        if text.len() == 3 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(Currency(text.to_string()))
        } else {
            Err(CurrencyError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_digits_only() {
        assert_eq!(Amount::parse("1250").map(Amount::minor_units), Ok(1250));
        assert_eq!(Amount::parse("0").map(Amount::minor_units), Ok(0));
        for bad in ["", "-1", "+1", "12.50", "1e2", " 1", "١"] {
            assert_eq!(Amount::parse(bad), Err(AmountError::NotDigits), "{bad:?}");
        }
        assert_eq!(
            Amount::parse("99999999999999999999"),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn currencies_are_three_letters_as_sent() {
        assert_eq!(Currency::parse("LTL").unwrap().as_str(), "LTL");
        assert_eq!(Currency::parse("eur").unwrap().as_str(), "eur");
        for bad in ["", "EU", "EURO", "E1R", "ЕUR"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?}");
        }
    }
}
