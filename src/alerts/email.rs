//! SMTP delivery with lettre: `smtp://host:25` (plain relay),
//! `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465`.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

#[derive(Clone)]
pub struct EmailSettings {
    pub smtp_url: SecretString,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
}

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("SMTP_URL is not usable: {0}")]
    Url(String),
    #[error("building the message: {0}")]
    Build(String),
    #[error("SMTP delivery: {0}")]
    Send(String),
}

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Mailer {
    pub fn new(settings: &EmailSettings) -> Result<Mailer, EmailError> {
        let transport = smtp_builder(settings.smtp_url.expose_secret())?
            .timeout(Some(Duration::from_secs(10)))
            .build();
        Ok(Mailer {
            transport,
            from: settings.from.clone(),
            to: settings.to.clone(),
        })
    }

    /// Connects and greets the server (EHLO, and STARTTLS and AUTH when the
    /// URL asks for them), then quits: no message is sent. Bounded by the
    /// transport's 10 s time-out per command.
    pub async fn reachable(&self) -> Result<(), EmailError> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(EmailError::Send(
                "the server did not answer NOOP after EHLO".into(),
            )),
            Err(e) => Err(EmailError::Send(e.to_string())),
        }
    }

    pub async fn send(&self, subject: &str, body: &str) -> Result<(), EmailError> {
        let mut builder = Message::builder().from(self.from.clone()).subject(subject);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let message = builder
            .body(body.to_string())
            .map_err(|e| EmailError::Build(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| EmailError::Send(e.to_string()))
    }
}

/// Checks an SMTP URL the way `Mailer::new` reads it, without building the
/// transport: configuration validates, start-up builds.
pub fn check_smtp_url(url: &str) -> Result<(), EmailError> {
    smtp_builder(url).map(|_| ())
}

fn smtp_builder(url: &str) -> Result<AsyncSmtpTransportBuilder, EmailError> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        // lettre's message would quote the URL, password included.
        .map_err(|_| EmailError::Url("not a valid smtp:// or smtps:// URL".into()))
}
