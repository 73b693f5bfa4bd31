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
        }
    }
}
