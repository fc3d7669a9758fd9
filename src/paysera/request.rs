//! Signed payment requests (merchant → gateway), built as the official library
//! builds them (protocol.md section b).

use super::base64url;
use super::digest::md5_hex;
use super::php;

/// The spec version payhook states in its requests (the one every callback echoes).
pub const SPEC_VERSION: &str = "1.6";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Production,
    Sandbox,
}

impl Environment {
    pub fn payment_endpoint(self) -> &'static str {
        match self {
            Environment::Production => "https://bank.paysera.com/pay/",
            Environment::Sandbox => "https://sandbox.paysera.com/pay/",
        }
    }
}

/// What the library's `WebToPay_Exception_Validation` reports, with the same wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("'{0}' is required but missing.")]
    Missing(&'static str),
    #[error("'{field}' value is too long ({len}), {max} characters allowed.")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("'{field}' value '{value}' is invalid.")]
    Invalid { field: &'static str, value: String },
    #[error("'{0}' is set by payhook and cannot be given")]
    Reserved(String),
    /// A request the buyer's browser carries must never look like a callback:
    /// with `ss1` accepted, its own `data` + `sign` would verify as one.
    #[error(
        "'{0}' is set only by the gateway, in callbacks, and cannot be part of a payment request"
    )]
    GatewayOnly(String),
    /// The gateway reads names through PHP, which rewrites some characters;
    /// such a name would slip past the checks above.
    #[error("'{0}' is not a parameter name (letters, digits, '_' and '-' only)")]
    BadName(String),
    #[error("too many parameters ({0}); at most {MAX_PARAMS}")]
    TooMany(usize),
}

impl RequestError {
    pub fn field(&self) -> &str {
        match self {
            RequestError::Missing(f) => f,
            RequestError::TooLong { field, .. } | RequestError::Invalid { field, .. } => field,
            RequestError::Reserved(f) | RequestError::GatewayOnly(f) | RequestError::BadName(f) => {
                f
            }
            RequestError::TooMany(_) => "",
        }
    }
}

enum Format {
    Any,
    Digits,
    Letters(usize),
    LettersOrUnderscore(usize),
    ZeroOrOne,
    DateTime,
}

impl Format {
    fn accepts(&self, v: &str) -> bool {
        let b = v.as_bytes();
        match self {
            Format::Any => true,
            Format::Digits => b.iter().all(u8::is_ascii_digit),
            Format::Letters(n) => b.len() == *n && b.iter().all(u8::is_ascii_alphabetic),
            Format::LettersOrUnderscore(n) => {
                b.len() == *n && b.iter().all(|c| c.is_ascii_alphabetic() || *c == b'_')
            }
            Format::ZeroOrOne => v == "0" || v == "1",
            // YYYY-MM-DD HH:MM:SS
            Format::DateTime => {
                b.len() == 19
                    && b.iter().enumerate().all(|(i, c)| match i {
                        4 | 7 => *c == b'-',
                        10 => *c == b' ',
                        13 | 16 => *c == b':',
                        _ => c.is_ascii_digit(),
                    })
            }
        }
    }
}

/// The library's request spec: name, maximum length in bytes, required, format.
const SPEC: &[(&str, usize, bool, Format)] = &[
    ("orderid", 40, true, Format::Any),
    ("accepturl", 255, true, Format::Any),
    ("cancelurl", 255, true, Format::Any),
    ("callbackurl", 255, true, Format::Any),
    ("lang", 3, false, Format::Letters(3)),
    ("amount", 11, false, Format::Digits),
    ("currency", 3, false, Format::Letters(3)),
    ("payment", 20, false, Format::Any),
    ("country", 2, false, Format::LettersOrUnderscore(2)),
    ("paytext", 255, false, Format::Any),
    ("p_firstname", 255, false, Format::Any),
    ("p_lastname", 255, false, Format::Any),
    ("p_email", 255, false, Format::Any),
    ("p_street", 255, false, Format::Any),
    ("p_city", 255, false, Format::Any),
    ("p_state", 255, false, Format::Any),
    ("p_zip", 20, false, Format::Any),
    ("p_countrycode", 2, false, Format::Letters(2)),
    ("test", 1, false, Format::ZeroOrOne),
    ("time_limit", 19, false, Format::DateTime),
];

const RESERVED: &[&str] = &["projectid", "version", "repeat_request"];

/// Callback fields only the gateway sets (and the signatures): none may come
/// from a payment request, whose signed `data` the buyer sees.
const GATEWAY_ONLY: &[&str] = &[
    "status",
    "payamount",
    "paycurrency",
    "requestid",
    "type",
    "name",
    "surename",
    "to",
    "from",
    "sms",
    "operator",
    "ss1",
    "ss2",
    "ss3",
    "data",
    "sign",
];
const GATEWAY_ONLY_PREFIXES: &[&str] = &["refund_", "_ss"];

fn gateway_only(name: &str) -> bool {
    GATEWAY_ONLY.contains(&name) || GATEWAY_ONLY_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Far below PHP's 1000-variable limit, beyond which the gateway would drop
/// `version` and `projectid`.
pub const MAX_PARAMS: usize = 200;

/// `data` and `sign` as the gateway expects them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignedRequest {
    pub data: String,
    pub sign: String,
}

impl SignedRequest {
    fn sign(query: &str, password: &str) -> Self {
        let data = base64url::encode(query.as_bytes());
        let sign = md5_hex(format!("{data}{password}").as_bytes());
        SignedRequest { data, sign }
    }

    /// The URL the buyer is sent to.
    pub fn url(&self, environment: Environment) -> String {
        format!(
            "{}?{}",
            environment.payment_endpoint(),
            php::build_query([("data", self.data.as_str()), ("sign", self.sign.as_str())])
        )
    }
}

/// PHP `empty()` on a string: `""` and `"0"` count as missing.
fn php_empty(v: &str) -> bool {
    v.is_empty() || v == "0"
}

/// Checks every parameter against the spec, as the library does: required ones
/// must be non-empty; length and format are checked only on non-empty values.
pub fn validate(params: &[(String, String)]) -> Result<(), RequestError> {
    if params.len() > MAX_PARAMS {
        return Err(RequestError::TooMany(params.len()));
    }
    if let Some((k, _)) = params.iter().find(|(k, _)| {
        k.is_empty()
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }) {
        return Err(RequestError::BadName(super::error::printable(k.as_bytes())));
    }
    if let Some((k, _)) = params.iter().find(|(k, _)| RESERVED.contains(&k.as_str())) {
        return Err(RequestError::Reserved(k.clone()));
    }
    if let Some((k, _)) = params.iter().find(|(k, _)| gateway_only(k)) {
        return Err(RequestError::GatewayOnly(k.clone()));
    }
    // The order id is stored and looked up: a NUL could not even be stored.
    if let Some((_, v)) = params
        .iter()
        .find(|(k, v)| k == "orderid" && v.chars().any(char::is_control))
    {
        return Err(RequestError::Invalid {
            field: "orderid",
            value: super::error::printable(v.as_bytes()),
        });
    }
    for (field, max, required, format) in SPEC {
        let value = params
            .iter()
            .rev()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str());
        match value.filter(|v| !php_empty(v)) {
            None if *required => return Err(RequestError::Missing(field)),
            None => {}
            Some(v) if v.len() > *max => {
                return Err(RequestError::TooLong {
                    field,
                    len: v.len(),
                    max: *max,
                })
            }
            Some(v) if !format.accepts(v) => {
                return Err(RequestError::Invalid {
                    field,
                    value: v.to_string(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A payment request: the fields in the order given, then `version` and
/// `projectid`, `data` = url-safe base64 of that query, `sign` = MD5(data + password).
pub fn build_payment_request(
    project_id: u64,
    password: &str,
    params: &[(String, String)],
    version: &str,
) -> Result<SignedRequest, RequestError> {
    validate(params)?;
    let project = project_id.to_string();
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(params.len() + 2);
    for (k, v) in params {
        // A repeated key keeps its first position and takes the last value, as in a PHP array.
        match pairs.iter_mut().find(|(pk, _)| pk == k) {
            Some(slot) => slot.1 = v,
            None => pairs.push((k, v)),
        }
    }
    pairs.push(("version", version));
    pairs.push(("projectid", &project));
    Ok(SignedRequest::sign(&php::build_query(pairs), password))
}

/// A request that repeats an earlier order.
pub fn build_repeat_request(
    project_id: u64,
    password: &str,
    orderid: &str,
    version: &str,
) -> SignedRequest {
    let project = project_id.to_string();
    let query = php::build_query([
        ("orderid", orderid),
        ("version", version),
        ("projectid", project.as_str()),
        ("repeat_request", "1"),
    ]);
    SignedRequest::sign(&query, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn minimal() -> Vec<(String, String)> {
        p(&[
            ("orderid", "1"),
            ("accepturl", "https://a"),
            ("cancelurl", "https://c"),
            ("callbackurl", "https://b"),
        ])
    }

    #[test]
    fn validation_follows_the_library() {
        let mut params = minimal();
        params[0].1 = String::new();
        assert_eq!(validate(&params), Err(RequestError::Missing("orderid")));
        params[0].1 = "0".into();
        assert_eq!(validate(&params), Err(RequestError::Missing("orderid")));
        params[0].1 = "x".repeat(41);
        assert_eq!(
            validate(&params).unwrap_err().to_string(),
            "'orderid' value is too long (41), 40 characters allowed."
        );
        let mut params = minimal();
        params.push(("lang".into(), "lt".into()));
        assert_eq!(
            validate(&params).unwrap_err().to_string(),
            "'lang' value 'lt' is invalid."
        );
        let mut params = minimal();
        params.push(("test".into(), "2".into()));
        assert_eq!(validate(&params).unwrap_err().field(), "test");
        let mut params = minimal();
        params.push(("test".into(), "0".into()));
        params.push(("time_limit".into(), "2026-11-23 10:00:00".into()));
        assert_eq!(validate(&params), Ok(()));
        let mut params = minimal();
        params.push(("projectid".into(), "1".into()));
        assert!(matches!(validate(&params), Err(RequestError::Reserved(_))));
        for name in [
            "status",
            "payamount",
            "paycurrency",
            "requestid",
            "type",
            "name",
            "surename",
            "to",
            "from",
            "sms",
            "operator",
            "refund_amount",
            "refund_currency",
            "refund_timestamp",
            "ss1",
            "ss2",
            "ss3",
            "_ss1",
            "_ss2",
            "_ss1v2",
            "data",
            "sign",
        ] {
            let mut params = minimal();
            params.push((name.into(), "1".into()));
            let err = validate(&params).unwrap_err();
            assert_eq!(err, RequestError::GatewayOnly(name.into()), "{name}");
            assert_eq!(err.field(), name);
        }
        // Lengths are bytes: 14 two-byte letters are 28 bytes.
        let mut params = minimal();
        params.push(("p_zip".into(), "ž".repeat(11)));
        assert!(matches!(
            validate(&params),
            Err(RequestError::TooLong { len: 22, .. })
        ));
    }
}
