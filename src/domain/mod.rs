//! What a callback means for an order: pure types and decisions, no I/O.

mod callback;
mod money;
mod status;

pub use callback::{FieldError, FieldValue, Fields, PaymentKind, Proof, VerifiedCallback};
pub use money::{Amount, AmountError, Currency, CurrencyError};
pub use status::{Status, StatusError};
mod decision;

pub use decision::{
    decide, Decision, Flag, OrderChange, OrderCheck, OrderFlag, OrderState, OrderView, Outcome,
    Rules,
};
