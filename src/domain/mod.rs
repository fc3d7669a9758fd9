//! What a callback means for an order: pure types and decisions, no I/O.

mod answer;
mod callback;
mod money;
mod status;

pub use answer::{Answer, OkBody};
pub use callback::{FieldError, FieldValue, Fields, PaymentKind, Proof, VerifiedCallback};
pub use money::{Amount, AmountError, Currency, CurrencyError};
pub use status::{Status, StatusError};
mod assumed;
mod decision;
mod recorded;
mod returned;
mod webhook;

pub use assumed::{assumed_order, AssumedOrder};
pub use decision::{
    decide, decide_callback, decide_captured, order_to_lock, AmountMode, Decision, Flag, Notice,
    OrderChange, OrderCheck, OrderFlag, OrderLock, OrderState, OrderView, Outcome, Progress, Rules,
    Seen,
};
pub use recorded::Recorded;
pub use returned::PaidReturn;
pub use webhook::{decide_webhook, webhook_order_to_lock, CheckoutWebhook, Snapshot, WebhookFact};
