//! The raw request as the journal keeps it: the exact bytes received, written
//! as text every backend can hold.
//!
//! PostgreSQL `TEXT` cannot hold a NUL byte and neither backend should be
//! handed invalid UTF-8, yet a hostile request may carry both. Converting
//! lossily would lose evidence and a raw NUL would turn a bad request into a
//! database error (a 503 and a false `database_error` alert). So the bytes are
//! escaped, reversibly and unambiguously:
//!
//! - a backslash `\` is written `\\`;
//! - a NUL byte is written `\x00`;
//! - every byte that is not part of valid UTF-8 is written `\xHH` (two
//!   lower-case hex digits);
//! - everything else (valid UTF-8 other than NUL and `\`) is kept as it is.
//!
//! A backslash therefore always starts an escape, and [`unescape`] gives the
//! bytes back. A genuine callback (URL-encoded ASCII) is stored unchanged.

use sha2::{Digest, Sha256};

/// What was received on the callback endpoint, joined as the journal has always
/// joined it: the query alone; the body alone when the query is empty; else the
/// query, `&` and the body (replaying it gives the same parameters, the body
/// winning as in PHP's `$_REQUEST`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRequest(Vec<u8>);

impl RawRequest {
    pub fn join(query: &[u8], body: &[u8]) -> RawRequest {
        let mut bytes = Vec::with_capacity(query.len() + 1 + body.len());
        bytes.extend_from_slice(query);
        if !query.is_empty() && !body.is_empty() {
            bytes.push(b'&');
        }
        bytes.extend_from_slice(body);
        RawRequest(bytes)
    }

    /// A Checkout webhook as the journal keeps it: its `X-Paysera-*` headers
    /// one per line (`Name: value`), an empty line, then the body exactly as
    /// received. [`RawRequest::split_webhook`] gives the two back.
    pub fn webhook<'a>(
        headers: impl Iterator<Item = (&'a str, &'a [u8])>,
        body: &[u8],
    ) -> RawRequest {
        let mut bytes = Vec::with_capacity(512 + body.len());
        for (name, value) in headers {
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend_from_slice(b": ");
            bytes.extend_from_slice(value);
            bytes.extend_from_slice(b"\n");
        }
        bytes.extend_from_slice(b"\n");
        bytes.extend_from_slice(body);
        RawRequest(bytes)
    }

    /// The headers (name, value) and the body of a journaled webhook; `None`
    /// when the bytes are not in [`RawRequest::webhook`]'s form.
    pub fn split_webhook(bytes: &[u8]) -> Option<(HeaderPairs, &[u8])> {
        let mut headers = Vec::new();
        let mut rest = bytes;
        loop {
            let end = rest.iter().position(|b| *b == b'\n')?;
            let line = &rest[..end];
            rest = &rest[end + 1..];
            if line.is_empty() {
                return Some((headers, rest));
            }
            let colon = line.windows(2).position(|w| w == b": ")?;
            let name = std::str::from_utf8(&line[..colon]).ok()?.to_string();
            headers.push((name, line[colon + 2..].to_vec()));
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Lower-case hex SHA-256 of the bytes received.
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(&self.0))
    }

    /// What the journal stores: the whole request escaped (`max_bytes:
    /// None`), or at most `max_bytes` bytes of escaped text.
    pub(crate) fn stored(&self, max_bytes: Option<usize>) -> StoredRaw {
        let (text, whole) = escape_within(&self.0, max_bytes.unwrap_or(usize::MAX));
        StoredRaw {
            text,
            length: self.stored_length(),
            sha256: self.sha256_hex(),
            truncated: !whole,
            unsigned: None,
        }
    }

    /// What the journal stores of a verified request: what its signature
    /// covers, whole; and when the request held anything else, its first
    /// `signed.unsigned_max_bytes` bytes as received beside it, like a rejected request's.
    pub(crate) fn stored_verified(&self, signed: &Signed) -> StoredRaw {
        let part = match &signed.part {
            Coverage::Whole => return self.stored(None),
            Coverage::Nothing => return self.stored(Some(signed.unsigned_max_bytes)),
            Coverage::Some(part) => part,
        };
        StoredRaw {
            text: escape(part),
            length: self.stored_length(),
            sha256: self.sha256_hex(),
            truncated: false,
            unsigned: Some(escape_within(&self.0, signed.unsigned_max_bytes).0),
        }
    }

    fn stored_length(&self) -> i64 {
        i64::try_from(self.0.len()).unwrap_or(i64::MAX)
    }
}

/// What of a verified request its signature covers, and how much of anything
/// else the journal keeps. Anyone holding a genuine callback (every buyer gets
/// one in the return URL) can send it again with whatever beside it: only the
/// signed part is the gateway's, so only it is kept whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    part: Coverage,
    /// Bytes kept of anything else (`PAYHOOK_REJECTED_MAX_BYTES`).
    pub(crate) unsigned_max_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Coverage {
    /// The request held nothing but what is signed: kept as received.
    Whole,
    /// The signed part, kept whole; the request beside it, bounded.
    Some(Vec<u8>),
    /// Nothing is signed (a gateway without a recipe): the request is kept
    /// bounded, as a rejected one is.
    Nothing,
}

impl Signed {
    /// `part`: the signed part in a form the pipeline reads back as the same
    /// callback (a replay verifies it again), or `None` when that is the whole
    /// request.
    pub fn new(part: Option<Vec<u8>>, unsigned_max_bytes: usize) -> Signed {
        Signed {
            part: part.map_or(Coverage::Whole, Coverage::Some),
            unsigned_max_bytes,
        }
    }

    /// Nothing in the request is signed.
    pub fn nothing(max_bytes: usize) -> Signed {
        Signed {
            part: Coverage::Nothing,
            unsigned_max_bytes: max_bytes,
        }
    }

    /// Nothing beside the signed part: kept as received.
    pub fn is_whole(&self) -> bool {
        self.part == Coverage::Whole
    }
}

/// Header names and raw values, in the order received.
pub type HeaderPairs = Vec<(String, Vec<u8>)>;

/// The journal's columns for one raw request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredRaw {
    pub text: String,
    pub length: i64,
    pub sha256: String,
    /// `text` is only the beginning of the request (not replayable).
    pub truncated: bool,
    /// The beginning of the request as received, when `text` is only its
    /// signed part.
    pub unsigned: Option<String>,
}

/// The escaped form of `bytes` (see the module documentation).
pub fn escape(bytes: &[u8]) -> String {
    escape_within(bytes, usize::MAX).0
}

/// The escaped form of the longest beginning of `bytes` whose escaped form
/// fits in `max` bytes, and whether that was all of `bytes`. The cut falls
/// between escapes, never inside one, so the text unescapes to a prefix.
pub fn escape_within(bytes: &[u8], max: usize) -> (String, bool) {
    let mut out = String::with_capacity(bytes.len().min(max));
    let fits = |out: &mut String, piece: &str| {
        if out.len() + piece.len() > max {
            return false;
        }
        out.push_str(piece);
        true
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let mut buf = [0u8; 4];
            let piece = match c {
                '\\' => "\\\\",
                '\0' => "\\x00",
                c => c.encode_utf8(&mut buf),
            };
            if !fits(&mut out, piece) {
                return (out, false);
            }
        }
        for b in chunk.invalid() {
            if !fits(&mut out, &format!("\\x{b:02x}")) {
                return (out, false);
            }
        }
    }
    (out, true)
}

/// Text that is not the escaped form of any bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad escape at byte {0}")]
pub struct BadEscape(pub usize);

/// The bytes `escape` was given.
pub fn unescape(text: &str) -> Result<Vec<u8>, BadEscape> {
    let input = text.as_bytes();
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        match input.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let byte = input
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .filter(|h| h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(BadEscape(i))?;
                out.push(byte);
                i += 4;
            }
            _ => return Err(BadEscape(i)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_journaled_webhook_splits_back_into_headers_and_body() {
        let body = b"{\"a\":1}\n\nnot a header: line";
        let raw = RawRequest::webhook(
            [
                ("x-paysera-signature", &b"ab"[..]),
                ("x-paysera-created-at", &b"1"[..]),
            ]
            .into_iter(),
            body,
        );
        let (headers, back) = RawRequest::split_webhook(raw.bytes()).unwrap();
        assert_eq!(back, body);
        assert_eq!(
            headers,
            [
                ("x-paysera-signature".to_string(), b"ab".to_vec()),
                ("x-paysera-created-at".to_string(), b"1".to_vec())
            ]
        );
        assert_eq!(RawRequest::split_webhook(b"data=1&ss1=2"), None);
    }

    #[test]
    fn ordinary_requests_are_stored_unchanged() {
        for text in ["", "data=abc%3D&ss2=x-y_z", "wp_p_email=a%40b.lt&ž=ę"] {
            assert_eq!(escape(text.as_bytes()), text);
        }
    }

    #[test]
    fn the_escapes() {
        assert_eq!(escape(b"a\0b"), "a\\x00b");
        assert_eq!(escape(b"\\x00"), "\\\\x00");
        assert_eq!(escape(b"\xff\xfe="), "\\xff\\xfe=");
        // A truncated multi-byte character is invalid UTF-8: each byte escaped.
        assert_eq!(escape("ž".as_bytes()[..1].as_ref()), "\\xc5");
        assert_eq!(unescape("\\\\x00").unwrap(), b"\\x00");
        for bad in ["\\", "\\x", "\\x0", "\\xg0", "\\xFF", "\\n", "a\\"] {
            assert!(unescape(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_cut_falls_between_escapes() {
        assert_eq!(escape_within(b"ab\0cd", 2), ("ab".to_string(), false));
        assert_eq!(escape_within(b"ab\0cd", 5), ("ab".to_string(), false));
        assert_eq!(escape_within(b"ab\0cd", 6), ("ab\\x00".to_string(), false));
        assert_eq!(escape_within(b"ab\0cd", 8), ("ab\\x00cd".to_string(), true));
        assert_eq!(escape_within("žž".as_bytes(), 3), ("ž".to_string(), false));
    }

    #[test]
    fn joined_as_the_journal_joins() {
        assert_eq!(RawRequest::join(b"a=1", b"").bytes(), b"a=1");
        assert_eq!(RawRequest::join(b"", b"b=2").bytes(), b"b=2");
        assert_eq!(RawRequest::join(b"a=1", b"b=2").bytes(), b"a=1&b=2");
        let raw = RawRequest::join(b"", b"");
        assert_eq!(
            raw.stored(Some(10)).sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    proptest! {
        #[test]
        fn escaping_round_trips_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let text = escape(&bytes);
            prop_assert!(!text.contains('\0'));
            prop_assert_eq!(unescape(&text).unwrap(), bytes);
        }

        #[test]
        fn a_cut_is_bounded_and_unescapes_to_a_prefix(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            max in 0usize..400,
        ) {
            let raw = RawRequest(bytes.clone());
            let stored = raw.stored(Some(max));
            prop_assert!(stored.text.len() <= max);
            prop_assert_eq!(stored.length as usize, bytes.len());
            let kept = unescape(&stored.text).unwrap();
            prop_assert!(bytes.starts_with(&kept));
            prop_assert_eq!(stored.truncated, kept.len() < bytes.len());
            // Cut as late as possible: the next escape would not have fitted.
            if stored.truncated {
                prop_assert!(escape(&bytes).len() > max);
            }
        }

        #[test]
        fn distinct_bytes_never_share_a_text(
            a in proptest::collection::vec(any::<u8>(), 0..40),
            b in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            prop_assert_eq!(a == b, escape(&a) == escape(&b));
        }
    }
}
