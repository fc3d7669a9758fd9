//! The gateway's url-safe base64: `-`/`_` for `+`/`/`, padding kept on encode.
//!
//! Decoding follows PHP's strict `base64_decode` after the library's alphabet swap
//! (protocol.md c.7): ASCII whitespace is skipped, padding is optional but must be
//! canonical when present, any other stray character is an error.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

const STANDARD_LENIENT_BITS: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

const URL_SAFE_PADDED: GeneralPurpose =
    GeneralPurpose::new(&alphabet::URL_SAFE, GeneralPurposeConfig::new());

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not valid base64")]
pub struct InvalidBase64;

/// Url-safe base64 with `=` padding, as `Util::encodeSafeUrlBase64` writes it.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_PADDED.encode(bytes)
}

/// Decodes either alphabet (the library maps `-_` to `+/` first, so both are accepted).
pub fn decode(text: &[u8]) -> Result<Vec<u8>, InvalidBase64> {
    let mut clean = Vec::with_capacity(text.len());
    let mut padding = 0usize;
    for &b in text {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'=' => padding += 1,
            // Data after padding (`YW==Jj`) is invalid.
            _ if padding > 0 => return Err(InvalidBase64),
            b'-' => clean.push(b'+'),
            b'_' => clean.push(b'/'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => clean.push(b),
            _ => return Err(InvalidBase64),
        }
    }
    if padding > 0 && (padding > 2 || !(clean.len() + padding).is_multiple_of(4)) {
        return Err(InvalidBase64);
    }
    STANDARD_LENIENT_BITS
        .decode(&clean)
        .map_err(|_| InvalidBase64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_php_strict_decoding() {
        let ok: &[(&str, &[u8])] = &[
            ("YWJj", b"abc"),
            ("YWI=", b"ab"),
            ("YWI", b"ab"),
            ("YQ==", b"a"),
            ("YQ", b"a"),
            ("YW Jj", b"abc"),
            ("YW\r\nJj\t", b"abc"),
            ("YR==", b"a"),
            ("YWK=", b"ab"),
            ("", b""),
            ("-_+/", &[0xfb, 0xff, 0xbf]),
        ];
        for (input, want) in ok {
            assert_eq!(decode(input.as_bytes()).as_deref(), Ok(*want), "{input:?}");
        }
        for bad in [
            "YQ=", "Y", "YW==Jj", "YWJj====", "====", "YW%Jj", "YW.J", "YW\0J", "YW\\J",
        ] {
            assert_eq!(decode(bad.as_bytes()), Err(InvalidBase64), "{bad:?}");
        }
    }

    #[test]
    fn encodes_url_safe_with_padding() {
        assert_eq!(encode(&[0xfb, 0xff]), "-_8=");
    }
}
