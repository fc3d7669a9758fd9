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
