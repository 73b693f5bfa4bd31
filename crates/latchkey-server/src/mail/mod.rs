//! Outgoing e-mail (`docs/email.md`): invitations, password-reset links, address
//! confirmations and security notices.
//!
//! A message is composed ([`compose`]: text and HTML from the `templates/mail/` templates,
//! sealed under the KEK) and attached to the audit event of the change it tells of
//! ([`crate::audit::Event::with_mail`]), so it is queued in the same transaction: a change
//! that rolls back sends nothing, and one that commits is never without its message. Every
//! node's [`sender`] drains the queue through SMTP (`[mail]`), or, with no SMTP server
//! configured, into a file outbox in the data directory.

pub mod content;
pub mod links;
pub mod sender;
pub mod transport;

pub use content::Content;

use crate::audit::QueuedMail;
use crate::state::AppState;
use askama::Template;
use serde::{Deserialize, Serialize};

#[derive(Template)]
#[template(path = "mail/message.txt")]
struct TextMessage<'a> {
    subject: &'a str,
    paragraphs: &'a [String],
    action: &'a Option<(String, String)>,
    closing: &'a Option<String>,
    issuer: &'a str,
    to: &'a str,
}

#[derive(Template)]
#[template(path = "mail/message.html")]
struct HtmlMessage<'a> {
    subject: &'a str,
    paragraphs: &'a [String],
    action: &'a Option<(String, String)>,
    closing: &'a Option<String>,
    issuer: &'a str,
    to: &'a str,
}

/// A message's two bodies, as sealed in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bodies {
    pub text: String,
    pub html: String,
}

/// The associated data a message's body is sealed with: its id.
pub fn body_aad(id: &str) -> Vec<u8> {
    format!("latchkey mail {id}").into_bytes()
}

/// Composes `content` for `to`, about account `user_id`: rendered and sealed, ready to be
/// attached to an event. `None` only if a template fails to render (logged).
pub fn compose(
    state: &AppState,
    to: &str,
    user_id: Option<&str>,
    content: &Content,
) -> Option<QueuedMail> {
    let account = format!("{}/account", state.issuer);
    let w = content.words(&account);
    let text = TextMessage {
        subject: &w.subject,
        paragraphs: &w.paragraphs,
        action: &w.action,
        closing: &w.closing,
        issuer: &state.issuer,
        to,
    }
    .render();
    let html = HtmlMessage {
        subject: &w.subject,
        paragraphs: &w.paragraphs,
        action: &w.action,
        closing: &w.closing,
        issuer: &state.issuer,
        to,
    }
    .render();
    let (text, html) = match (text, html) {
        (Ok(t), Ok(h)) => (t, h),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, kind = w.kind, "an e-mail template failed to render");
            return None;
        }
    };
    let id = uuid::Uuid::now_v7().to_string();
    let body = serde_json::to_vec(&Bodies { text, html }).ok()?;
    Some(QueuedMail {
        sealed_body: state.kek.seal(&body_aad(&id), &body),
        id,
        to: to.to_owned(),
        kind: w.kind,
        subject: w.subject,
        user_id: user_id.map(str::to_owned),
        created_at: crate::store::now(),
    })
}

/// Wakes this node's sender after a commit that queued mail (other nodes find it on their
/// next poll).
pub fn wake(state: &AppState) {
    state.mail_wake.notify_one();
}
