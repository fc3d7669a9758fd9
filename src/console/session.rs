//! Signing in to the console: the session cookie, its row in the database and
//! the CSRF token of its forms. (The limit on wrong tokens is the admin
//! listener's, shared with the API: `http::auth`.)
//!
//! The session id is 32 random bytes, sent only in the cookie; the database
//! keeps its SHA-256, so every instance on the database knows the session and
//! a copy of the table signs nobody in. The CSRF token is an HMAC of a fixed
//! label keyed with the session id: the same on every instance, unknowable
//! without the cookie. Logs name a session by its handle, the first 12 hex
//! digits of the stored hash (never the id itself). A session lives only as
//! long as the admin token that made it: its row keeps the token's
//! fingerprint (`http::auth::token_fingerprint`), and a row with another
//! token's is no session.

use std::pin::Pin;
use std::time::Duration;

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ConsoleError;
use super::ConsoleSettings;
use crate::http::AppState;

pub const COOKIE: &str = "payhook_session";

/// A signed-in operator: present in a handler's arguments, the request
/// carried the cookie of a live session.
pub struct Session {
    id: String,
    hash: String,
}

impl Session {
    /// A new session id, and the hash stored for it.
    pub fn generate() -> Session {
        Session::of(hex::encode(rand::random::<[u8; 32]>()))
    }

    fn of(id: String) -> Session {
        let hash = hex::encode(Sha256::digest(id.as_bytes()));
        Session { id, hash }
    }

    /// The database key: the id's SHA-256.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// What logs name this session by.
    pub fn handle(&self) -> String {
        format!("console:{}", &self.hash[..12])
    }

    /// The token every form of this session carries.
    pub fn csrf_token(&self) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.id.as_bytes()).expect("HMAC takes any key length");
        mac.update(b"payhook console csrf v1");
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether a submitted token is this session's (constant time).
    pub fn csrf_ok(&self, submitted: &str) -> bool {
        bool::from(submitted.as_bytes().ct_eq(self.csrf_token().as_bytes()))
    }

    /// The cookie that carries it, for `ttl`.
    pub fn cookie(&self, ttl: Duration, secure: bool) -> Cookie<'static> {
        Cookie::build(COOKIE, self.id.clone())
            .path("/ui")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure)
            .max_age(time::Duration::seconds(ttl.as_secs() as i64))
            .finish()
    }

    /// The cookie that clears it.
    pub fn removal(secure: bool) -> Cookie<'static> {
        let mut cookie = Cookie::build(COOKIE, "")
            .path("/ui")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure)
            .finish();
        cookie.make_removal();
        cookie
    }
}

/// A form's fresh nonce: its second POST does not act again.
pub fn nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

impl FromRequest for Session {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Session, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let next = sign_in_next(req);
        let cookie = req.cookie(COOKIE).map(|c| c.value().to_string());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let settings = req.app_data::<web::Data<ConsoleSettings>>().cloned();
        Box::pin(async move {
            let (Some(id), Some(state), Some(settings)) = (cookie, state, settings) else {
                return Err(ConsoleError::SignIn(next));
            };
            // Only what this payhook hands out looks like a session id.
            if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConsoleError::SignIn(next));
            }
            let session = Session::of(id);
            let hash = session.hash.clone();
            let alive = state
                .store
                .bounded(move |store| store.session_alive(&hash, &settings.token_fingerprint))
                .await?;
            if alive {
                Ok(session)
            } else {
                Err(ConsoleError::SignIn(next))
            }
        })
    }
}

/// Where to come back to after signing in: this page, if it is a console page.
fn sign_in_next(req: &HttpRequest) -> Option<String> {
    (req.method() == actix_web::http::Method::GET)
        .then(|| req.uri().path_and_query().map(|p| p.as_str().to_string()))
        .flatten()
        .filter(|p| safe_next(p))
}

/// A path after sign-in may only lead to a console page on this listener.
pub fn safe_next(path: &str) -> bool {
    path.starts_with("/ui/")
        && !path.starts_with("/ui/login")
        && !path.contains("//")
        && !path.contains('\\')
        && path.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let (a, b) = (Session::generate(), Session::generate());
        assert!(a.csrf_ok(&a.csrf_token()));
        assert!(!a.csrf_ok(&b.csrf_token()));
        assert!(!a.csrf_ok(""));
        assert_eq!(a.hash().len(), 64);
        assert_ne!(a.hash(), a.id);
    }

    #[test]
    fn only_console_pages_are_followed_after_sign_in() {
        assert!(safe_next("/ui/orders/A-1?project_id=1"));
        for bad in [
            "https://evil.example/",
            "//evil.example/ui/",
            "/ui//evil",
            "/ui/login",
            "/api/v1/orders",
            "/ui/\\evil",
        ] {
            assert!(!safe_next(bad), "{bad}");
        }
    }
}
