//! Who may use the admin listener: the admin token, compared in constant
//! time; the address a request comes from (behind a trusted proxy, the
//! client's own, from the header `PAYHOOK_CLIENT_IP_HEADER` names); and the
//! limit on wrong tokens, one budget per address shared by the API's bearer
//! check and the console's sign-in.
//!
//! The limit (`Limits::ADMIN`): 10 wrong tokens per address within 5 minutes,
//! then that address is answered 429 with `Retry-After` until its window
//! ends, whatever token it sends (else a guesser would learn from a 200 among
//! the 429s). Only the failing address pays: a right token from any other
//! address is checked and accepted. Beside it, a global ceiling: once 100
//! wrong tokens from all addresses together fall within 5 minutes, each
//! address is allowed 1 wrong token per window instead of 10, which slows a
//! guesser spread over many addresses tenfold and still refuses no right
//! token from an address that has not failed. At most 10 000 addresses are
//! tracked: at the cap, expired entries go first, then the entry closest to
//! the end of its window. In memory, per instance.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use hmac::{Hmac, KeyInit, Mac};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::connections::address_key;

/// Whether `presented` is the admin token. Both are hashed first, so the
/// comparison takes the same time whatever the length or the first wrong byte.
pub fn token_matches(presented: &str, expected: &SecretString) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(expected.expose_secret().as_bytes());
    bool::from(presented.as_slice().ct_eq(expected.as_slice()))
}

/// What a console session stores of the token that made it: an HMAC of a
/// fixed label keyed with the token (hex), never the token. A session whose
/// fingerprint is not the running token's is no session, so a restart with a
/// new `PAYHOOK_ADMIN_TOKEN` ends every session made with the old one.
pub fn token_fingerprint(token: &SecretString) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.expose_secret().as_bytes())
        .expect("HMAC takes any key length");
    mac.update(b"payhook console session token v1");
    hex::encode(mac.finalize().into_bytes())
}

/// The header a trusted proxy names its client in (`PAYHOOK_CLIENT_IP_HEADER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For`: each proxy appends the address it was sent from; the
    /// client is the right-most entry that is not itself a trusted proxy.
    ForwardedFor,
    /// `X-Real-IP`: one address, set by the proxy.
    RealIp,
}

impl ClientIpHeader {
    /// The setting's value, in any case.
    pub fn parse(text: &str) -> Option<ClientIpHeader> {
        match text.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Some(ClientIpHeader::ForwardedFor),
            "x-real-ip" => Some(ClientIpHeader::RealIp),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ClientIpHeader::ForwardedFor => "X-Forwarded-For",
            ClientIpHeader::RealIp => "X-Real-IP",
        }
    }
}

/// Where a request comes from: the TCP peer, unless the peer is a trusted
/// proxy and a client header is configured; a header from anyone else is
/// ignored, so a client cannot choose its own address.
#[derive(Clone, Debug)]
pub struct ClientAddress {
    trusted: Vec<IpNet>,
    header: Option<ClientIpHeader>,
}

impl ClientAddress {
    pub fn new(trusted: Vec<IpNet>, header: Option<ClientIpHeader>) -> ClientAddress {
        ClientAddress { trusted, header }
    }

    /// The client's address (`None` only for a request without a socket).
    pub fn of(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        let values: Vec<&str> = match self.header {
            None => Vec::new(),
            Some(header) => req
                .headers()
                .get_all(header.name())
                .filter_map(|v| v.to_str().ok())
                .collect(),
        };
        Some(self.resolve(peer, &values))
    }

    /// The client's address given the peer and the header's lines, in order.
    fn resolve(&self, peer: IpAddr, values: &[&str]) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusted(peer) {
            return peer;
        }
        match self.header {
            None => peer,
            // The proxy sets it; should a client's copy come first, the
            // proxy's is the last one.
            Some(ClientIpHeader::RealIp) => {
                values.last().and_then(|v| parse_entry(v)).unwrap_or(peer)
            }
            Some(ClientIpHeader::ForwardedFor) => {
                // From the right: entries our proxies appended, up to the
                // first address that is not one of them. Anything left of it
                // is what the client wrote. An unreadable entry stops the walk
                // at the proxy that passed it on.
                let mut client = peer;
                for entry in values.iter().rev().flat_map(|v| v.rsplit(',')) {
                    let Some(ip) = parse_entry(entry) else { break };
                    client = ip;
                    if !self.trusted(ip) {
                        break;
                    }
                }
                client
            }
        }
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }
}

/// One address of a header: `192.0.2.1`, `2001:db8::1`, with or without a
/// port (`192.0.2.1:4711`, `[2001:db8::1]:4711`) or brackets.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse::<IpAddr>().ok())
        })
        .map(|ip| ip.to_canonical())
}

/// The admin listener's door, shared by the API's bearer check and the
/// console's sign-in: where a request comes from, and its limit.
pub struct Gate {
    clients: ClientAddress,
    limiter: LoginLimiter,
}

impl Gate {
    pub fn new(clients: ClientAddress, limits: Limits) -> Gate {
        Gate {
            clients,
            limiter: LoginLimiter::new(limits),
        }
    }

    /// The client's address (`ClientAddress::of`).
    pub fn client(&self, req: &HttpRequest) -> Option<IpAddr> {
        self.clients.of(req)
    }

    /// `LoginLimiter::check` for a request from `addr`.
    pub fn check(
        &self,
        addr: Option<IpAddr>,
        presented: Option<&str>,
        expected: &SecretString,
    ) -> Result<(), Refusal> {
        self.limiter.check(addr, presented, expected)
    }
}

/// `Retry-After`'s value: whole seconds, rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// The limiter's bounds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wrong tokens one address may send per window.
    pub per_address: u32,
    /// Wrong tokens from all addresses together within one window beyond
    /// which each address may send only `over_ceiling` per window.
    pub ceiling: u32,
    pub over_ceiling: u32,
    pub window: Duration,
    /// Addresses tracked at most.
    pub max_addresses: usize,
}

impl Limits {
    /// The admin listener's.
    pub const ADMIN: Limits = Limits {
        per_address: 10,
        ceiling: 100,
        over_ceiling: 1,
        window: Duration::from_secs(300),
        max_addresses: 10_000,
    };
}

/// Why a token was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing was presented (an API request without `Authorization`): not
    /// counted, it guesses nothing.
    Missing,
    /// A wrong token: counted against the address.
    Wrong,
    /// The address has used its allowance: not even looked at until then.
    Limited { retry_after: Duration },
}

/// Wrong tokens per client address, with a global ceiling and a hard cap on
/// the addresses it remembers. One per admin listener, shared by its workers.
pub struct LoginLimiter {
    limits: Limits,
    state: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    by_address: HashMap<IpAddr, Window>,
    /// When the latest wrong tokens (of any address) came, oldest first; at
    /// most `ceiling` of them.
    recent: VecDeque<Instant>,
}

#[derive(Clone, Copy)]
struct Window {
    since: Instant,
    count: u32,
}

impl LoginLimiter {
    pub fn new(limits: Limits) -> LoginLimiter {
        LoginLimiter {
            limits,
            state: Mutex::new(Failures::default()),
        }
    }

    /// Checks `presented` against `expected` for a request from `addr`: a
    /// limited address is refused before its token is looked at; a wrong token
    /// costs the address one attempt. A right token is never counted. One
    /// lock for all of it, so that requests at the same moment cannot pass
    /// the allowance together.
    pub fn check(
        &self,
        addr: Option<IpAddr>,
        presented: Option<&str>,
        expected: &SecretString,
    ) -> Result<(), Refusal> {
        let key = addr.map(|a| address_key(a.to_canonical()));
        let now = Instant::now();
        let mut failures = self.lock();
        if let Some(key) = key {
            failures
                .admitted(&self.limits, key, now)
                .map_err(|retry_after| Refusal::Limited { retry_after })?;
        }
        let presented = presented.ok_or(Refusal::Missing)?;
        if token_matches(presented, expected) {
            return Ok(());
        }
        if let Some(key) = key {
            if failures.failed(&self.limits, key, now) {
                drop(failures);
                tracing::warn!(
                    remote = %key,
                    window_s = self.limits.window.as_secs(),
                    "admin token: this address is refused until its window ends (too many wrong tokens)"
                );
            }
        }
        Err(Refusal::Wrong)
    }

    /// Addresses remembered now (bounded by `Limits::max_addresses`).
    pub fn tracked(&self) -> usize {
        self.lock().by_address.len()
    }

    fn lock(&self) -> MutexGuard<'_, Failures> {
        // Every change leaves the maps consistent: a panic elsewhere while
        // holding the lock cannot leave half an update behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Failures {
    /// `Err(retry_after)` when `key` has used its allowance for its window.
    fn admitted(&mut self, limits: &Limits, key: IpAddr, now: Instant) -> Result<(), Duration> {
        let allowance = self.allowance(limits, now);
        match self.by_address.get(&key) {
            Some(w) if now.duration_since(w.since) < limits.window && w.count >= allowance => {
                Err(limits.window - now.duration_since(w.since))
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong token from `key`; `true` when it used the allowance up.
    fn failed(&mut self, limits: &Limits, key: IpAddr, now: Instant) -> bool {
        self.recent.push_back(now);
        while self.recent.len() > limits.ceiling as usize {
            self.recent.pop_front();
        }
        let allowance = self.allowance(limits, now);
        if !self.by_address.contains_key(&key) && self.by_address.len() >= limits.max_addresses {
            self.make_room(limits, now);
        }
        let window = self.by_address.entry(key).or_insert(Window {
            since: now,
            count: 0,
        });
        if now.duration_since(window.since) >= limits.window {
            *window = Window {
                since: now,
                count: 0,
            };
        }
        window.count += 1;
        window.count == allowance
    }

    /// Wrong tokens an address may send in its window now.
    fn allowance(&mut self, limits: &Limits, now: Instant) -> u32 {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limits.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= limits.ceiling as usize {
            limits.over_ceiling.min(limits.per_address)
        } else {
            limits.per_address
        }
    }

    /// At the cap: expired windows go; if none has, the one nearest its end
    /// (the oldest), so the table never holds more than `max_addresses`.
    fn make_room(&mut self, limits: &Limits, now: Instant) {
        self.by_address
            .retain(|_, w| now.duration_since(w.since) < limits.window);
        if self.by_address.len() >= limits.max_addresses {
            let oldest = self
                .by_address
                .iter()
                .min_by_key(|(_, w)| w.since)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.by_address.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn token() -> SecretString {
        SecretString::from("the-right-admin-token".to_string())
    }

    const SMALL: Limits = Limits {
        per_address: 3,
        ceiling: 7,
        over_ceiling: 1,
        window: Duration::from_secs(60),
        max_addresses: 4,
    };

    #[test]
    fn tokens_match_whole_only() {
        let t = token();
        assert!(token_matches("the-right-admin-token", &t));
        for wrong in [
            "",
            "the-right-admin-toke",
            "the-right-admin-tokenx",
            "THE-RIGHT-ADMIN-TOKEN",
        ] {
            assert!(!token_matches(wrong, &t), "{wrong}");
        }
    }

    #[test]
    fn a_fingerprint_names_its_token_without_holding_it() {
        let (a, b) = (
            token(),
            SecretString::from("another-admin-token-1".to_string()),
        );
        assert_eq!(token_fingerprint(&a), token_fingerprint(&token()));
        assert_ne!(token_fingerprint(&a), token_fingerprint(&b));
        assert_eq!(token_fingerprint(&a).len(), 64);
        assert!(!token_fingerprint(&a).contains("admin"));
    }

    #[test]
    fn only_the_failing_address_is_limited() {
        let limiter = LoginLimiter::new(SMALL);
        let (a, b) = (Some(ip("192.0.2.1")), Some(ip("192.0.2.2")));
        for _ in 0..3 {
            assert_eq!(
                limiter.check(a, Some("wrong"), &token()),
                Err(Refusal::Wrong)
            );
        }
        let Err(Refusal::Limited { retry_after }) =
            limiter.check(a, Some("the-right-admin-token"), &token())
        else {
            panic!("the fourth try from a is not limited");
        };
        assert!(retry_after <= SMALL.window && retry_after > Duration::from_secs(50));
        assert_eq!(
            limiter.check(b, Some("the-right-admin-token"), &token()),
            Ok(())
        );
        // Nothing presented guesses nothing: not counted.
        for _ in 0..10 {
            assert_eq!(limiter.check(b, None, &token()), Err(Refusal::Missing));
        }
        assert_eq!(
            limiter.check(b, Some("the-right-admin-token"), &token()),
            Ok(())
        );
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_64() {
        let limiter = LoginLimiter::new(SMALL);
        for n in 1..=3 {
            let addr = Some(ip(&format!("2001:db8:1:2::{n}")));
            assert_eq!(
                limiter.check(addr, Some("wrong"), &token()),
                Err(Refusal::Wrong)
            );
        }
        let same_64 = Some(ip("2001:db8:1:2:ffff::9"));
        assert!(matches!(
            limiter.check(same_64, Some("wrong"), &token()),
            Err(Refusal::Limited { .. })
        ));
        let other_64 = Some(ip("2001:db8:1:3::1"));
        assert_eq!(
            limiter.check(other_64, Some("the-right-admin-token"), &token()),
            Ok(())
        );
    }

    #[test]
    fn past_the_ceiling_each_address_gets_one_try_and_right_tokens_still_pass() {
        let limiter = LoginLimiter::new(Limits {
            max_addresses: 100,
            ..SMALL
        });
        // 7 wrong tokens from 7 addresses: the ceiling.
        for n in 1..=7 {
            let addr = Some(ip(&format!("198.51.100.{n}")));
            assert_eq!(
                limiter.check(addr, Some("wrong"), &token()),
                Err(Refusal::Wrong)
            );
        }
        // Each of them has failed once: now limited.
        assert!(matches!(
            limiter.check(Some(ip("198.51.100.1")), Some("wrong"), &token()),
            Err(Refusal::Limited { .. })
        ));
        // A fresh address: one wrong try, then limited.
        let fresh = Some(ip("198.51.100.50"));
        assert_eq!(
            limiter.check(fresh, Some("wrong"), &token()),
            Err(Refusal::Wrong)
        );
        assert!(matches!(
            limiter.check(fresh, Some("wrong"), &token()),
            Err(Refusal::Limited { .. })
        ));
        // Another fresh address with the right token: accepted.
        let operator = Some(ip("198.51.100.99"));
        assert_eq!(
            limiter.check(operator, Some("the-right-admin-token"), &token()),
            Ok(())
        );
    }

    #[test]
    fn at_most_max_addresses_are_remembered_the_oldest_goes_first() {
        let limiter = LoginLimiter::new(Limits {
            ceiling: 1000,
            ..SMALL
        });
        let (first, t0) = (ip("203.0.113.1"), Instant::now());
        let limits = limiter.limits;
        for _ in 0..3 {
            limiter.lock().failed(&limits, first, t0);
        }
        assert!(limiter.lock().admitted(&limits, first, t0).is_err());
        let mut at = t0;
        for n in 2..=20 {
            at += Duration::from_millis(10);
            limiter
                .lock()
                .failed(&limits, ip(&format!("203.0.113.{n}")), at);
            assert!(limiter.tracked() <= SMALL.max_addresses);
        }
        assert_eq!(limiter.tracked(), SMALL.max_addresses);
        // The first address's window was the oldest: forgotten at the cap,
        // while the newest addresses are still remembered.
        assert!(limiter.lock().admitted(&limits, first, at).is_ok());
        assert!(limiter.lock().by_address.contains_key(&ip("203.0.113.20")));
    }

    #[test]
    fn a_window_ends() {
        let mut failures = Failures::default();
        let a = ip("192.0.2.7");
        let start = Instant::now();
        for _ in 0..3 {
            failures.failed(&SMALL, a, start);
        }
        let wait = failures.admitted(&SMALL, a, start).unwrap_err();
        assert_eq!(wait, SMALL.window);
        let later = start + SMALL.window;
        assert!(failures.admitted(&SMALL, a, later).is_ok());
        failures.failed(&SMALL, a, later);
        assert!(failures.admitted(&SMALL, a, later).is_ok());
    }

    fn behind(header: Option<ClientIpHeader>) -> ClientAddress {
        ClientAddress::new(
            crate::http::connections::parse_networks("10.0.0.0/8, 192.0.2.10").unwrap(),
            header,
        )
    }

    #[test]
    fn the_client_header_is_read_only_from_a_trusted_proxy() {
        let xff = behind(Some(ClientIpHeader::ForwardedFor));
        let proxy = ip("10.1.2.3");
        // The right-most address that is not one of ours.
        assert_eq!(xff.resolve(proxy, &["198.51.100.7"]), ip("198.51.100.7"));
        assert_eq!(
            xff.resolve(proxy, &["1.1.1.1, 198.51.100.7, 10.9.9.9"]),
            ip("198.51.100.7"),
            "what the client wrote on the left is not its address"
        );
        assert_eq!(
            xff.resolve(proxy, &["1.1.1.1", "198.51.100.7:4711"]),
            ip("198.51.100.7"),
            "several lines are one list"
        );
        assert_eq!(xff.resolve(proxy, &["[2001:db8::5]:80"]), ip("2001:db8::5"));
        assert_eq!(
            xff.resolve(proxy, &["::ffff:198.51.100.8"]),
            ip("198.51.100.8")
        );
        // Only proxies in the list: the left-most.
        assert_eq!(
            xff.resolve(proxy, &["10.0.0.5, 192.0.2.10"]),
            ip("10.0.0.5")
        );
        // Unreadable: the proxy that passed it on.
        assert_eq!(xff.resolve(proxy, &["garbage, 10.0.0.6"]), ip("10.0.0.6"));
        assert_eq!(xff.resolve(proxy, &[]), proxy);
        // Not from a trusted proxy: the header is ignored.
        let outsider = ip("203.0.113.9");
        assert_eq!(xff.resolve(outsider, &["198.51.100.7"]), outsider);

        let real = behind(Some(ClientIpHeader::RealIp));
        assert_eq!(real.resolve(proxy, &["198.51.100.7"]), ip("198.51.100.7"));
        assert_eq!(
            real.resolve(proxy, &["1.1.1.1", "198.51.100.7"]),
            ip("198.51.100.7")
        );
        assert_eq!(real.resolve(proxy, &["nonsense"]), proxy);
        assert_eq!(real.resolve(outsider, &["198.51.100.7"]), outsider);

        // Without the setting, the peer.
        assert_eq!(behind(None).resolve(proxy, &["198.51.100.7"]), proxy);
    }

    #[test]
    fn the_header_setting_parses() {
        assert_eq!(
            ClientIpHeader::parse("x-forwarded-for"),
            Some(ClientIpHeader::ForwardedFor)
        );
        assert_eq!(
            ClientIpHeader::parse("X-Real-IP"),
            Some(ClientIpHeader::RealIp)
        );
        assert_eq!(ClientIpHeader::parse("Forwarded"), None);
    }
}
