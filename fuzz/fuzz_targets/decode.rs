//! Fuzzes the decoders on arbitrary bytes: `base64url::decode`, `php::parse_str`
//! (and `url_decode`), `RequestParams::from_query_or_url`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use payhook::paysera::{base64url, php, RequestParams};

/// PHP's `max_input_nesting_level`.
const MAX_NESTING: usize = 64;

fn depth(v: &php::Value) -> usize {
    match v {
        php::Value::Str(_) => 0,
        php::Value::Array(a) => 1 + a.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
    }
}

/// Keys are unique at every level (PHP assignment replaces in place).
fn unique_keys(a: &php::Array) -> bool {
    let keys: Vec<&[u8]> = a.iter().map(|(k, _)| k).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.len() == keys.len()
        && a.iter().all(|(_, v)| match v {
            php::Value::Array(inner) => unique_keys(inner),
            php::Value::Str(_) => true,
        })
}

fn check_base64(input: &[u8]) {
    let decoded = base64url::decode(input);
    if let Ok(bytes) = &decoded {
        // encode ∘ decode is canonical and decodes back to the same bytes.
        let encoded = base64url::encode(bytes);
        assert_eq!(encoded.len() % 4, 0);
        assert!(encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b)));
        assert_eq!(base64url::decode(encoded.as_bytes()).as_ref(), Ok(bytes));
        // Never more than 3 bytes per 4 characters.
        assert!(bytes.len() * 4 <= input.len() * 3 + 3);
    }
    // ASCII whitespace is skipped wherever it is.
    let stripped: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| !b" \t\r\n".contains(b))
        .collect();
    assert_eq!(base64url::decode(&stripped), decoded);
    // Both alphabets mean the same.
    let standard: Vec<u8> = input
        .iter()
        .map(|&b| match b {
            b'-' => b'+',
            b'_' => b'/',
            b => b,
        })
        .collect();
    assert_eq!(base64url::decode(&standard), decoded);
}

fn check_parse_str(input: &[u8]) {
    let parsed = php::parse_str(input);
    assert!(parsed.len() <= php::MAX_INPUT_VARS);
    assert!(unique_keys(&parsed));
    for (k, v) in parsed.iter() {
        assert!(!k.is_empty(), "empty top-level name");
        assert!(!k.contains(&0), "NUL in a name");
        assert_ne!(k[0], b' ', "leading space in a name");
        assert!(depth(v) <= MAX_NESTING, "nesting deeper than PHP keeps");
    }
    // Parsing is deterministic, and Debug never panics.
    assert_eq!(php::parse_str(input), parsed);
    let _ = format!("{parsed:?}");
    // A value round-trips through urlencode/urldecode.
    let mut encoded = String::new();
    php::url_encode_into(&mut encoded, input);
    assert_eq!(php::url_decode(encoded.as_bytes()), input);
    assert!(php::url_decode(input).len() <= input.len());
}

fn check_from_query_or_url(text: &str) {
    let params = RequestParams::from_query_or_url(text);
    let debug = format!("{params:?}");
    // A bare query and the same query behind a URL give the same parameters.
    if !text.contains('?') && text.trim() == text {
        let url = format!("https://shop.example/callback?{text}");
        let via_url = RequestParams::from_query_or_url(&url);
        assert_eq!(format!("{via_url:?}"), debug);
    }
}

fuzz_target!(|input: &[u8]| {
    check_base64(input);
    check_parse_str(input);
    check_from_query_or_url(&String::from_utf8_lossy(input));
});
