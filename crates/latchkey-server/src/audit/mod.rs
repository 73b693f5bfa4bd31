//! The audit log's model: [`Action`] (what may be recorded), [`Event`] (one entry before it
//! is chained) and [`chain`] (the hash chain that makes tampering detectable). The store
//! appends an event inside the transaction of the change it records
//! (`store::audit::append`), so no change commits without its entry.

pub mod action;
pub mod chain;

pub use action::Action;

/// An entry to append: who did what to which target, with details (never secrets).
#[derive(Debug, Clone)]
pub struct Event {
    /// A user id, a client id, `cli` or `system`.
    pub actor: String,
    pub action: Action,
    pub target: String,
    pub details: serde_json::Value,
    /// E-mail that tells of this change, queued in the same transaction as the entry
    /// (`store::outbox`), so it is sent if and only if the change commits.
    pub mails: Vec<QueuedMail>,
}

/// A message waiting in the outbox: its body (text and HTML) sealed under the
/// key-encryption key, since it may hold a link that acts as a password. Composed by
/// `mail::Mailer`, sent later by `mail::sender`.
#[derive(Clone)]
pub struct QueuedMail {
    pub id: String,
    pub to: String,
    /// What the message is (`password_reset`, `factor_added`, …).
    pub kind: &'static str,
    pub subject: String,
    pub sealed_body: Vec<u8>,
    /// The account it concerns (erased with it).
    pub user_id: Option<String>,
    pub created_at: i64,
}

impl std::fmt::Debug for QueuedMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedMail")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Event {
    pub fn new(
        actor: impl Into<String>,
        action: Action,
        target: impl Into<String>,
        details: serde_json::Value,
    ) -> Event {
        Event {
            actor: actor.into(),
            action,
            target: target.into(),
            details,
            mails: Vec::new(),
        }
    }

    /// This event, with an e-mail that tells of it (none if `mail` is `None`).
    pub fn with_mail(mut self, mail: Option<QueuedMail>) -> Event {
        self.mails.extend(mail);
        self
    }
}
