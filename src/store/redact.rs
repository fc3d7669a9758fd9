//! Database URLs fit for a log line: every password libpq could read from a
//! URL or a key=value connection string is found and replaced.

use super::conninfo::{self, Form};

/// A database URL fit for a log line: every password is replaced, whichever
/// form libpq reads it from: the user-info (`postgres://u:pw@h/db`), a query
/// parameter (`?password=pw`, `sslpassword=`), or a key=value connection string
/// (`host=h password=pw dbname=d`, quoted or not).
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut at = 0;
    for range in password_ranges(url) {
        out.push_str(&url[at..range.start]);
        out.push_str("***");
        at = range.end;
    }
    out.push_str(&url[at..]);
    out
}

/// The passwords a URL holds, as written and as decoded, so a message that
/// quotes one back (libpq does, for a malformed URL) can be scrubbed.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    for range in password_ranges(url) {
        let raw = &url[range];
        secrets.push(raw.to_string());
        secrets.push(
            percent_encoding::percent_decode_str(raw)
                .decode_utf8_lossy()
                .into_owned(),
        );
        if let Some(quoted) = raw.strip_prefix('\'') {
            let inner = quoted.strip_suffix('\'').unwrap_or(quoted);
            secrets.push(inner.to_string());
            secrets.push(inner.replace("\\'", "'").replace("\\\\", "\\"));
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort();
    secrets.dedup();
    secrets
}

/// r2d2 logs every failed connection attempt, and libpq's message can quote a
/// malformed connection string back, password included: scrubbed first.
#[derive(Debug)]
pub(super) struct ScrubbedConnectErrors(pub(super) Vec<String>);

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for ScrubbedConnectErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        let mut message = error.to_string();
        let mut secrets: Vec<&String> = self.0.iter().collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for secret in secrets {
            message = message.replace(secret.as_str(), "***");
        }
        tracing::error!(error = %message.trim_end(), "database connection failed");
    }
}

/// Sorted, disjoint byte ranges of `url` that hold a password.
fn password_ranges(url: &str) -> Vec<std::ops::Range<usize>> {
    let mut ranges = match Form::of(url) {
        Form::Uri { after_scheme } => uri_password_ranges(url, after_scheme),
        Form::KeyValue => key_value_password_ranges(url),
        Form::Neither => Vec::new(),
    };
    ranges.retain(|r| !r.is_empty());
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

fn uri_password_ranges(url: &str, start: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let rest = &url[start..];
    // The last '@' ends the user-info: a password may hold '@', '/' or '?'
    // unencoded (libpq then fails, and may quote it). An '@' in the query only
    // widens what is hidden.
    if let Some(at) = rest.rfind('@') {
        if let Some(colon) = rest[..at].find(':') {
            ranges.push(start + colon + 1..start + at);
        }
    }
    // Every parameter whose name mentions a password.
    ranges.extend(
        conninfo::uri_query(url, start)
            .into_iter()
            .filter(|p| {
                percent_encoding::percent_decode_str(&url[p.name.clone()])
                    .decode_utf8_lossy()
                    .to_ascii_lowercase()
                    .contains("password")
            })
            .map(|p| p.value),
    );
    ranges
}

/// Every value whose keyword mentions a password; anything that does not
/// parse is hidden from there on.
fn key_value_password_ranges(s: &str) -> Vec<std::ops::Range<usize>> {
    let (params, unparsed) = conninfo::key_values(s);
    params
        .into_iter()
        .filter(|p| s[p.name.clone()].to_ascii_lowercase().contains("password"))
        .map(|p| p.value)
        .chain(unparsed.map(|start| start..s.len()))
        .collect()
}

#[cfg(test)]
mod redact_tests {
    use super::{redact_url, url_secrets};
    use proptest::prelude::*;

    #[test]
    fn every_database_url_form_loses_its_password() {
        let cases = [
            ("postgres://u:hunter2@h/db", "postgres://u:***@h/db"),
            (
                "postgresql://u:hun@ter2@h:5432/db",
                "postgresql://u:***@h:5432/db",
            ),
            (
                "postgres://h/db?user=u&password=hunter2",
                "postgres://h/db?user=u&password=***",
            ),
            (
                "postgres://h/db?sslmode=require&password=hunter2&application_name=x",
                "postgres://h/db?sslmode=require&password=***&application_name=x",
            ),
            (
                "postgres://h/db?PassWord=hunter2#frag",
                "postgres://h/db?PassWord=***#frag",
            ),
            (
                "postgres://h/db?%70assword=hunter2",
                "postgres://h/db?%70assword=***",
            ),
            (
                "postgres://u:hunter2@h/db?sslpassword=hunter3",
                "postgres://u:***@h/db?sslpassword=***",
            ),
            (
                "host=h password=hunter2 dbname=d",
                "host=h password=*** dbname=d",
            ),
            // Found by the property test below: `://` inside a key=value
            // password does not make the string a URI.
            (
                "host=db.internal password='0A0A://0' dbname=payhook",
                "host=db.internal password=*** dbname=payhook",
            ),
            (
                "host=h password = 'hun ter\\'2' dbname=d",
                "host=h password = *** dbname=d",
            ),
            ("password=hunter2", "password=***"),
            ("host=h sslpassword=hunter2", "host=h sslpassword=***"),
            ("host=h oops password hunter2", "host=h ***"),
            ("postgres://h/db", "postgres://h/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "host=/run/postgresql dbname=d",
                "host=/run/postgresql dbname=d",
            ),
        ];
        for (url, redacted) in cases {
            assert_eq!(redact_url(url), redacted, "{url}");
            for secret in ["hunter", "ter2", "hunter3"] {
                assert!(!redact_url(url).contains(secret), "{url}");
            }
        }
    }

    #[test]
    fn secrets_are_listed_as_written_and_decoded() {
        let secrets = url_secrets("postgres://u:p%40ss@h/db?password=x%2Fy");
        for s in ["p%40ss", "p@ss", "x%2Fy", "x/y"] {
            assert!(secrets.contains(&s.to_string()), "{s}: {secrets:?}");
        }
        let secrets = url_secrets("host=h password='a b\\'c'");
        assert!(secrets.contains(&"a b'c".to_string()), "{secrets:?}");
    }

    fn conninfo_quote(password: &str) -> String {
        format!("'{}'", password.replace('\\', "\\\\").replace('\'', "\\'"))
    }

    proptest! {
        #[test]
        fn no_form_shows_the_password(password in "[A-Za-z0-9!$%^*()_+:;,.@/?' \\\\-]{8,24}") {
            prop_assume!(!password.trim().is_empty());
            let encoded = percent_encoding::utf8_percent_encode(
                &password,
                percent_encoding::NON_ALPHANUMERIC,
            )
            .to_string();
            let forms = [
                format!("postgres://payhook:{password}@db.internal:5432/payhook"),
                format!("postgres://payhook:{encoded}@db.internal/payhook?sslmode=require"),
                format!("postgres://db.internal/payhook?user=payhook&password={encoded}"),
                format!("host=db.internal password={} dbname=payhook", conninfo_quote(&password)),
                format!("host=db.internal password = {} user=payhook", conninfo_quote(&password)),
            ];
            for url in forms {
                let shown = redact_url(&url);
                prop_assert!(!shown.contains(&password), "{} -> {}", url, shown);
                prop_assert!(!shown.contains(&encoded), "{} -> {}", url, shown);
                prop_assert!(shown.contains("db.internal"), "{} -> {}", url, shown);
            }
        }
    }
}
