//! The shop's endpoint.

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
