//! A TCP chaos proxy for outage tests.
//!
//! Put it between the code under test and a real server, then pull the plug
//! with [`ChaosProxy::break_networking`] and put it back with
//! [`ChaosProxy::restore_networking`]. Unlike stopping the database, this cuts
//! off only the connections made through this proxy, so other tests of the
//! same binary keep their server.
//!
//! The proxy runs on its own thread with its own single-threaded tokio
//! runtime, so it works the same from a plain `#[test]` and from a
//! `#[tokio::test]` of either flavour, and keeps forwarding while the test's
//! runtime is blocked.
#![allow(dead_code)]

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

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
    thread: Mutex<Option<JoinHandle<()>>>,
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
                    accept_loop(listener, upstream, broken_rx, shutdown_rx, thread_active).await;
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
        tokio::spawn(forward(client, upstream, broken.clone(), guard));
    }
}

async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut broken: watch::Receiver<bool>,
    _guard: ActiveGuard,
) {
    let pipe = async {
        let mut server = TcpStream::connect(upstream).await?;
        // Protocol messages are small and latency-bound; Nagle would add
        // delayed-ACK stalls on top of the real server's.
        client.set_nodelay(true)?;
        server.set_nodelay(true)?;
        tokio::io::copy_bidirectional(&mut client, &mut server).await
    };
    tokio::select! {
        // Errors just end the connection, as a real network failure would.
        _ = pipe => {}
        _ = broken.wait_for(|broken| *broken) => {}
    }
    // Both sockets drop here (`server` inside the cancelled future), closing
    // the connection on both sides.
}
