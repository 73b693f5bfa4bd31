//! Where messages go: an SMTP server (`mail.smtp_host`; STARTTLS required, implicit TLS, or
//! plain text to a loopback relay only), or the file outbox (`<data_dir>/outbox`, one
//! `<id>.eml` per message, mode 0600) when none is configured. A message keeps one
//! `Message-ID` however often it is retried, and the file outbox writes each message to its
//! own name, so a retry after a crash replaces rather than duplicates it there.

use crate::config::{Config, MailConfig, SmtpTls};
use lettre::message::{Mailbox, MultiPart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;

/// A configured way out.
pub enum Transport {
    Smtp {
        smtp: AsyncSmtpTransport<Tokio1Executor>,
        /// `host:port`, for log lines.
        server: String,
    },
    Outbox(PathBuf),
}

/// Why a message was not sent.
#[derive(Debug)]
pub struct SendError {
    /// The server refused it for good (a 5xx answer, a malformed address): no retry.
    pub permanent: bool,
    pub message: String,
}

impl SendError {
    fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            permanent: true,
            message: message.into(),
        }
    }
}

/// One message to send.
pub struct Outgoing<'a> {
    pub id: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub text: String,
    pub html: String,
    pub created_at: i64,
}

impl Transport {
    /// The transport `[mail]` describes.
    pub fn new(config: &Config) -> anyhow::Result<Transport> {
        let m = &config.mail;
        let Some(host) = m.smtp_host.clone() else {
            let dir = m
                .outbox_dir
                .clone()
                .unwrap_or_else(|| config.data_dir.join("outbox"));
            return Ok(Transport::Outbox(dir));
        };
        let tls = || -> anyhow::Result<TlsParameters> {
            let mut b = TlsParameters::builder(host.clone());
            if let Some(ca) = &m.smtp_ca_file {
                let pem = std::fs::read(ca)
                    .map_err(|e| anyhow::anyhow!("mail.smtp_ca_file {}: {e}", ca.display()))?;
                for cert in split_pem(&pem) {
                    b =
                        b.add_root_certificate(Certificate::from_pem(&cert).map_err(|e| {
                            anyhow::anyhow!("mail.smtp_ca_file {}: {e}", ca.display())
                        })?);
                }
            }
            Ok(b.build_rustls()?)
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(m.port())
            .timeout(Some(Duration::from_secs(30)))
            .hello_name(ClientId::Domain(hello_name(config)))
            .tls(match m.smtp_tls {
                SmtpTls::Starttls => Tls::Required(tls()?),
                SmtpTls::Tls => Tls::Wrapper(tls()?),
                SmtpTls::None => Tls::None,
            });
        if let (Some(user), Some(pw)) = (&m.smtp_username, m.password()?) {
            b = b.credentials(Credentials::new(user.clone(), pw.expose().clone()));
        }
        Ok(Transport::Smtp {
            smtp: b.build(),
            server: format!("{host}:{}", m.port()),
        })
    }

    /// Sends one message.
    pub async fn send(
        &self,
        from: &MailConfig,
        issuer: &str,
        m: Outgoing<'_>,
    ) -> Result<(), SendError> {
        let message = build(from, issuer, &m)?;
        match self {
            Transport::Smtp { smtp, server } => match smtp.send(message).await {
                Ok(_) => {
                    tracing::info!(id = m.id, server = %server, "mail sent");
                    Ok(())
                }
                Err(e) => Err(SendError {
                    permanent: e.is_permanent(),
                    message: format!("{server}: {e}"),
                }),
            },
            Transport::Outbox(dir) => {
                let path = dir.join(format!("{}.eml", m.id));
                let bytes = message.formatted();
                let written = (|| -> std::io::Result<()> {
                    std::fs::create_dir_all(dir)?;
                    let tmp = dir.join(format!(".{}.tmp", m.id));
                    let _ = std::fs::remove_file(&tmp);
                    crate::crypto::kek::write_private_file(&tmp, &bytes)?;
                    std::fs::rename(&tmp, &path)
                })();
                written.map_err(|e| SendError {
                    permanent: false,
                    message: format!("outbox {}: {e}", dir.display()),
                })?;
                tracing::info!(id = m.id, to = m.to, path = %path.display(), "mail written to the outbox (no mail.smtp_host)");
                Ok(())
            }
        }
    }
}

/// The name this node gives the SMTP server: the issuer's host.
fn hello_name(config: &Config) -> String {
    url::Url::parse(&config.issuer())
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".into())
}

/// The message, with a stable `Message-ID` (its outbox id) so a resend is recognisably the
/// same message.
fn build(from: &MailConfig, issuer: &str, m: &Outgoing<'_>) -> Result<Message, SendError> {
    let from: Mailbox = from
        .from
        .parse()
        .map_err(|e| SendError::permanent(format!("mail.from: {e}")))?;
    let to: Mailbox =
        m.to.parse()
            .map_err(|e| SendError::permanent(format!("recipient `{}`: {e}", m.to)))?;
    let domain = url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "latchkey.invalid".into());
    let date = std::time::UNIX_EPOCH + Duration::from_secs(m.created_at.max(0) as u64);
    Message::builder()
        .from(from)
        .to(to)
        .subject(m.subject)
        .date(date)
        .message_id(Some(format!("<{}@{domain}>", m.id)))
        .header(AutoSubmitted)
        .multipart(MultiPart::alternative_plain_html(
            m.text.clone(),
            m.html.clone(),
        ))
        .map_err(|e| SendError::permanent(format!("building the message: {e}")))
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no vacation auto-replies to Latchkey.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl header::Header for AutoSubmitted {
    fn name() -> header::HeaderName {
        header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> header::HeaderValue {
        header::HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// The PEM blocks of a file, one certificate each.
fn split_pem(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.starts_with("-----BEGIN ") {
            cur.clear();
        }
        cur.push_str(line);
        cur.push('\n');
        if line.starts_with("-----END ") {
            out.push(std::mem::take(&mut cur).into_bytes());
        }
    }
    out
}
