//! PHP's request decoding, byte for byte: how `$_GET`/`$_POST` and `parse_str`
//! turn a query into variables, and how `http_build_query` turns them back.
//!
//! The gateway's signatures are computed over strings that PHP decoded, and the
//! official library reads fields the way PHP parses them, so matching PHP here
//! is what makes payhook accept exactly what the library accepts.

use std::fmt;

/// PHP's `max_input_vars`: variables beyond this many are dropped, as PHP does.
pub const MAX_INPUT_VARS: usize = 1000;
/// PHP's `max_input_nesting_level`: deeper bracket names are dropped.
const MAX_NESTING: usize = 64;

/// A value as PHP holds it after parsing: a byte string or an ordered array.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Str(Vec<u8>),
    Array(Array),
}

/// An ordered PHP array with string keys (integer keys are kept as their decimal text).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Array(Vec<(Vec<u8>, Value)>);

impl Array {
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// The byte string under `key`; `Err(())` when it holds an array.
    pub fn get_str(&self, key: &[u8]) -> Option<Result<&[u8], ()>> {
        self.get(key).map(|v| match v {
            Value::Str(s) => Ok(s.as_slice()),
            Value::Array(_) => Err(()),
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Value)> {
        self.0.iter().map(|(k, v)| (k.as_slice(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// PHP assignment: an existing key keeps its position and takes the new value.
    pub fn set(&mut self, key: Vec<u8>, value: Value) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// PHP `$a[] = v`: the next integer key after the largest one used so far.
    fn push(&mut self, value: Value) {
        let next = self
            .0
            .iter()
            .filter_map(|(k, _)| std::str::from_utf8(k).ok()?.parse::<i64>().ok())
            .max()
            .map_or(0, |m| m.saturating_add(1));
        self.0.push((next.to_string().into_bytes(), value));
    }

    fn entry_array(&mut self, key: Vec<u8>) -> &mut Array {
        let pos = match self.0.iter().position(|(k, _)| *k == key) {
            Some(pos) => {
                if !matches!(self.0[pos].1, Value::Array(_)) {
                    self.0[pos].1 = Value::Array(Array::default());
                }
                pos
            }
            None => {
                self.0.push((key, Value::Array(Array::default())));
                self.0.len() - 1
            }
        };
        match &mut self.0[pos].1 {
            Value::Array(a) => a,
            Value::Str(_) => unreachable!("slot was just made an array"),
        }
    }

    /// `$_REQUEST`-style merge: every top-level key of `other` overwrites ours.
    pub fn merge_over(&mut self, other: Array) {
        self.merge_over_noting_repeats(other, &mut Vec::new());
    }

    /// `merge_over`, noting the keys both arrays held.
    pub fn merge_over_noting_repeats(&mut self, other: Array, repeated: &mut Vec<Vec<u8>>) {
        for (k, v) in other.0 {
            if self.contains_key(&k) && !repeated.contains(&k) {
                repeated.push(k.clone());
            }
            self.set(k, v);
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{:?}", String::from_utf8_lossy(s)),
            Value::Array(a) => a.fmt(f),
        }
    }
}

impl fmt::Debug for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (String::from_utf8_lossy(k), v)))
            .finish()
    }
}

/// `urldecode`: `+` is a space, `%XX` a byte, and a broken `%` sequence stays as it is.
pub fn url_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => match (hex_val(input[i + 1]), hex_val(input[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `parse_str` / `$_GET` filling: `&`-separated `name=value` pairs, URL-decoded,
/// with PHP's name mangling and bracket arrays; a later name replaces an earlier one.
pub fn parse_str(query: &[u8]) -> Array {
    parse_str_noting_repeats(query, &mut Vec::new())
}

/// `parse_str`, also noting every top-level name (as PHP mangles it) that was
/// assigned more than once: PHP silently keeps the last value, which hides a
/// repeated name from anything that reads the parsed array.
pub fn parse_str_noting_repeats(query: &[u8], repeated: &mut Vec<Vec<u8>>) -> Array {
    let mut vars = Array::default();
    let mut count = 0;
    for segment in query.split(|&b| b == b'&') {
        if segment.is_empty() {
            continue;
        }
        count += 1;
        if count > MAX_INPUT_VARS {
            break;
        }
        let (name, value) = match segment.iter().position(|&b| b == b'=') {
            Some(eq) => (&segment[..eq], &segment[eq + 1..]),
            None => (segment, &b""[..]),
        };
        if let Some(name) = register(&mut vars, &url_decode(name), url_decode(value)) {
            if !repeated.contains(&name) {
                repeated.push(name);
            }
        }
    }
    vars
}

/// `php_register_variable_ex`: turns a decoded name into a path and assigns.
/// Returns the top-level name when it was already set.
fn register(vars: &mut Array, raw_name: &[u8], value: Vec<u8>) -> Option<Vec<u8>> {
    // The name ends at a NUL byte, and leading spaces are dropped.
    let name = raw_name.split(|&b| b == 0).next().unwrap_or_default();
    let start = name.iter().position(|&b| b != b' ').unwrap_or(name.len());
    let name = &name[start..];

    // Before the first '[', spaces and dots become underscores.
    let bracket = name.iter().position(|&b| b == b'[');
    let base_end = bracket.unwrap_or(name.len());
    let mut base: Vec<u8> = name[..base_end]
        .iter()
        .map(|&b| if b == b' ' || b == b'.' { b'_' } else { b })
        .collect();
    if base.is_empty() {
        return None;
    }

    let Some(open) = bracket else {
        let repeated = vars.contains_key(&base).then(|| base.clone());
        vars.set(base, Value::Str(value));
        return repeated;
    };

    // Collect `[index]` groups; an unclosed '[' makes the whole name plain, with '_' for '['.
    let mut indices: Vec<Option<Vec<u8>>> = Vec::new();
    let mut pos = open;
    loop {
        let rest = &name[pos + 1..];
        match rest.iter().position(|&b| b == b']') {
            None => {
                if indices.is_empty() {
                    base.push(b'_');
                    base.extend_from_slice(rest);
                    let repeated = vars.contains_key(&base).then(|| base.clone());
                    vars.set(base, Value::Str(value));
                    return repeated;
                }
                break;
            }
            Some(close) => {
                let index = &rest[..close];
                indices.push(if index.is_empty() {
                    None
                } else {
                    Some(index.to_vec())
                });
                let after = pos + 1 + close + 1;
                if name.get(after) == Some(&b'[') {
                    pos = after;
                } else {
                    break;
                }
            }
        }
    }
    if indices.len() > MAX_NESTING {
        return None;
    }

    let repeated = vars.contains_key(&base).then(|| base.clone());
    let mut target = vars.entry_array(base);
    let last = indices.len() - 1;
    for (i, index) in indices.into_iter().enumerate() {
        if i == last {
            match index {
                Some(key) => target.set(key, Value::Str(value)),
                None => target.push(Value::Str(value)),
            }
            return repeated;
        }
        target = match index {
            Some(key) => target.entry_array(key),
            None => {
                target.push(Value::Array(Array::default()));
                match target.0.last_mut() {
                    Some((_, Value::Array(a))) => a,
                    _ => unreachable!("an array was just pushed"),
                }
            }
        };
    }
    repeated
}

/// PHP `urlencode` as `http_build_query` uses it: `A-Za-z0-9-_.` kept,
/// space as `+`, every other byte as `%XX` in upper-case hex.
pub fn url_encode_into(out: &mut String, input: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in input {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
}

/// `http_build_query($pairs, "", "&")` for flat string pairs, in the order given.
pub fn build_query<'a, I>(pairs: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut out = String::new();
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        url_encode_into(&mut out, k.as_bytes());
        out.push('=');
        url_encode_into(&mut out, v.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(v.as_bytes().to_vec())
    }

    fn parsed(q: &str) -> Array {
        parse_str(q.as_bytes())
    }

    #[test]
    fn last_duplicate_wins_in_first_position() {
        let a = parsed("a=1&b=2&a=3");
        let keys: Vec<_> = a.iter().map(|(k, _)| k.to_vec()).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(a.get(b"a"), Some(&s("3")));
    }

    #[test]
    fn names_are_mangled_like_php() {
        assert_eq!(parsed("a+b=c+d").get(b"a_b"), Some(&s("c d")));
        assert_eq!(parsed("a%20b=c%20d").get(b"a_b"), Some(&s("c d")));
        for q in ["a.b=1", "a%2Eb=1"] {
            assert!(parsed(q).contains_key(b"a_b"), "{q}");
        }
        assert!(parsed(".a=1").contains_key(b"_a"));
        assert!(parsed("a.=1").contains_key(b"a_"));
        assert_eq!(parsed("a_b=1&a.b=2").get(b"a_b"), Some(&s("2")));
        assert!(parsed(" a=1").contains_key(b"a"));
        assert!(parsed("a[b=1").contains_key(b"a_b"));
        assert!(parsed("a]b=1").contains_key(b"a]b"));
        assert!(parsed("a%00b=1").contains_key(b"a"));
    }

    #[test]
    fn repeated_names_are_noted_as_php_mangles_them() {
        let mut repeated = Vec::new();
        let vars = parse_str_noting_repeats(b"a=1&b=2&a=3&c.d=4&c_d=5&e[]=6", &mut repeated);
        assert_eq!(vars.get(b"a"), Some(&s("3")));
        assert_eq!(repeated, vec![b"a".to_vec(), b"c_d".to_vec()]);
        let mut body_repeats = Vec::new();
        let mut query = parsed("x=1&y=2");
        query.merge_over_noting_repeats(parsed("y=3&z=4"), &mut body_repeats);
        assert_eq!(body_repeats, vec![b"y".to_vec()]);
    }

    #[test]
    fn brackets_make_arrays() {
        let a = parsed("a[b]=c");
        let Some(Value::Array(inner)) = a.get(b"a") else {
            panic!("not an array")
        };
        assert_eq!(inner.get(b"b"), Some(&s("c")));
        let a = parsed("a[]=1&a[]=2");
        let Some(Value::Array(inner)) = a.get(b"a") else {
            panic!("not an array")
        };
        assert_eq!(inner.get(b"0"), Some(&s("1")));
        assert_eq!(inner.get(b"1"), Some(&s("2")));
        let a = parsed("a[b]c=1");
        assert!(matches!(a.get(b"a"), Some(Value::Array(_))));
        assert!(matches!(
            parsed("projectid=1&projectid[]=2").get(b"projectid"),
            Some(Value::Array(_))
        ));
        assert_eq!(parsed("a[x]=2&a=1").get(b"a"), Some(&s("1")));
    }

    #[test]
    fn values_and_segments_like_php() {
        assert_eq!(parsed("flag").get(b"flag"), Some(&s("")));
        assert!(parsed("=v").is_empty());
        assert_eq!(parsed("&&a=1&&").len(), 1);
        assert_eq!(parsed("a=1=2").get(b"a"), Some(&s("1=2")));
        assert_eq!(parsed("a=%zz").get(b"a"), Some(&s("%zz")));
        assert_eq!(parsed("a=%4").get(b"a"), Some(&s("%4")));
        assert_eq!(parsed("a=%").get(b"a"), Some(&s("%")));
        assert_eq!(parsed("a=%00b").get(b"a"), Some(&Value::Str(vec![0, b'b'])));
        assert_eq!(parsed("a=1;b=2").get(b"a"), Some(&s("1;b=2")));
        assert_eq!(parsed("A=1&a=2").len(), 2);
    }

    #[test]
    fn input_vars_are_capped() {
        let q: Vec<String> = (0..1500).map(|i| format!("v{i}=1")).collect();
        assert_eq!(parsed(&q.join("&")).len(), MAX_INPUT_VARS);
    }

    #[test]
    fn urlencode_matches_php() {
        assert_eq!(
            build_query([("a", "~*-_. +/:?&=é")]),
            "a=%7E%2A-_.+%2B%2F%3A%3F%26%3D%C3%A9"
        );
        assert_eq!(
            build_query([
                ("param1", "abc"),
                ("param2", "Some string with symbols %=&")
            ]),
            "param1=abc&param2=Some+string+with+symbols+%25%3D%26"
        );
    }
}
