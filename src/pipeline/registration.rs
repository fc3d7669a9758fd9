//! Registering what an order must be paid: one set of rules for the admin
//! API (`PUT /api/v1/orders/{id}`, `POST /api/v1/payments`) and the console's
//! form, so an order id, an amount or a payer-set amount the one refuses the
//! other refuses too, with the same words. Each side reads its own input
//! (JSON values, form text) and hands the parts here.

use crate::domain::{Amount, AmountMode, Currency};
use crate::store::{Expected, Registration, Store, StoreError};

/// Why an order was not registered.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// A field is not as the gateway takes it.
    #[error("{0}")]
    Invalid(String),
    /// The order is registered already, with other values: nothing changed.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An order id as the gateway takes it: 1 to 40 bytes, no control character
/// (a NUL could not even be stored; it would surface as a database error).
pub fn order_id(orderid: String) -> Result<String, RegistrationError> {
    if orderid.is_empty() || orderid.len() > 40 {
        return Err(invalid("orderid must be 1 to 40 bytes"));
    }
    if orderid.chars().any(char::is_control) {
        return Err(invalid("orderid must not contain control characters"));
    }
    Ok(orderid)
}

/// An amount in minor units (`None`: not a whole number at all).
pub fn amount(minor: Option<i64>) -> Result<Amount, RegistrationError> {
    minor
        .and_then(|a| Amount::from_minor(a).ok())
        .ok_or_else(|| invalid("amount must be a whole number of minor units, e.g. 1250"))
}

/// A currency code as the gateway sends it: three upper-case letters.
pub fn currency(code: Option<&str>) -> Result<Currency, RegistrationError> {
    code.and_then(|c| Currency::parse(c).ok())
        .filter(|c| c.as_str().bytes().all(|b| b.is_ascii_uppercase()))
        .ok_or_else(|| invalid("currency must be three upper-case letters, e.g. EUR"))
}

/// `fixed` (the default) or `payer_sets`, which only a Checkout project's
/// order can be: classic callbacks pay the registered amount exactly.
pub fn amount_mode(
    mode: Option<&str>,
    project_id: &str,
    checkout: bool,
) -> Result<AmountMode, RegistrationError> {
    let mode = match mode {
        None => AmountMode::Fixed,
        Some(text) => AmountMode::parse(text)
            .ok_or_else(|| invalid("amount_mode must be \"fixed\" or \"payer_sets\""))?,
    };
    if mode == AmountMode::PayerSets && !checkout {
        return Err(RegistrationError::Invalid(format!(
            "amount_mode \"payer_sets\" is for Checkout projects; project {project_id} \
             is a classic one, whose callbacks pay the registered amount exactly"
        )));
    }
    Ok(mode)
}

fn invalid(reason: &str) -> RegistrationError {
    RegistrationError::Invalid(reason.to_string())
}

/// An order to register, its parts already checked.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub project_id: String,
    pub orderid: String,
    pub amount: Amount,
    pub amount_mode: AmountMode,
    pub currency: Currency,
    pub test: bool,
}

/// What a registration came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// A new order; `false`: the same values were registered before.
    pub created: bool,
    /// The order's return token, when `return_to` was given.
    pub return_token: Option<String>,
}

/// Registers `order` (idempotent for identical values; other values are a
/// conflict and change nothing). `return_to` is a fresh return token and the
/// shop's accept URL, for buyers who come back through payhook. Logged with
/// who asked.
pub fn register(
    store: &Store,
    order: &NewOrder,
    return_to: Option<(&str, &str)>,
    actor: &str,
) -> Result<Registered, RegistrationError> {
    let expected = Expected {
        amount: order.amount,
        amount_mode: order.amount_mode,
        currency: &order.currency,
        test: order.test,
    };
    let (registration, return_token) =
        store.register_expectation(&order.project_id, &order.orderid, &expected, return_to)?;
    let created = match registration {
        Registration::Created => true,
        Registration::Unchanged => false,
        Registration::Conflict {
            amount,
            currency,
            test,
            amount_mode,
        } => {
            return Err(RegistrationError::Conflict(format!(
                "order already registered with amount {} {}{}{}",
                amount.map_or("-".into(), |a| a.to_string()),
                currency.unwrap_or_default(),
                match amount_mode {
                    AmountMode::Fixed => "",
                    AmountMode::PayerSets => " (payer_sets)",
                },
                if test { " (test)" } else { "" }
            )))
        }
    };
    if created {
        tracing::info!(actor, project = %order.project_id, orderid = %order.orderid,
            amount = %order.amount, currency = %order.currency.as_str(),
            amount_mode = order.amount_mode.as_str(), test = order.test, "order registered");
    }
    Ok(Registered {
        created,
        return_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_id_is_one_to_forty_bytes_without_control_characters() {
        assert!(order_id("A-1".into()).is_ok());
        assert!(order_id("x".repeat(40)).is_ok());
        for bad in [
            String::new(),
            "x".repeat(41),
            "A\u{0}1".into(),
            "A\n1".into(),
        ] {
            assert!(
                matches!(order_id(bad.clone()), Err(RegistrationError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn amounts_and_currencies_are_as_the_gateway_sends_them() {
        assert_eq!(amount(Some(1250)).unwrap().minor_units(), 1250);
        assert!(amount(None).is_err());
        assert!(amount(Some(-1)).is_err());
        assert_eq!(currency(Some("EUR")).unwrap().as_str(), "EUR");
        for bad in [None, Some("eur"), Some("EURO"), Some("E1R")] {
            assert!(currency(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_a_checkout_order_may_let_the_payer_set_the_amount() {
        assert_eq!(amount_mode(None, "1", false).unwrap(), AmountMode::Fixed);
        assert_eq!(
            amount_mode(Some("payer_sets"), "client", true).unwrap(),
            AmountMode::PayerSets
        );
        let classic = amount_mode(Some("payer_sets"), "123", false).unwrap_err();
        assert!(classic.to_string().contains("project 123 is a classic one"));
        assert!(amount_mode(Some("any"), "client", true).is_err());
    }
}
