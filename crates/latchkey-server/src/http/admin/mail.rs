//! The console's outgoing-mail page, for system administrators: where mail goes, and the
//! newest messages with their state, attempts and last error (`admin::ops::list_outbox`).

use super::pages::{Head, when};
use super::{console, html, refusal};
use crate::admin::ops;
use crate::http::State;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

/// A message as the page lists it.
pub struct MailRow {
    pub when: String,
    pub to: String,
    pub subject: String,
    pub kind: String,
    pub state: String,
    pub attempts: i64,
    /// "sent 14:02 UTC", "next try 14:05 UTC: connection refused", the error of a failure.
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin/mail.html")]
pub struct MailPage {
    pub head: Head,
    pub transport: String,
    pub counts: Vec<(String, i64)>,
    pub messages: Vec<MailRow>,
}

pub async fn page(state: State, req: HttpRequest) -> HttpResponse {
    let c = match console(&state, &req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let messages = match ops::list_outbox(&state, &c.admin).await {
        Ok(m) => m,
        Err(e) => return refusal(&req, &e),
    };
    let counts = state.store.outbox_counts().await.unwrap_or_default();
    let m = &state.config.mail;
    let transport = match &m.smtp_host {
        Some(h) => format!(
            "Sent through {h}:{} ({:?}), from {}.",
            m.port(),
            m.smtp_tls,
            m.from
        )
        .replace("(Starttls)", "(STARTTLS)")
        .replace("(Tls)", "(TLS)")
        .replace("(None)", "(no TLS, loopback)"),
        None => format!(
            "No SMTP server is configured: messages are written to {}.",
            m.outbox_dir
                .clone()
                .unwrap_or_else(|| state.config.data_dir.join("outbox"))
                .display()
        ),
    };
    let messages = messages
        .into_iter()
        .map(|e| {
            let detail = match (e.state.as_str(), e.sent_at, e.last_error) {
                ("sent", Some(t), _) => format!("sent {}", when(t)),
                ("queued", _, Some(err)) => format!("next try {}: {err}", when(e.next_attempt_at)),
                (_, _, Some(err)) => err,
                _ => String::new(),
            };
            MailRow {
                when: when(e.created_at),
                to: e.recipient,
                subject: e.subject,
                kind: e.kind,
                state: e.state,
                attempts: e.attempts,
                detail,
            }
        })
        .collect();
    html(&MailPage {
        head: c.head(&req),
        transport,
        counts,
        messages,
    })
}
