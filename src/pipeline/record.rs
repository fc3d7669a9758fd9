//! Storing a verified callback once it is decided: the paid fast path first
//! when the domain says the callback may be a first paid delivery, else (or
//! when the order is not as assumed) the general path, which decides under the
//! order's lock. The store writes what it is handed; only this decides.

use crate::domain::{assumed_order, OrderLock, Recorded, Seen};
use crate::store::{
    CallbackMeta, Decided, FirstPaid, Incoming, Processed, Signed, Store, StoreError,
};

/// Decides and stores `callback`; `decide` is the API's decision for it,
/// against the order as seen.
pub(super) fn record(
    store: &Store,
    callback: &dyn Recorded,
    meta: &CallbackMeta,
    signed: &Signed,
    lock: Option<OrderLock<'_>>,
    decide: impl Fn(Seen<'_>) -> Decided,
) -> Result<Processed, StoreError> {
    let incoming = Incoming::new(callback, meta, signed);
    if let Some(assumed) = assumed_order(callback, lock) {
        let decided = decide(Seen::FirstDelivery(Some(assumed.view())));
        if let FirstPaid::Stored(processed) = store.pay_as_assumed(&incoming, &assumed, &decided)? {
            return Ok(processed);
        }
    }
    store.record(&incoming, lock, decide)
}
