//! Hash-signed aggregators (FreeKassa, YooMoney, WebMoney Merchant,
//! Robokassa, Interkassa, and "Веб Оплата" once a shop knows its recipe),
//! declared as recipes rather than written one by one: how a notification's
//! fields are read, how its signature is built, what the gateway wants back.
//! The rules and their sources: `docs/gateways.md`. Pure, like the Paysera
//! cores: the caller reads the request, this says what it proves.

mod notification;
mod profile;
mod signature;

pub use notification::{GatewayPayment, NotificationError};
pub use profile::{
    Charset, CurrencyRule, GatewaySettings, Profile, ReadFrom, Recipe, RecipeError,
    SignatureSettings, SortedSettings, StatusRule, TestRule,
};
pub use signature::{Digest, Output, PairForm, Part, Signature, SignatureError, SortedFields};

use crate::paysera::php::{url_decode, url_encode_into};

/// A notification's fields as received (names, and values as bytes: the
/// gateway signs those, before any charset decoding), in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request(Vec<(String, Vec<u8>)>);

/// A field given more than once: which value a signature covers would be a
/// guess, so it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeated;

impl Request {
    pub fn new(fields: Vec<(String, Vec<u8>)>) -> Request {
        Request(fields)
    }

    /// Decodes `application/x-www-form-urlencoded` text (a query or a form
    /// body) into fields, keeping the values' bytes (PHP's `urldecode`, as
    /// the Paysera core reads its forms; no PHP array names here).
    pub fn from_urlencoded(text: &[u8]) -> Request {
        let fields = text
            .split(|b| *b == b'&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = match pair.iter().position(|b| *b == b'=') {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, &[][..]),
                };
                (
                    String::from_utf8_lossy(&url_decode(name)).into_owned(),
                    url_decode(value),
                )
            })
            .collect();
        Request(fields)
    }

    /// A received notification's fields, from where its recipe reads them:
    /// the query's then the body's (a field in both is then given twice, and
    /// refused by [`Request::single`]).
    pub fn of(read: ReadFrom, query: &[u8], body: &[u8]) -> Request {
        let mut fields = Vec::new();
        if read != ReadFrom::Body {
            fields.extend(Request::from_urlencoded(query).0);
        }
        if read != ReadFrom::Query {
            fields.extend(Request::from_urlencoded(body).0);
        }
        Request(fields)
    }

    /// The field's one value; `Err` when it appears more than once.
    pub fn single(&self, name: &str) -> Result<Option<&[u8]>, Repeated> {
        let mut found = self.0.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_slice());
        if found.next().is_some() {
            return Err(Repeated);
        }
        Ok(first)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// These fields again as form text, in order (what is stored of them),
    /// encoded as PHP's `urlencode` does.
    pub fn to_urlencoded<'a>(&self, keep: impl Fn(&str) -> bool + 'a) -> String {
        let mut out = String::new();
        for (name, value) in self.iter().filter(|(name, _)| keep(name)) {
            if !out.is_empty() {
                out.push('&');
            }
            url_encode_into(&mut out, name.as_bytes());
            out.push('=');
            url_encode_into(&mut out, value);
        }
        out
    }
}
