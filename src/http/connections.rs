//! Per-connection bounds on the public listener: what stops one client from
//! pinning memory with heads and bodies it never finishes, or from holding
//! every connection slot with keep-alive connections.
//!
//! actix bounds a request head only at 128 KiB and 96 headers, has no cap per
//! client address and lets a keep-alive connection live for as long as its
//! client keeps sending requests. So, before actix sees a connection:
//!
//! - [`AddressLimiter`] counts open connections per client address (an IPv4
//!   address, or an IPv6 /64); one over `PAYHOOK_MAX_CONNECTIONS_PER_ADDRESS`
//!   is answered 503 and closed at once. `PAYHOOK_TRUSTED_PROXIES` are not
//!   counted: behind a proxy the client's own address is the proxy's to limit.
//! - [`Guarded`] wraps the socket and counts what the client sends: a head
//!   (request line and headers) over `PAYHOOK_MAX_HEAD_BYTES` is answered 431
//!   and the connection closed, before actix has buffered more than the limit;
//!   and a request's head and body together may not pass the larger of the
//!   head limit and the largest body (plus framing) before the server answers
//!   (413 beyond), so a long head cannot come with a full body, and pipelined
//!   bytes cannot pile up behind a request.
//! - [`recycle`] closes a connection after the answer once it is older than
//!   `PAYHOOK_CONNECTION_MAX_AGE` or has served `PAYHOOK_CONNECTION_MAX_REQUESTS`.

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use actix_http::error::DispatchError;
use actix_http::Protocol;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::rt::net::TcpStream;
use actix_web::Error;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Slack over a request's budget, for a POST's head beside its body, chunk
/// framing and the CRLFs some clients send between requests.
const FRAMING_SLACK: usize = 16 * 1024;
/// At most this much is read and discarded from a refused connection before it
/// closes, so that the client reads our answer rather than a reset.
const DRAIN_BYTES: usize = 64 * 1024;
/// At most this much is read and dropped while a refused connection closes.
const LINGER_BYTES: usize = 256 * 1024;

/// What every public connection is held to.
#[derive(Clone, Debug)]
pub struct ConnectionBounds {
    /// Request line plus headers, including their line ends.
    pub max_head_bytes: usize,
    /// The largest body any public route reads.
    pub max_body_bytes: usize,
    pub max_age: Duration,
    pub max_requests: u32,
}

/// Open connections per client address, shared by the listener's workers.
#[derive(Clone)]
pub struct AddressLimiter {
    inner: Arc<LimiterInner>,
}

struct LimiterInner {
    cap: u32,
    trusted: Vec<IpNet>,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// What [`AddressLimiter::admit`] decided about a new connection.
pub enum Admission {
    /// From a trusted proxy: not counted.
    Trusted,
    /// Counted until the slot is dropped with the connection.
    Counted(AddressSlot),
    /// Its address already holds the cap.
    Refused,
}

/// One counted connection; dropping it gives the place back.
pub struct AddressSlot {
    limiter: Arc<LimiterInner>,
    key: IpAddr,
}

impl AddressLimiter {
    pub fn new(cap: u32, trusted: Vec<IpNet>) -> AddressLimiter {
        AddressLimiter {
            inner: Arc::new(LimiterInner {
                cap,
                trusted,
                open: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn admit(&self, peer: IpAddr) -> Admission {
        let peer = peer.to_canonical();
        if self.inner.trusted.iter().any(|net| net.contains(&peer)) {
            return Admission::Trusted;
        }
        let key = address_key(peer);
        let mut open = self.inner.lock();
        let count = open.entry(key).or_insert(0);
        if *count >= self.inner.cap {
            return Admission::Refused;
        }
        *count += 1;
        Admission::Counted(AddressSlot {
            limiter: self.inner.clone(),
            key,
        })
    }

    pub fn cap(&self) -> u32 {
        self.inner.cap
    }

    /// Connections counted for `peer`'s address now (for tests and logs).
    pub fn open(&self, peer: IpAddr) -> u32 {
        let key = address_key(peer.to_canonical());
        self.inner.lock().get(&key).copied().unwrap_or(0)
    }
}

impl LimiterInner {
    /// The map stays consistent whatever panicked while holding it: every
    /// change is one increment or one decrement.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.limiter.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// An IPv4 address itself; an IPv6 address by its /64, which one subscriber
/// usually holds whole.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// `PAYHOOK_TRUSTED_PROXIES`: comma- or space-separated addresses and CIDRs.
pub fn parse_networks(text: &str) -> Result<Vec<IpNet>, String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| format!("{s:?} is not an IP address or CIDR like 10.0.0.0/8"))
        })
        .collect()
}

/// The first step of every public connection: count it against its address,
/// refuse it or wrap it.
pub async fn admit(
    io: TcpStream,
    limiter: &AddressLimiter,
    bounds: &ConnectionBounds,
) -> Result<(Guarded, Protocol, Option<SocketAddr>), DispatchError> {
    let peer = io.peer_addr().ok();
    let slot = match peer.map(|p| limiter.admit(p.ip())) {
        Some(Admission::Refused) => {
            tracing::debug!(peer = ?peer.map(|p| p.ip()), "connection refused: per-address cap");
            refuse(io).await;
            return Err(DispatchError::Io(io::Error::other(
                "too many connections from one address",
            )));
        }
        Some(Admission::Counted(slot)) => Some(slot),
        Some(Admission::Trusted) | None => None,
    };
    Ok((Guarded::new(io, slot, bounds), Protocol::Http1, peer))
}

const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\ncontent-length: 38\r\n\
retry-after: 1\r\nconnection: close\r\n\r\ntoo many connections from this address";

/// Answers 503 without waiting for the request, then closes.
async fn refuse(mut io: TcpStream) {
    let _ = io.try_write(REFUSED);
    drain(&io);
    let _ = tokio::time::timeout(Duration::from_millis(100), io.shutdown()).await;
}

/// Reads and discards what has already arrived, a bounded amount, never waiting.
fn drain(io: &TcpStream) {
    let mut scratch = [0u8; 4096];
    let mut total = 0;
    while total < DRAIN_BYTES {
        match io.try_read(&mut scratch) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading a head: `seen` bytes of it so far; `end` tracks its blank line.
    Head { seen: usize, end: LineEnd },
    /// The head is complete: what follows is its body (or pipelined requests)
    /// until the server answers.
    Body,
    /// Over a bound: the client gets end-of-stream from now on.
    Rejected,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineEnd {
    None,
    /// Just after `\n`.
    Lf,
    /// Just after `\n\r`.
    LfCr,
}

const START: Phase = Phase::Head {
    seen: 0,
    end: LineEnd::None,
};

/// A public connection's socket, counting what its client sends.
pub struct Guarded {
    io: TcpStream,
    _slot: Option<AddressSlot>,
    count: Counter,
    /// After a refusal: whether our side is shut, and what was read since.
    closing: Option<usize>,
}

/// What a connection's client has sent, against its bounds (no I/O).
#[derive(Debug)]
struct Counter {
    phase: Phase,
    /// Bytes read since the server last wrote: one request's head and body.
    unanswered: usize,
    max_head: usize,
    max_unanswered: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum Over {
    Head,
    Unanswered,
}

impl Counter {
    fn new(bounds: &ConnectionBounds) -> Counter {
        Counter {
            phase: START,
            unanswered: 0,
            max_head: bounds.max_head_bytes,
            // A long head is a GET callback's query: it has no body; a body
            // comes with a short head. Both at once is no genuine request.
            max_unanswered: bounds.max_head_bytes.max(bounds.max_body_bytes) + FRAMING_SLACK,
        }
    }

    fn scan(&mut self, bytes: &[u8]) -> Result<(), Over> {
        self.unanswered = self.unanswered.saturating_add(bytes.len());
        for &b in bytes {
            let Phase::Head { seen, end } = &mut self.phase else {
                break;
            };
            *seen += 1;
            if *seen > self.max_head {
                return Err(Over::Head);
            }
            *end = match (b, *end) {
                (b'\n', LineEnd::Lf | LineEnd::LfCr) => {
                    self.phase = Phase::Body;
                    continue;
                }
                (b'\n', LineEnd::None) => LineEnd::Lf,
                (b'\r', LineEnd::Lf) => LineEnd::LfCr,
                _ => LineEnd::None,
            };
        }
        if self.unanswered > self.max_unanswered {
            return Err(Over::Unanswered);
        }
        Ok(())
    }

    /// The server wrote: the request was taken in. After a final answer
    /// (not `100 Continue`, after which the body follows) the next bytes
    /// start a new head. A head already begun (pipelined behind the answered
    /// request) keeps its count: the limit is never loosened, at the price
    /// that a pipelining client may be miscounted; payhook's clients (the
    /// gateway, proxies, monitors) do not pipeline.
    fn answered(&mut self, data: &[u8]) {
        self.unanswered = 0;
        let interim = data.starts_with(b"HTTP/1.1 1") || data.starts_with(b"HTTP/1.0 1");
        if self.phase == Phase::Body && !interim {
            self.phase = START;
        }
    }
}

impl Guarded {
    fn new(io: TcpStream, slot: Option<AddressSlot>, bounds: &ConnectionBounds) -> Guarded {
        Guarded {
            io,
            _slot: slot,
            count: Counter::new(bounds),
            closing: None,
        }
    }

    /// Answers the client once, here, and closes: actix sees end-of-stream,
    /// and whatever it would write after that (a 400 for a body cut short)
    /// is swallowed, so the client reads why it was refused.
    fn reject(&mut self, over: Over) {
        let count = &mut self.count;
        count.phase = Phase::Rejected;
        let (status, reason) = match over {
            Over::Head => (
                "431 Request Header Fields Too Large",
                format!("request head over {} bytes", count.max_head),
            ),
            Over::Unanswered => (
                "413 Payload Too Large",
                format!("request over {} bytes with its head", count.max_unanswered),
            ),
        };
        tracing::debug!(%status, "request refused by the connection bounds");
        let answer = format!(
            "HTTP/1.1 {status}\r\n\
             content-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{reason}",
            reason.len()
        );
        let _ = self.io.try_write(answer.as_bytes());
        drain(&self.io);
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.count.phase == Phase::Rejected {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if let Err(over) = this.count.scan(&buf.filled()[before..]) {
            // None of this read reaches actix: it sees end-of-stream and closes.
            buf.set_filled(before);
            this.reject(over);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.count.phase == Phase::Rejected {
            // The client has its answer from `reject`.
            return Poll::Ready(Ok(data.len()));
        }
        let written = ready!(Pin::new(&mut this.io).poll_write(cx, data))?;
        this.count.answered(data);
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    /// After a refusal, a lingering close: our side is shut, then what the
    /// client is still sending is read and dropped (at most `LINGER_BYTES`,
    /// and no longer than actix's disconnect time-out), since closing on
    /// unread bytes resets the connection, and a reset can destroy the answer
    /// before the client has read it.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.count.phase != Phase::Rejected {
            return Pin::new(&mut this.io).poll_shutdown(cx);
        }
        let read = match this.closing {
            Some(read) => read,
            None => {
                ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
                *this.closing.insert(0)
            }
        };
        let mut read = read;
        let mut scratch = [0u8; 8192];
        while read < LINGER_BYTES {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => read += buf.filled().len(),
                Poll::Ready(_) => break,
                Poll::Pending => {
                    this.closing = Some(read);
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// How old a connection is and how many requests it has served.
pub struct ConnectionLife {
    opened: Instant,
    requests: Cell<u32>,
}

impl ConnectionLife {
    pub fn new() -> ConnectionLife {
        ConnectionLife {
            opened: Instant::now(),
            requests: Cell::new(0),
        }
    }
}

impl Default for ConnectionLife {
    fn default() -> Self {
        ConnectionLife::new()
    }
}

/// Registers every connection's [`ConnectionLife`] (`on_connect_ext`).
pub fn on_connect(_: &Guarded, extensions: &mut actix_http::Extensions) {
    extensions.insert(ConnectionLife::new());
}

/// The middleware: the answer that makes a connection too old or too used
/// carries `Connection: close`, and actix closes it once written.
pub async fn recycle<B: MessageBody + 'static>(
    max_age: Duration,
    max_requests: u32,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    let last = req.conn_data::<ConnectionLife>().is_some_and(|life| {
        let served = life.requests.get().saturating_add(1);
        life.requests.set(served);
        served >= max_requests || life.opened.elapsed() >= max_age
    });
    let mut res = next.call(req).await?;
    if last {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_and_given_back() {
        let limiter = AddressLimiter::new(2, parse_networks("10.0.0.0/8, 192.0.2.7").unwrap());
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let one = limiter.admit(a);
        let two = limiter.admit(a);
        assert!(matches!(limiter.admit(a), Admission::Refused));
        assert!(matches!(
            limiter.admit("198.51.100.2".parse().unwrap()),
            Admission::Counted(_)
        ));
        drop(one);
        assert_eq!(limiter.open(a), 1);
        assert!(matches!(limiter.admit(a), Admission::Counted(_)));
        drop(two);
        for trusted in ["10.1.2.3", "192.0.2.7", "::ffff:10.0.0.1"] {
            let ip: IpAddr = trusted.parse().unwrap();
            for _ in 0..5 {
                assert!(matches!(limiter.admit(ip), Admission::Trusted), "{ip}");
            }
        }
        // One IPv6 /64 is one address; a mapped IPv4 address is that address.
        let limiter = AddressLimiter::new(1, Vec::new());
        let _held = limiter.admit("2001:db8:1:2::1".parse().unwrap());
        assert!(matches!(
            limiter.admit("2001:db8:1:2:ffff::9".parse().unwrap()),
            Admission::Refused
        ));
        let _v4 = limiter.admit("192.0.2.1".parse().unwrap());
        assert!(matches!(
            limiter.admit("::ffff:192.0.2.1".parse().unwrap()),
            Admission::Refused
        ));
    }

    fn counter(max_head: usize, max_body: usize) -> Counter {
        Counter::new(&ConnectionBounds {
            max_head_bytes: max_head,
            max_body_bytes: max_body,
            max_age: Duration::from_secs(60),
            max_requests: 1000,
        })
    }

    #[test]
    fn a_head_is_counted_to_its_blank_line() {
        // A head of exactly the limit; the body after it is not head.
        let head = b"POST / HTTP/1.1\r\nHost: x\r\nA: 123456\r\n\r\n";
        let n = head.len();
        let mut c = counter(n, 1000);
        assert_eq!(c.scan(&head[..10]), Ok(()));
        assert_eq!(c.scan(&head[10..]), Ok(()));
        assert_eq!(c.phase, Phase::Body);
        assert_eq!(c.scan(&[b'x'; 500]), Ok(()));
        // One byte more than the limit, split anywhere, is over it.
        let mut c = counter(n - 1, 1000);
        assert_eq!(c.scan(&head[..n - 1]), Ok(()));
        assert_eq!(c.scan(&head[n - 1..]), Err(Over::Head));
        // Bare LF line ends count too; a CR alone does not end a line.
        let mut c = counter(1000, 1000);
        assert_eq!(c.scan(b"GET / HTTP/1.1\nA: b\r\r\n"), Ok(()));
        assert!(matches!(c.phase, Phase::Head { .. }));
        assert_eq!(c.scan(b"\n"), Ok(()));
        assert_eq!(c.phase, Phase::Body);
    }

    #[test]
    fn each_answer_starts_a_new_head_and_budget() {
        let mut c = counter(100, 200);
        for _ in 0..50 {
            assert_eq!(c.scan(b"GET / HTTP/1.1\r\n\r\n"), Ok(()));
            c.answered(b"HTTP/1.1 200 OK\r\n");
            assert_eq!(c.phase, START);
        }
        // After 100 Continue the body follows: still the body.
        assert_eq!(
            c.scan(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"),
            Ok(())
        );
        c.answered(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(c.phase, Phase::Body);
        assert_eq!(c.scan(&[b'a'; 150]), Ok(()));
        // Head and body together: at most max(head, body) + the slack.
        let mut c = counter(100, 200);
        assert_eq!(c.scan(b"POST / HTTP/1.1\r\n\r\n"), Ok(()));
        assert_eq!(c.scan(&vec![b'a'; 200 + FRAMING_SLACK - 19]), Ok(()));
        assert_eq!(c.scan(b"a"), Err(Over::Unanswered));
        // A head begun behind an answered request keeps its count.
        let mut c = counter(100, 200);
        assert_eq!(c.scan(b"GET / HTTP/1.1\r\n\r\n"), Ok(()));
        c.answered(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(c.scan(&[b'a'; 60]), Ok(()));
        c.answered(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(c.scan(&[b'a'; 60]), Err(Over::Head));
    }

    #[test]
    fn trusted_proxies_parse() {
        let nets = parse_networks(" 10.0.0.0/8,fd00::/8 192.0.2.1 ").unwrap();
        assert_eq!(nets.len(), 3);
        assert!(parse_networks("").unwrap().is_empty());
        assert!(parse_networks("10.0.0.0/33").is_err());
        assert!(parse_networks("proxy.local").is_err());
    }
}
