//! `SHOP_NOTIFY_*`: where events go, the signing secrets and the retry bounds
//! (the delivery itself is `crate::notify`).

use std::time::Duration;

use super::{parse_duration, ConfigError};
use crate::notify::{Delivery, ShopUrl, WebhookSecret};

#[derive(Clone, Debug)]
pub struct NotifySettings {
    /// `None`: delivery is off; events stay in the outbox (and the feed).
    pub url: Option<ShopUrl>,
    /// Signs every notification; required with a URL.
    pub secret: Option<WebhookSecret>,
    /// Also signs, while shops move to `secret`.
    pub previous_secret: Option<WebhookSecret>,
    /// One attempt, connection to last byte of the answer's head.
    pub timeout: Duration,
    /// The longest wait between two attempts.
    pub max_interval: Duration,
    /// Past this age without a 2xx, an event is dead.
    pub max_age: Duration,
    /// Whether the delivery worker looks at the outbox on its own timer:
    /// always, unless a test turns it off to deliver one pass at a time
    /// (`Application::outbox`). Not read from the environment.
    pub on_timer: bool,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            url: None,
            secret: None,
            previous_secret: None,
            timeout: Duration::from_secs(10),
            max_interval: Duration::from_secs(3600),
            max_age: Duration::from_secs(3 * 86400),
            on_timer: true,
        }
    }
}

fn bad(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// A non-empty value, trimmed.
fn get(lookup: &dyn Fn(&str) -> Option<String>, key: &str) -> Option<String> {
    lookup(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `KEY`, or the contents of the file `KEY_FILE` names, as a secret. Errors
/// name the key (and the file), never the value.
fn secret(
    lookup: &dyn Fn(&str) -> Option<String>,
    key: &str,
) -> Result<Option<WebhookSecret>, ConfigError> {
    let file_key = format!("{key}_FILE");
    let (text, source) = match (get(lookup, key), get(lookup, &file_key)) {
        (Some(text), _) => (text, key.to_string()),
        (None, Some(path)) => (
            std::fs::read_to_string(&path)
                .map_err(|e| bad(&file_key, format!("cannot read {path}: {e}")))?,
            file_key,
        ),
        (None, None) => return Ok(None),
    };
    WebhookSecret::parse(text.trim_end_matches(['\r', '\n']))
        .map(Some)
        .map_err(|e| {
            bad(
                &source,
                format!("{e}; `payhook notify-secret` prints a new one"),
            )
        })
}

fn duration(
    lookup: &dyn Fn(&str) -> Option<String>,
    key: &str,
    default: Duration,
    at_least: Duration,
) -> Result<Duration, ConfigError> {
    let Some(text) = get(lookup, key) else {
        return Ok(default);
    };
    let value = parse_duration(&text).ok_or_else(|| {
        bad(
            key,
            format!("{text:?} is not a duration like 90s, 10m or 3d"),
        )
    })?;
    if value < at_least {
        return Err(bad(
            key,
            format!("must be at least {}ms", at_least.as_millis()),
        ));
    }
    Ok(value)
}

impl NotifySettings {
    /// Reads the `SHOP_NOTIFY_*` keys through the lookup `Settings` uses.
    pub fn from_lookup(get_var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let lookup: &dyn Fn(&str) -> Option<String> = &get_var;
        let defaults = NotifySettings::default();
        let url = match get(lookup, "SHOP_NOTIFY_URL") {
            None => None,
            Some(text) => {
                // The value is not quoted back: it may carry the shop's token.
                Some(ShopUrl::parse(&text).map_err(|e| bad("SHOP_NOTIFY_URL", e))?)
            }
        };
        let current = secret(lookup, "SHOP_NOTIFY_SECRET")?;
        let previous_secret = secret(lookup, "SHOP_NOTIFY_SECRET_PREVIOUS")?;
        if url.is_some() && current.is_none() {
            return Err(bad(
                "SHOP_NOTIFY_SECRET",
                "required with SHOP_NOTIFY_URL (whsec_...; `payhook notify-secret` prints one)",
            ));
        }
        if previous_secret.is_some() && current.is_none() {
            return Err(bad(
                "SHOP_NOTIFY_SECRET_PREVIOUS",
                "set only beside SHOP_NOTIFY_SECRET (the new secret)",
            ));
        }
        let timeout = duration(
            lookup,
            "SHOP_NOTIFY_TIMEOUT",
            defaults.timeout,
            Duration::from_millis(100),
        )?;
        let max_interval = duration(
            lookup,
            "SHOP_NOTIFY_MAX_INTERVAL",
            defaults.max_interval,
            Duration::from_secs(1),
        )?;
        let max_age = duration(
            lookup,
            "SHOP_NOTIFY_MAX_AGE",
            defaults.max_age,
            Duration::from_secs(1),
        )?;
        Ok(NotifySettings {
            url,
            secret: current,
            previous_secret,
            timeout,
            max_interval,
            max_age,
            on_timer: true,
        })
    }

    /// What the delivery worker needs, when delivery is on.
    pub fn delivery(&self) -> Option<Delivery> {
        let (url, secret) = (self.url.clone()?, self.secret.clone()?);
        Some(Delivery {
            url,
            secrets: std::iter::once(secret)
                .chain(self.previous_secret.clone())
                .collect(),
            timeout: self.timeout,
            max_interval: self.max_interval,
            max_age: self.max_age,
            on_timer: self.on_timer,
        })
    }

    /// The secrets to sign with, current first.
    pub fn signing_secrets(&self) -> Vec<&WebhookSecret> {
        self.secret
            .iter()
            .chain(self.previous_secret.iter())
            .collect()
    }

    /// For the start-up log: no secret, no path or query of the URL.
    pub fn summary(&self) -> String {
        match &self.url {
            None => "off".to_string(),
            Some(url) => format!(
                "{url} signatures={} timeout={}ms max_interval={}s max_age={}s",
                self.signing_secrets().len(),
                self.timeout.as_millis(),
                self.max_interval.as_secs(),
                self.max_age.as_secs()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<NotifySettings, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        NotifySettings::from_lookup(|k| env.get(k).cloned())
    }

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    #[test]
    fn off_by_default_with_the_documented_bounds() {
        let s = settings(&[]).unwrap();
        assert!(s.url.is_none() && s.secret.is_none());
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.max_interval, Duration::from_secs(3600));
        assert_eq!(s.max_age, Duration::from_secs(3 * 86400));
        assert_eq!(s.summary(), "off");
    }

    #[test]
    fn a_url_needs_a_secret_and_both_are_validated() {
        let err = settings(&[("SHOP_NOTIFY_URL", "https://shop.example/hooks")]).unwrap_err();
        assert_eq!(err.key, "SHOP_NOTIFY_SECRET");
        for url in ["ftp://shop.example/", "shop.example/hooks", "https://"] {
            let err =
                settings(&[("SHOP_NOTIFY_URL", url), ("SHOP_NOTIFY_SECRET", SECRET)]).unwrap_err();
            assert_eq!(err.key, "SHOP_NOTIFY_URL", "{url}");
        }
        let s = settings(&[
            (
                "SHOP_NOTIFY_URL",
                "https://shop.example:8443/hooks?token=t0ps3cret",
            ),
            ("SHOP_NOTIFY_SECRET", SECRET),
            ("SHOP_NOTIFY_TIMEOUT", "2s"),
            ("SHOP_NOTIFY_MAX_INTERVAL", "5m"),
            ("SHOP_NOTIFY_MAX_AGE", "1d"),
        ])
        .unwrap();
        assert_eq!(s.timeout, Duration::from_secs(2));
        assert_eq!(s.max_interval, Duration::from_secs(300));
        assert_eq!(s.max_age, Duration::from_secs(86400));
        let summary = s.summary();
        assert!(
            summary.starts_with("https://shop.example:8443 "),
            "{summary}"
        );
        assert!(
            !summary.contains("t0ps3cret") && !summary.contains("C2FV"),
            "{summary}"
        );
        assert!(!format!("{s:?}").contains("t0ps3cret") && !format!("{s:?}").contains("C2FV"));
    }

    #[test]
    fn a_bad_secret_names_its_key_never_its_value() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: [Case<'_>; 3] = [
            (
                &[("SHOP_NOTIFY_SECRET", "C2FVsBQIhrscChlQIMV+b5sSYspob7oD")],
                "SHOP_NOTIFY_SECRET",
                "C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            ),
            (
                &[("SHOP_NOTIFY_SECRET", "whsec_C2FVsBQIhrscChlQIMVb5sS")],
                "SHOP_NOTIFY_SECRET",
                "C2FVsBQIhrscChlQIMVb5sS",
            ),
            (
                &[
                    ("SHOP_NOTIFY_SECRET", SECRET),
                    ("SHOP_NOTIFY_SECRET_PREVIOUS", "whsec_%%notbase64%%"),
                ],
                "SHOP_NOTIFY_SECRET_PREVIOUS",
                "notbase64",
            ),
        ];
        for (pairs, key, value) in cases {
            let err = settings(pairs).unwrap_err();
            assert_eq!(err.key, key);
            let line = err.to_string();
            assert!(!line.contains(value), "{line}");
            assert!(line.contains("payhook notify-secret"), "{line}");
        }
        let err = settings(&[("SHOP_NOTIFY_SECRET_PREVIOUS", SECRET)]).unwrap_err();
        assert_eq!(err.key, "SHOP_NOTIFY_SECRET_PREVIOUS");
    }

    #[test]
    fn secrets_from_files_and_durations_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, format!("{SECRET}\n")).unwrap();
        let path = path.display().to_string();
        let s = settings(&[
            ("SHOP_NOTIFY_URL", "http://127.0.0.1:9/"),
            ("SHOP_NOTIFY_SECRET_FILE", &path),
            ("SHOP_NOTIFY_SECRET_PREVIOUS_FILE", &path),
        ])
        .unwrap();
        assert_eq!(s.signing_secrets().len(), 2);
        let err = settings(&[("SHOP_NOTIFY_SECRET_FILE", "/nonexistent/secret")]).unwrap_err();
        assert_eq!(err.key, "SHOP_NOTIFY_SECRET_FILE");
        for (key, value) in [
            ("SHOP_NOTIFY_TIMEOUT", "0s"),
            ("SHOP_NOTIFY_TIMEOUT", "ten"),
            ("SHOP_NOTIFY_MAX_INTERVAL", "500ms"),
            ("SHOP_NOTIFY_MAX_AGE", "0s"),
        ] {
            assert_eq!(settings(&[(key, value)]).unwrap_err().key, key, "{value}");
        }
    }
}
