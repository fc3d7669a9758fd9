//! A TCP chaos proxy for outage tests.
//!
//! Put it between the code under test and a real server, then pull the plug
//! with [`ChaosProxy::break_networking`] and put it back with
//! [`ChaosProxy::restore_networking`]. Unlike stopping the database, this cuts
//! off only the connections made through this proxy, so other tests of the
//! same binary keep their server.
//!
//! Two subtler faults: [`ChaosProxy::stall`] stops forwarding without closing
//! anything (a database that stops answering, as a network partition looks to
//! the client), and [`ChaosProxy::cut_after_commit`] relays one PostgreSQL
//! `COMMIT` and then closes the client's connection, so the commit lands but
//! its reply is lost ([`ChaosProxy::cut_after_statement`]: the same for a
//! statement that commits by itself).
//!
//! The proxy runs on its own thread with its own single-threaded tokio
//! runtime, so it works the same from a plain `#[test]` and from a
//! `#[tokio::test]` of either flavour, and keeps forwarding while the test's
//! runtime is blocked.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long `break_networking` waits for open connections to be torn down.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// A loopback TCP proxy whose network can be broken and restored on demand.
pub struct ChaosProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    /// `true` while networking is broken; every connection task watches it.
    broken: watch::Sender<bool>,
    /// Flipped on drop to end the accept loop and with it the thread.
    shutdown: watch::Sender<bool>,
    active: Arc<AtomicUsize>,
    faults: Arc<Faults>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The faults every connection task consults.
struct Faults {
    /// `true` while nothing is forwarded (in either direction).
    stalled: watch::Sender<bool>,
    /// Armed by `cut_after_commit` or `cut_after_statement`: the bytes that
    /// mark the transaction whose commit is cut, and where that commit is.
    /// Taken by the connection that cuts.
    commit_marker: Mutex<Option<(Vec<u8>, CommitAt)>>,
    commits_cut: AtomicUsize,
    /// Client messages waiting for the stall to end right now.
    held: AtomicUsize,
}

/// Where a PostgreSQL transaction commits, as the proxy sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CommitAt {
    /// A simple-query `COMMIT` ending a `BEGIN`.
    Commit,
    /// The `Sync` ending an extended-protocol statement sent outside `BEGIN`:
    /// its implicit transaction.
    Sync,
}

impl ChaosProxy {
    /// Starts a proxy on 127.0.0.1 (random port) forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<Arc<ChaosProxy>> {
        // Bound here, not on the proxy thread, so the port is known and
        // accepting (queued in the backlog) before `start` returns.
        let listener = StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;

        let (broken, broken_rx) = watch::channel(false);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let active = Arc::new(AtomicUsize::new(0));
        let faults = Arc::new(Faults {
            stalled: watch::channel(false).0,
            commit_marker: Mutex::new(None),
            commits_cut: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
        });
        let thread_faults = Arc::clone(&faults);

        // The runtime is built on the proxy thread, never in the caller's
        // async context, where dropping a runtime (say on an error path) panics.
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
        let thread_active = Arc::clone(&active);
        let thread = thread::Builder::new()
            .name(format!("chaos-proxy-{}", addr.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    accept_loop(
                        listener,
                        upstream,
                        broken_rx,
                        shutdown_rx,
                        thread_active,
                        thread_faults,
                    )
                    .await;
                });
                // Dropping the runtime here cancels the connection tasks,
                // which closes their sockets.
            })?;
        ready_rx.recv().map_err(|_| {
            io::Error::other("chaos proxy thread died before it started listening")
        })??;

        Ok(Arc::new(ChaosProxy {
            addr,
            upstream,
            broken,
            shutdown,
            active,
            faults,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// Port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Address the proxy listens on (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Address the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Connections currently being forwarded (or being torn down).
    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Whether networking is currently broken.
    pub fn is_broken(&self) -> bool {
        *self.broken.borrow()
    }

    /// Closes every open connection and, until restored, accepts new ones only
    /// to close them at once, so clients fail fast instead of hanging.
    ///
    /// Returns once the open connections are gone, so a test can rely on the
    /// outage having happened. Panics if they are not gone within 5 s.
    pub fn break_networking(&self) {
        self.broken.send_replace(true);
        let deadline = Instant::now() + TEARDOWN_TIMEOUT;
        while self.active.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                panic!(
                    "chaos proxy {}: {} connection(s) still open {TEARDOWN_TIMEOUT:?} \
                     after break_networking",
                    self.addr,
                    self.active.load(Ordering::SeqCst)
                );
            }
            // A blocking sleep is fine even inside a tokio test: the
            // connections are closed by the proxy's own thread.
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Forwards new connections again; connections cut by `break_networking`
    /// stay closed.
    pub fn restore_networking(&self) {
        self.broken.send_replace(false);
    }

    /// Stops forwarding in both directions, closing nothing: bytes sent now
    /// wait in the proxy (and the sockets' buffers) until [`Self::resume`].
    /// New connections are accepted and wait too. To the client this is a
    /// database that stops answering; the server's own timeouts cannot reach it.
    pub fn stall(&self) {
        self.faults.stalled.send_replace(true);
    }

    /// Forwards again, starting with what waited during the stall.
    pub fn resume(&self) {
        self.faults.stalled.send_replace(false);
    }

    /// Arms a one-shot fault for PostgreSQL: the next simple-query `COMMIT` of
    /// a transaction whose messages contained `marker` (say an order id bound
    /// as a parameter) is relayed to the server, then the client's connection
    /// is closed before the server's reply can reach it. The server commits;
    /// the client sees its connection lost during COMMIT.
    pub fn cut_after_commit(&self, marker: &str) {
        self.arm(marker, CommitAt::Commit);
    }

    /// The same fault for a statement outside `BEGIN ... COMMIT`, which
    /// commits by itself: the next one whose messages contained `marker` is
    /// relayed up to its `Sync`, then the client's connection is closed.
    pub fn cut_after_statement(&self, marker: &str) {
        self.arm(marker, CommitAt::Sync);
    }

    fn arm(&self, marker: &str, at: CommitAt) {
        *self
            .faults
            .commit_marker
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((marker.as_bytes().to_vec(), at));
    }

    /// How many client messages wait in the proxy for the stall to end: above
    /// zero, someone is waiting on the stalled database.
    pub fn held_messages(&self) -> usize {
        self.faults.held.load(Ordering::SeqCst)
    }

    /// How many COMMITs were relayed and then cut (at most one per arming).
    pub fn commits_cut(&self) -> usize {
        self.faults.commits_cut.load(Ordering::SeqCst)
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(thread) = thread {
            // Joining keeps the port from outliving the proxy; the thread
            // exits promptly because the accept loop watches `shutdown`.
            let _ = thread.join();
        }
    }
}

/// Counts a connection as active from accept until its sockets are dropped.
struct ActiveGuard(Arc<AtomicUsize>);

impl ActiveGuard {
    fn new(active: &Arc<AtomicUsize>) -> ActiveGuard {
        active.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(Arc::clone(active))
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    broken: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
    active: Arc<AtomicUsize>,
    faults: Arc<Faults>,
) {
    loop {
        let client = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(_) => {
                    // Typically EMFILE or an aborted handshake; back off
                    // briefly rather than spinning or giving up for good.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            // An error means the proxy is gone, which is also a shutdown.
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        // Counted before the check: `break_networking` flips the flag and
        // then waits for zero, so either it sees this connection or this
        // connection sees the flag.
        let guard = ActiveGuard::new(&active);
        if *broken.borrow() {
            // Dropping the just-accepted socket closes it: the client gets an
            // immediate "connection closed" instead of a timeout.
            continue;
        }
        tokio::spawn(forward(
            client,
            upstream,
            broken.clone(),
            Arc::clone(&faults),
            guard,
        ));
    }
}

async fn forward(
    client: TcpStream,
    upstream: SocketAddr,
    mut broken: watch::Receiver<bool>,
    faults: Arc<Faults>,
    _guard: ActiveGuard,
) {
    let pipe = async {
        let server = TcpStream::connect(upstream).await?;
        // Protocol messages are small and latency-bound; Nagle would add
        // delayed-ACK stalls on top of the real server's.
        client.set_nodelay(true)?;
        server.set_nodelay(true)?;
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let (cut, cut_seen) = watch::channel(false);
        tokio::join!(
            client_to_server(client_read, server_write, &faults, cut),
            server_to_client(server_read, client_write, &faults, cut_seen),
        );
        io::Result::Ok(())
    };
    tokio::select! {
        // Errors just end the connection, as a real network failure would.
        _ = pipe => {}
        _ = broken.wait_for(|broken| *broken) => {}
    }
    // Both sockets drop here (inside the cancelled future), closing the
    // connection on both sides.
}

/// Waits while the proxy is stalled.
async fn unstalled(faults: &Faults) {
    let mut stalled = faults.stalled.subscribe();
    let _ = stalled.wait_for(|stalled| !*stalled).await;
}

/// The client's bytes, message by message once they parse as the PostgreSQL
/// frontend protocol (anything else is relayed as it comes).
async fn client_to_server(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    faults: &Faults,
    cut: watch::Sender<bool>,
) {
    let mut frames = PgFrames::default();
    let mut marked = false;
    let mut in_transaction = false;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        for message in frames.push(&chunk[..n]) {
            let held = *faults.stalled.borrow();
            if held {
                faults.held.fetch_add(1, Ordering::SeqCst);
            }
            unstalled(faults).await;
            if held {
                faults.held.fetch_sub(1, Ordering::SeqCst);
            }
            let cut_here = match frames.simple_query(&message) {
                Some(sql) => {
                    let commit = sql.eq_ignore_ascii_case("COMMIT");
                    // BEGIN, COMMIT, ROLLBACK, SET: diesel starts and ends
                    // transactions with simple queries; the marker is looked
                    // for in the statements between them.
                    if sql.eq_ignore_ascii_case("BEGIN") {
                        in_transaction = true;
                    } else if commit || sql.eq_ignore_ascii_case("ROLLBACK") {
                        in_transaction = false;
                    }
                    let cut_here = marked && commit && take_commit_marker(faults, CommitAt::Commit);
                    marked = false;
                    cut_here
                }
                None if !in_transaction && frames.is_sync(&message) => {
                    let cut_here = marked && take_commit_marker(faults, CommitAt::Sync);
                    marked = false;
                    cut_here
                }
                None => {
                    marked |= contains_marker(faults, &message);
                    false
                }
            };
            if cut_here {
                // The reply is dropped from now on, before the server can
                // send it; the COMMIT is relayed, followed by a FIN: the
                // server reads it, commits, and only then sees the end.
                cut.send_replace(true);
                let _ = to.write_all(&message).await;
                let _ = to.shutdown().await;
                faults.commits_cut.fetch_add(1, Ordering::SeqCst);
                return;
            }
            if to.write_all(&message).await.is_err() {
                return;
            }
        }
    }
}

/// The server's bytes; after a cut they are read and dropped, so the server
/// finishes its COMMIT and sees an orderly end instead of a reset.
async fn server_to_client(
    mut from: OwnedReadHalf,
    to: OwnedWriteHalf,
    faults: &Faults,
    mut cut: watch::Receiver<bool>,
) {
    let mut to = Some(to);
    let mut cut_pending = true;
    let cut_flag = cut.clone();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = from.read(&mut chunk) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if let Some(writer) = to.as_mut() {
                    unstalled(faults).await;
                    if *cut_flag.borrow() {
                        to = None;
                    } else if writer.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                }
            }
            was_cut = async { cut.wait_for(|cut| *cut).await.is_ok() }, if cut_pending => {
                cut_pending = false;
                if was_cut {
                    // Dropping our half closes the client's socket (the other
                    // half is gone with `client_to_server`).
                    to = None;
                }
            }
        }
    }
    if let Some(mut writer) = to {
        let _ = writer.shutdown().await;
    }
}

fn take_commit_marker(faults: &Faults, here: CommitAt) -> bool {
    let mut armed = faults
        .commit_marker
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let cut = armed.as_ref().is_some_and(|(_, at)| *at == here);
    if cut {
        *armed = None;
    }
    cut
}

fn contains_marker(faults: &Faults, message: &[u8]) -> bool {
    let armed = faults
        .commit_marker
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    armed.as_ref().is_some_and(|(marker, _)| {
        !marker.is_empty() && message.windows(marker.len()).any(|w| w == marker)
    })
}

/// Splits the frontend side of the PostgreSQL protocol into messages: first
/// untyped ones (SSLRequest, GSSENCRequest, then the StartupMessage), then
/// `type byte + int32 length` ones. Anything that does not parse switches it
/// to relaying bytes as they come.
#[derive(Default)]
struct PgFrames {
    pending: Vec<u8>,
    started: bool,
    raw: bool,
}

impl PgFrames {
    const PROTOCOL_3: u32 = 196_608;

    fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        if self.raw {
            return vec![bytes.to_vec()];
        }
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            let header = if self.started { 5 } else { 8 };
            if self.pending.len() < header {
                break;
            }
            let at = usize::from(self.started);
            let length = u32::from_be_bytes(self.pending[at..at + 4].try_into().unwrap()) as usize;
            if !(4..=1 << 30).contains(&length) {
                self.raw = true;
                out.push(std::mem::take(&mut self.pending));
                break;
            }
            let total = at + length;
            if self.pending.len() < total {
                break;
            }
            if !self.started {
                let code = u32::from_be_bytes(self.pending[4..8].try_into().unwrap());
                self.started = code == Self::PROTOCOL_3;
            }
            out.push(self.pending.drain(..total).collect());
        }
        out
    }

    fn is_sync(&self, message: &[u8]) -> bool {
        !self.raw && message == [b'S', 0, 0, 0, 4]
    }

    /// The SQL of a simple-query ('Q') message.
    fn simple_query<'m>(&self, message: &'m [u8]) -> Option<&'m str> {
        if self.raw || message.first() != Some(&b'Q') || message.len() < 6 {
            return None;
        }
        let sql = message[5..].strip_suffix(&[0])?;
        std::str::from_utf8(sql).ok().map(str::trim)
    }
}
