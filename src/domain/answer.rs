//! How the gateway is answered: every outcome and every rejection falls in one
//! of these classes; the HTTP edge turns a class into a status, once.

/// The answer class of a callback, decided before anything is written, so that
/// what is stored and what is answered cannot differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Answer {
    /// Stored; the gateway stops retrying.
    Ok(OkBody),
    /// The signature or proof did not hold.
    Unauthenticated,
    /// Not a callback payhook can read.
    Malformed,
    /// A paid callback for an order nobody registered yet: the gateway retries
    /// while the shop catches up.
    UnknownOrder,
    /// payhook cannot check or store it now: the gateway retries.
    Unavailable,
}

/// What an `OK` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OkBody {
    /// `OK`.
    Ok,
    /// An SMS (micro) payment: `OK <reply text>`, or `NOSMS` without one.
    SmsReply,
}

impl Answer {
    pub fn is_ok(self) -> bool {
        matches!(self, Answer::Ok(_))
    }
}
