//! The gateway's payment `status` codes (protocol.md section d).

use std::fmt;

/// Only `Paid` means money arrived; unknown future codes are kept, not guessed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 0: the payment was not executed.
    NotExecuted,
    /// 1: paid.
    Paid,
    /// 2: accepted by the payment system, not yet executed.
    Accepted,
    /// 3: additional information about an earlier payment.
    AdditionalInfo,
    /// 4: executed, but no confirmation of received funds will follow.
    ExecutedUnconfirmed,
    /// 5: refunded.
    Refunded,
    /// Any other code the gateway may add.
    Other(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a status code")]
pub struct StatusError;

impl Status {
    pub fn parse(text: &str) -> Result<Self, StatusError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StatusError);
        }
        let code: u32 = text.parse().map_err(|_| StatusError)?;
        Ok(Self::from_code(code))
    }

    pub fn from_code(code: u32) -> Self {
        match code {
            0 => Status::NotExecuted,
            1 => Status::Paid,
            2 => Status::Accepted,
            3 => Status::AdditionalInfo,
            4 => Status::ExecutedUnconfirmed,
            5 => Status::Refunded,
            other => Status::Other(other),
        }
    }

    pub fn code(self) -> u32 {
        match self {
            Status::NotExecuted => 0,
            Status::Paid => 1,
            Status::Accepted => 2,
            Status::AdditionalInfo => 3,
            Status::ExecutedUnconfirmed => 4,
            Status::Refunded => 5,
            Status::Other(code) => code,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_ones_are_kept() {
        for code in 0..=7 {
            assert_eq!(Status::parse(&code.to_string()).unwrap().code(), code);
        }
        assert_eq!(Status::parse("1"), Ok(Status::Paid));
        assert_eq!(Status::parse("9"), Ok(Status::Other(9)));
        for bad in ["", "x", "-1", "1.0", "99999999999"] {
            assert!(Status::parse(bad).is_err(), "{bad:?}");
        }
    }
}
