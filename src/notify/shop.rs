//! The shop's endpoint, and one signed POST to it: the same for every event
//! the worker delivers and for `payhook check`'s test event.

use std::time::{Duration, Instant};

use super::signing::{signature_header, WebhookSecret};

/// Errors stored and logged are cut to this many characters.
const MAX_ERROR_CHARS: usize = 300;

/// The shop's endpoint, validated. Shown as scheme, host and port only: a
/// path or query may carry the shop's own token.
#[derive(Clone)]
pub struct ShopUrl(reqwest::Url);

impl ShopUrl {
    pub fn url(&self) -> &reqwest::Url {
        &self.0
    }
}

impl std::fmt::Display for ShopUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = &self.0;
        write!(f, "{}://{}", url.scheme(), url.host_str().unwrap_or("?"))?;
        if let Some(port) = url.port() {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for ShopUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShopUrl({self})")
    }
}

impl ShopUrl {
    /// An http(s) URL that names a host. The error never quotes the value: it
    /// may carry the shop's token.
    pub fn parse(text: &str) -> Result<ShopUrl, String> {
        let url = reqwest::Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http:// or https:// URL".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must name a host".into());
        }
        Ok(ShopUrl(url))
    }
}

/// How one POST went: the status, or what failed instead; and how long it took.
#[derive(Debug, Clone)]
pub struct ShopAnswer {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub elapsed: Duration,
}

impl ShopAnswer {
    /// Any 2xx acknowledges.
    pub fn acknowledged(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Signs and POSTs notification bodies to the shop (Standard Webhooks headers).
pub struct ShopClient {
    client: reqwest::Client,
    url: ShopUrl,
    secrets: Vec<WebhookSecret>,
    timeout: Duration,
}

impl ShopClient {
    pub fn new(
        url: ShopUrl,
        secrets: Vec<WebhookSecret>,
        timeout: Duration,
    ) -> reqwest::Result<ShopClient> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect is no acknowledgement, and following one would send
            // the signed event wherever the answer points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("payhook/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ShopClient {
            client,
            url,
            secrets,
            timeout,
        })
    }

    pub fn url(&self) -> &ShopUrl {
        &self.url
    }

    /// One attempt: `body` POSTed with `webhook-id: id`, signed now. Bounded
    /// by the time-out; never quotes the URL in an error.
    pub async fn post(&self, id: &str, body: Vec<u8>) -> ShopAnswer {
        let timestamp = chrono::Utc::now().timestamp();
        let secrets: Vec<&WebhookSecret> = self.secrets.iter().collect();
        let signature = signature_header(&secrets, id, timestamp, &body);
        let started = Instant::now();
        let request = self
            .client
            .post(self.url.url().clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send();
        // reqwest's own time-out covers the request; this one is the backstop.
        let answer = tokio::time::timeout(self.timeout + Duration::from_secs(1), request).await;
        let (status_code, error) = match answer {
            Ok(Ok(response)) => (Some(response.status().as_u16()), None),
            Ok(Err(e)) => (None, Some(describe(&e, self.timeout))),
            Err(_) => (None, Some(timed_out(self.timeout))),
        };
        ShopAnswer {
            status_code,
            error,
            elapsed: started.elapsed(),
        }
    }
}

impl ShopClient {
    /// Sends a `payhook.test` event (id 0, the body every event has, `test`
    /// true) the way every event is sent: what `payhook check` and the
    /// console's "Send a test event" do. `project` is the configured project
    /// as events name it.
    pub async fn send_test_event(&self, project: serde_json::Value) -> ShopAnswer {
        let body = super::event::Notification::test(project, chrono::Utc::now().timestamp_millis());
        self.post("0", body.to_bytes()).await
    }
}

fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}ms", timeout.as_millis())
}

/// One line for the attempt history: the error and its causes, without the
/// URL (its path or query may hold the shop's token).
pub fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return timed_out(timeout);
    }
    let mut text = String::new();
    let mut cause: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cause {
        let part = match c.downcast_ref::<reqwest::Error>() {
            Some(r) if c.source().is_some() && r.url().is_some() => {
                // reqwest's own line quotes the URL: its kind is enough.
                if r.is_connect() {
                    "connection failed".to_string()
                } else if r.is_request() {
                    "request failed".to_string()
                } else {
                    "error".to_string()
                }
            }
            _ => c.to_string(),
        };
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
        cause = c.source();
    }
    text.chars().take(MAX_ERROR_CHARS).collect()
}
