//! A callback request's parameters, as PHP reads them, and their typed fields.

use super::error::{printable, CallbackError};
use super::php;
use crate::domain::{FieldValue, Fields};

/// The request's parameters as PHP's `$_REQUEST` holds them: query, then the
/// form body over it.
#[derive(Debug, Clone, Default)]
pub struct RequestParams {
    pub(super) array: php::Array,
    /// Top-level names given more than once (in the query, the body, or both):
    /// PHP keeps only the last value, so the parsed array alone cannot show them.
    pub(super) repeated: Vec<Vec<u8>>,
}

impl RequestParams {
    pub fn parse(query: &[u8], form_body: &[u8]) -> Self {
        let mut repeated = Vec::new();
        let mut array = php::parse_str_noting_repeats(query, &mut repeated);
        let body = php::parse_str_noting_repeats(form_body, &mut repeated);
        array.merge_over_noting_repeats(body, &mut repeated);
        RequestParams { array, repeated }
    }

    /// A bare query string, or a whole callback URL as copied from the gateway's panel.
    pub fn from_query_or_url(input: &str) -> Self {
        Self::parse(query_of(input).as_bytes(), b"")
    }

    pub(super) fn str_param(&self, name: &str) -> Result<Option<&[u8]>, CallbackError> {
        match self.array.get_str(name.as_bytes()) {
            None => Ok(None),
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(())) => Err(CallbackError::NotAValue(name.to_string())),
        }
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.array.contains_key(name.as_bytes())
    }

    /// What a callback's signature covers, as a query that parses back to the
    /// same callback: `data` with `ss1`, `ss2` and `ss3` (the current API; an
    /// encrypted `data` is its own proof), or every `wp_` field in the order
    /// received (legacy, whose verifier reads nothing else). The verifier
    /// refuses these names repeated or as arrays, so a verified request has
    /// each once, as a value.
    pub fn signed_query(&self) -> SignedQuery {
        let current = self.has("data");
        let signed = |k: &[u8]| match current {
            true => matches!(k, b"data" | b"ss1" | b"ss2" | b"ss3"),
            false => k.len() > LEGACY_PREFIX.len() && k.starts_with(LEGACY_PREFIX),
        };
        let mut query = Vec::new();
        for (k, v) in self.array.iter().filter(|(k, _)| signed(k)) {
            let php::Value::Str(v) = v else { continue };
            if !query.is_empty() {
                query.push(b'&');
            }
            query.extend(percent_encoding::percent_encode(k, QUERY_VALUE).flat_map(str::bytes));
            query.push(b'=');
            query.extend(percent_encoding::percent_encode(v, QUERY_VALUE).flat_map(str::bytes));
        }
        SignedQuery {
            nothing_else: self.repeated.is_empty() && self.array.iter().all(|(k, _)| signed(k)),
            query,
        }
    }
}

/// Legacy (`wp_`) field names' prefix, as `legacy.rs` reads them.
const LEGACY_PREFIX: &[u8] = b"wp_";

/// Percent-encoded in a query value: all but letters, digits and `-_.`.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.');

/// [`RequestParams::signed_query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedQuery {
    /// The signed parameters, each `name=value`, percent-encoded.
    pub query: Vec<u8>,
    /// The request held no other parameter and none twice.
    pub nothing_else: bool,
}

impl SignedQuery {
    /// Whether `raw`, the request as received, is kept as it is: it holds only
    /// the signed parameters, in no more bytes than any encoding of them takes
    /// (percent-encoding makes at most three of one byte). Anything more is
    /// the sender's, not the gateway's.
    pub fn covers_whole(&self, raw: &[u8]) -> bool {
        self.nothing_else && raw.len() <= 3 * self.query.len()
    }
}

/// Turns PHP's byte strings into UTF-8 fields; the gateway sends UTF-8 text, so
/// anything else is refused rather than guessed at.
pub(super) fn to_fields(array: php::Array) -> Result<Fields, CallbackError> {
    array
        .iter()
        .map(|(k, v)| {
            let name =
                String::from_utf8(k.to_vec()).map_err(|_| CallbackError::NotUtf8(printable(k)))?;
            let value = match v {
                php::Value::Str(s) => FieldValue::Text(
                    String::from_utf8(s.clone())
                        .map_err(|_| CallbackError::NotUtf8(printable(k)))?,
                ),
                php::Value::Array(a) => FieldValue::List(to_fields(a.clone())?),
            };
            Ok((name, value))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Fields::new)
}

/// The query of a bare query string or of a whole callback URL as copied from
/// the gateway's panel (fragment dropped).
pub fn query_of(input: &str) -> &str {
    let input = input.trim();
    let query = input.split_once('?').map_or(input, |(_, q)| q);
    query.split('#').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_part_is_data_and_its_signatures_in_the_order_received() {
        let params = RequestParams::parse(b"ss2=a%2Fb&data=x-y_z&note=hi", b"ss1=00ff");
        let signed = params.signed_query();
        assert_eq!(signed.query, b"ss2=a%2Fb&data=x-y_z&ss1=00ff");
        assert!(!signed.nothing_else);
        let again = RequestParams::parse(&signed.query, b"");
        assert_eq!(again.str_param("ss2").unwrap(), Some(&b"a/b"[..]));
    }

    #[test]
    fn a_legacy_callback_is_signed_in_its_wp_fields() {
        let params = RequestParams::parse(
            b"testwp_answer=cb&wp_orderid=1&wp_p_city=M+x&wp__ss2=k",
            b"",
        );
        let signed = params.signed_query();
        assert_eq!(signed.query, b"wp_orderid=1&wp_p_city=M%20x&wp__ss2=k");
        assert!(!signed.nothing_else, "testwp_answer is the merchant's");
    }

    #[test]
    fn only_a_request_of_the_signed_part_alone_is_kept_as_received() {
        let raw = b"data=x-y_z&ss1=00ff";
        let whole = RequestParams::parse(raw, b"").signed_query();
        assert!(whole.covers_whole(raw));
        // Padding that parses to nothing still counts against the size.
        let padded = [&raw[..], &b"&".repeat(200)].concat();
        assert!(!RequestParams::parse(&padded, b"")
            .signed_query()
            .covers_whole(&padded));
        let repeated = b"data=x-y_z&ss1=00ff&data=x-y_z";
        assert!(!RequestParams::parse(repeated, b"")
            .signed_query()
            .covers_whole(repeated));
    }
}
