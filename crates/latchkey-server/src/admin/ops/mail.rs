//! The mail outbox, for system administrators: what was sent, what waits for a retry and
//! what failed (never a message's body, which may hold a link that acts as a password).

use super::*;
use crate::store::outbox::OutboxEntry;

/// Messages listed at most.
const OUTBOX: i64 = 100;

/// The newest messages, newest first.
pub async fn list_outbox(state: &AppState, admin: &Admin) -> R<Vec<OutboxEntry>> {
    admin.require_system()?;
    Ok(state.store.outbox(OUTBOX).await?)
}
