//! A real SMTP server on loopback for the alert tests: it speaks the protocol
//! over a socket as any relay does (EHLO, MAIL, RCPT, DATA with dot-stuffing,
//! QUIT), so lettre talks to it exactly as it would to a real one, and it keeps
//! each message decoded as a mail reader shows it. No external program needed.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Larger messages are refused: an alert is a few KiB.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

pub struct SmtpSink {
    pub port: u16,
    messages: Arc<Mutex<Vec<String>>>,
    stopped: Arc<AtomicBool>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SMTP sink");
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        let (kept, stop) = (messages.clone(), stopped.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let kept = kept.clone();
                std::thread::spawn(move || {
                    // A client that breaks the dialogue just loses its message.
                    let _ = serve(stream, &kept);
                });
            }
        });
        SmtpSink {
            port,
            messages,
            stopped,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, decoded: `X-Envelope-To`, From, To,
    /// Subject and Date headers, a blank line, the text.
    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages arrived (or panics after `within`).
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let started = Instant::now();
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(
                started.elapsed() < within,
                "expected {n} e-mails, got {}: {messages:#?}",
                messages.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One SMTP session (RFC 5321), as far as a mail client needs it.
fn serve(stream: TcpStream, kept: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    out.write_all(b"220 sink.test ESMTP\r\n")?;
    let mut recipients: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if command.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if command.starts_with("MAIL FROM:") {
            recipients.clear();
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO:") {
            let address = line.trim_end()["RCPT TO:".len()..].trim();
            let address = address.split_whitespace().next().unwrap_or_default();
            recipients.push(address.trim_matches(['<', '>']).to_string());
            b"250 OK\r\n"
        } else if command == "DATA" {
            out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let raw = read_data(&mut reader)?;
            match raw {
                Some(raw) => {
                    kept.lock().unwrap().push(decoded(&recipients, &raw));
                    b"250 Message accepted\r\n"
                }
                None => b"552 Message too large\r\n",
            }
        } else if command == "RSET" {
            recipients.clear();
            b"250 OK\r\n"
        } else if command == "NOOP" {
            b"250 OK\r\n"
        } else if command == "QUIT" {
            out.write_all(b"221 Bye\r\n")?;
            return Ok(());
        } else {
            b"502 Command not implemented\r\n"
        };
        out.write_all(reply)?;
    }
}

/// The message up to the lone `.` line, dot-unstuffed; `None` when too large.
fn read_data(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut raw = Vec::new();
    let mut line = Vec::new();
    let mut too_large = false;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok((!too_large).then_some(raw));
        }
        let content = line.strip_prefix(b".").unwrap_or(&line);
        if raw.len() + content.len() > MAX_MESSAGE_BYTES {
            too_large = true;
        } else {
            raw.extend_from_slice(content);
        }
    }
}

/// As a mail reader shows it: encoded words and transfer encodings undone.
fn decoded(recipients: &[String], raw: &[u8]) -> String {
    let message = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a MIME message");
    let addresses = |list: Option<&mail_parser::Address>| -> String {
        list.map(|a| {
            a.iter()
                .filter_map(|addr| addr.address())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
    };
    format!(
        "X-Envelope-To: {}\nFrom: {}\nTo: {}\nSubject: {}\nDate: {}\n\n{}",
        recipients.join(", "),
        addresses(message.from()),
        addresses(message.to()),
        message.subject().unwrap_or_default(),
        message.date().map(|d| d.to_rfc822()).unwrap_or_default(),
        message.body_text(0).unwrap_or_default(),
    )
}

/// The decoded subject of a message.
pub fn subject(message: &str) -> String {
    message
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or_default()
        .to_string()
}
