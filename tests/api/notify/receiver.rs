//! A shop's notification endpoint on a loopback port: real HTTP/1.1 over a
//! socket, one request per connection, answered as the test's script says:
//! a status, silence (the connection stays open, nothing is written), or a
//! closed connection (the answer is lost after the request was read).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// Read the request, then never answer (keep the connection open).
    Silent,
    /// Read the request, then close the connection without an answer.
    Drop,
    /// 307 to the same path on another receiver.
    RedirectTo(SocketAddr),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub request_line: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
    pub reply: Reply,
}

impl Received {
    pub fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_string()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

type Script = dyn Fn(&Received, &[Received]) -> Reply + Send + Sync;

pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    /// Silent connections are kept here until the receiver is dropped.
    held: Arc<Mutex<Vec<TcpStream>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
        self.held.lock().unwrap().clear();
    }
}

impl Receiver {
    /// `script` decides each answer from the request and those before it.
    pub async fn start(
        script: impl Fn(&Received, &[Received]) -> Reply + Send + Sync + 'static,
    ) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let (kept, holding) = (received.clone(), held.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (kept, holding, script) = (kept.clone(), holding.clone(), script.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &kept, &holding, &*script).await;
                });
            }
        });
        Receiver {
            addr,
            received,
            held,
            task,
        }
    }

    /// Answers every request the same way.
    pub async fn always(reply: Reply) -> Receiver {
        Receiver::start(move |_, _| reply).await
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/payhook?shop_token=t0k3n", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Requests for one event id, in arrival order.
    pub fn for_event(&self, id: i64) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.id() == id.to_string())
            .collect()
    }

    /// Waits until `done` holds for what arrived, or panics after `within`.
    pub async fn wait_until(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; received {} request(s)",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn serve(
    mut stream: TcpStream,
    kept: &Mutex<Vec<Received>>,
    holding: &Mutex<Vec<TcpStream>>,
    script: &Script,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut headers = HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').expect("header line");
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    let length: usize = headers
        .get("content-length")
        .map(|v| v.to_str().unwrap().parse().unwrap())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let mut request = Received {
        request_line,
        headers,
        body,
        at: Instant::now(),
        reply: Reply::Drop,
    };
    let reply = {
        let mut kept = kept.lock().unwrap();
        request.reply = script(&request, &kept);
        kept.push(request.clone());
        request.reply
    };
    match reply {
        Reply::Status(code) => {
            let answer = format!(
                "HTTP/1.1 {code} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await?;
        }
        Reply::RedirectTo(addr) => {
            let answer = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{addr}/hooks/payhook?shop_token=t0k3n\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await?;
        }
        Reply::Silent => holding.lock().unwrap().push(stream),
        Reply::Drop => drop(stream),
    }
    Ok(())
}
