//! Stored text made safe for the operator's terminal.
//!
//! Anyone can make payhook store text: an unauthenticated request's raw bytes
//! are journaled (valid UTF-8 is kept as it is, `store::raw`). Printed
//! verbatim, control characters in it would be the terminal's commands: OSC 0
//! retitles the window, `ESC[2J` clears the screen for a forged line, OSC 52
//! writes the clipboard, `ESC[8m` hides text. So every command that prints
//! stored text passes it through [`escape`] (tables, `callbacks show`) or
//! [`json`] (`--json`), and no control character reaches the terminal.
//!
//! The escapes: tab, line feed and carriage return as `\t`, `\n`, `\r`; every
//! other C0 control, DEL and every C1 control (U+0080 to U+009F: `char::is_control`)
//! as `\u{1b}`, `\u{7f}`, `\u{9b}` (lower-case hex, Rust's spelling). Nothing
//! else is changed, a backslash included: the journal's raw text already
//! writes a backslash as `\\` and a byte that is not UTF-8 as `\xHH`.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character escaped (see the module documentation).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// An optional stored value, `-` when there is none.
pub fn or_dash(text: Option<&str>) -> Cow<'_, str> {
    text.map_or(Cow::Borrowed("-"), escape)
}

/// `value` as JSON text with no control character left raw. serde_json
/// escapes C0 controls in strings but writes DEL and the C1 controls as they
/// are; here they become `\u007f`, `\u009b`: the same JSON value, since they
/// can only occur inside strings.
pub fn json<T: serde::Serialize + ?Sized>(
    value: &T,
    pretty: bool,
) -> Result<String, serde_json::Error> {
    let text = if pretty {
        serde_json::to_string_pretty(value)?
    } else {
        serde_json::to_string(value)?
    };
    if !text.chars().any(raw_in_json) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if raw_in_json(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// The control characters serde_json leaves raw in strings: DEL and C1. (A
/// pretty document's own line feeds are its structure, not stored text.)
fn raw_in_json(c: char) -> bool {
    c.is_control() && u32::from(c) >= 0x7f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte a terminal could take as a command: C0, DEL, C1.
    fn controls() -> String {
        (0u32..0x20)
            .chain(0x7f..0xa0)
            .filter_map(char::from_u32)
            .collect()
    }

    #[test]
    fn no_control_character_survives() {
        let hostile = format!(
            "\x1b]0;title\x07\x1b[2J\noutcome      fulfilled\x1b]52;c;cm0gLXJm\x07\x1b[8mhidden\u{9b}2J{}",
            controls()
        );
        let shown = escape(&hostile);
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert!(shown.starts_with("\\u{1b}]0;title\\u{7}\\u{1b}[2J\\noutcome"));
        assert!(shown.contains("\\u{9b}2J") && shown.contains("\\u{7f}"));
        assert_eq!(escape("plain text, ąčę \\x00"), "plain text, ąčę \\x00");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(or_dash(None), "-");
    }

    #[test]
    fn json_keeps_its_value_and_loses_its_controls() {
        let value = serde_json::json!({"raw": controls(), "ok": "ąč"});
        for pretty in [false, true] {
            let text = json(&value, pretty).unwrap();
            let structure = if pretty { vec!['\n'] } else { vec![] };
            assert!(
                !text
                    .chars()
                    .any(|c| c.is_control() && !structure.contains(&c)),
                "{text:?}"
            );
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back, value);
        }
        // serde_json alone leaves DEL and C1 raw: what `json` is for.
        assert!(serde_json::to_string(&value).unwrap().contains('\u{9b}'));
    }
}
