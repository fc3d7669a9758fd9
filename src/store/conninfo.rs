//! Reading a libpq connection string without changing it: which form it is
//! (a `postgres://` URI or `keyword = value` pairs) and where each parameter
//! stands, as byte ranges. Redaction, the socket bounds and the check of
//! several hosts all read parameters here, so they agree on what a string
//! holds. Pure: the string is never quoted back.

use std::ops::Range;

/// How libpq reads the string.
pub(super) enum Form {
    /// `scheme://…`; the user-info and host list start at this byte.
    Uri { after_scheme: usize },
    /// `keyword = value` pairs.
    KeyValue,
    /// Neither (no scheme and no `=`).
    Neither,
}

impl Form {
    pub(super) fn of(s: &str) -> Form {
        // A URI only when it starts with a scheme: a key=value string whose
        // password happens to hold `://` is still a key=value string.
        let scheme = s.find("://").filter(|&end| {
            end > 0
                && s[..end]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
        });
        match scheme {
            Some(end) => Form::Uri {
                after_scheme: end + 3,
            },
            None if s.contains('=') => Form::KeyValue,
            None => Form::Neither,
        }
    }
}

/// One `name=value`: where its name and its value stand (a key=value value
/// with its quotes, a URI value still percent-encoded).
pub(super) struct Param {
    pub(super) name: Range<usize>,
    pub(super) value: Range<usize>,
}

/// A URI's query parameters: after the first `?` from `start` on (it may sit
/// inside the user-info, which only joins names), up to a `#`. A parameter
/// without `=` is passed over.
pub(super) fn uri_query(url: &str, start: usize) -> Vec<Param> {
    let Some(q) = url[start..].find('?') else {
        return Vec::new();
    };
    let mut pos = start + q + 1;
    let end = url[pos..].find('#').map_or(url.len(), |h| pos + h);
    let mut params = Vec::new();
    for param in url[pos..end].split('&') {
        if let Some(eq) = param.find('=') {
            params.push(Param {
                name: pos..pos + eq,
                value: pos + eq + 1..pos + param.len(),
            });
        }
        pos += param.len() + 1;
    }
    params
}

/// A URI's host list as written (`h1:5432,h2:5432`): after the user-info's
/// last `@`, up to the path or the query.
pub(super) fn uri_hosts(url: &str, start: usize) -> &str {
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, hosts)| hosts)
}

/// libpq's `keyword = value` pairs: values bare (backslash escapes) or in
/// single quotes. The second part is where the string stops parsing, if it
/// does: what follows is no parameter anyone can name.
pub(super) fn key_values(s: &str) -> (Vec<Param>, Option<usize>) {
    let b = s.as_bytes();
    let skip_space = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut params = Vec::new();
    let mut i = skip_space(0);
    while i < b.len() {
        let key_start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let name = key_start..i;
        i = skip_space(i);
        if i >= b.len() || b[i] != b'=' {
            return (params, Some(key_start));
        }
        i = skip_space(i + 1);
        let value_start = i;
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            while i < b.len() {
                match b[i] {
                    b'\\' => i += 2,
                    b'\'' => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
        }
        i = i.min(b.len());
        // A backslash before a multi-byte character can leave `i` inside it.
        while !s.is_char_boundary(i) {
            i += 1;
        }
        params.push(Param {
            name,
            value: value_start..i,
        });
        i = skip_space(i);
    }
    (params, None)
}

/// A key=value value as libpq reads it: quotes dropped, escapes resolved.
fn unquoted(raw: &str) -> String {
    let inner = raw
        .strip_prefix('\'')
        .map_or(raw, |q| q.strip_suffix('\'').unwrap_or(q));
    let mut value = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.extend(chars.next()),
            c => value.push(c),
        }
    }
    value
}

/// Every parameter's name and value as libpq reads them, the URI's host list
/// as `host`.
fn decoded(s: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    match Form::of(s) {
        Form::Uri { after_scheme } => {
            let mut params = vec![("host".to_string(), uri_hosts(s, after_scheme).to_string())];
            params.extend(
                uri_query(s, after_scheme)
                    .into_iter()
                    .map(|p| (decode(&s[p.name]), decode(&s[p.value]))),
            );
            params
        }
        Form::KeyValue => key_values(s)
            .0
            .into_iter()
            .map(|p| (s[p.name].to_string(), unquoted(&s[p.value])))
            .collect(),
        Form::Neither => Vec::new(),
    }
}

/// The string names several hosts (a primary and its standbys) without
/// asking libpq for the one that takes writes (`target_session_attrs` at
/// `read-write` or `primary`): libpq would keep the first host that answers,
/// a standby included, and every write there fails (`docs/ha.md`).
pub fn several_hosts_without_primary(url: &str) -> bool {
    let params = decoded(url);
    let several = params
        .iter()
        .any(|(key, value)| matches!(key.as_str(), "host" | "hostaddr") && value.contains(','));
    let primary = params.iter().any(|(key, value)| {
        key == "target_session_attrs" && matches!(value.as_str(), "read-write" | "primary")
    });
    several && !primary
}

#[cfg(test)]
mod tests {
    use super::several_hosts_without_primary as refused;

    #[test]
    fn one_host_needs_nothing() {
        assert!(!refused("postgres://u:p@db:5432/payhook"));
        assert!(!refused("postgres://db/payhook?sslmode=require"));
        assert!(!refused("host=db port=5432 dbname=payhook"));
        // A comma inside a quoted password is no host list.
        assert!(!refused("host=db password='a,b host=x,y' dbname=payhook"));
        assert!(!refused("postgres://u:a%2Cb@db/payhook"));
    }

    #[test]
    fn several_hosts_need_the_primary_asked_for() {
        assert!(refused("postgres://u:p@h1:5432,h2:5432/payhook"));
        assert!(refused("postgres://h1,h2/payhook?target_session_attrs=any"));
        assert!(refused("postgres:///payhook?host=h1,h2"));
        assert!(refused("host=h1,h2 dbname=payhook"));
        assert!(refused(
            "hostaddr=10.0.0.1,10.0.0.2 dbname=payhook target_session_attrs=prefer-standby"
        ));
    }

    #[test]
    fn several_hosts_with_read_write_or_primary_are_accepted() {
        assert!(!refused(
            "postgres://u:p@h1:5432,h2:5432/payhook?target_session_attrs=read-write"
        ));
        assert!(!refused(
            "postgresql://h1,h2/payhook?sslmode=require&target_session_attrs=primary"
        ));
        assert!(!refused(
            "host=h1,h2 dbname=payhook target_session_attrs = 'read-write'"
        ));
    }
}
