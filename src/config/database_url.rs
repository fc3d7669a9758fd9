//! What a PostgreSQL connection string says about where it connects: several
//! hosts (a primary and its standbys, for high availability) must come with
//! libpq's `target_session_attrs` set to `read-write` or `primary`, or libpq
//! takes the first host that answers, a standby included, and every write
//! there fails (`docs/ha.md`). Pure: the string is read, never quoted back.

/// The connection string names several hosts without asking libpq for the
/// one that takes writes.
pub(super) fn several_hosts_without_primary(url: &str) -> bool {
    let params = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        uri_params(url)
    } else {
        conninfo_params(url)
    };
    let several = params
        .iter()
        .any(|(key, value)| matches!(key.as_str(), "host" | "hostaddr") && value.contains(','));
    let primary = params.iter().any(|(key, value)| {
        key == "target_session_attrs" && matches!(value.as_str(), "read-write" | "primary")
    });
    several && !primary
}

/// A URI's host list (as `host`) and its query parameters, percent-decoded.
fn uri_params(url: &str) -> Vec<(String, String)> {
    let rest = &url[url.find("://").map_or(0, |i| i + 3)..];
    let (authority, query) = match rest.find(['/', '?']) {
        Some(end) => (
            &rest[..end],
            rest[end..].split_once('?').map_or("", |(_, q)| q),
        ),
        None => (rest, ""),
    };
    // Passwords may hold '@' only percent-encoded: the last one ends the user info.
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut params = vec![("host".to_string(), hosts.to_string())];
    params.extend(query.split('&').filter_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        Some((decode(key), decode(value)))
    }));
    params
}

/// `key = value` pairs of a libpq keyword string; a value may be single-quoted
/// with backslash escapes.
fn conninfo_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if key.is_empty() || chars.next() != Some('=') {
            return params;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                match c {
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        }
        params.push((key, value));
    }
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
