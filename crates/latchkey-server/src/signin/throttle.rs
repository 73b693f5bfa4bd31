//! The one component that slows guessing down (the rules, pure, are
//! [`crate::protocol::throttle`]):
//! - password attempts spend budgets in the store ([`password_gate`]) before the password is
//!   checked, so a spent budget costs one read and no Argon2 work, and a right password gives
//!   its attempt back ([`Pass::settle`]). Budgets never depend on whether the e-mail is an
//!   account, and a known device ([`super::device`]) has its own;
//! - wrong second-factor codes count per user ([`code_standing`], [`code_fail`],
//!   [`code_settle`]): the password is already proven there.
//!
//! Passkey sign-in is never throttled. A budget spent and a code lock are audited with the
//! change that caused them.

use super::Requester;
use super::device;
use crate::audit::{Action, Event};
use crate::password::{Priority, Slot};
use crate::protocol::throttle::{Attempt, Budget, CodeLock, code_lock, password_keys, source_of};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::throttle::Counter;

/// Whether a password may be checked now.
#[derive(Debug)]
pub enum Gate {
    /// Checked: the attempt is counted; settle it when the password was right.
    Open(Box<Pass>),
    /// Refused unchecked: a budget is spent for `retry_after` more seconds.
    Closed { retry_after: i64 },
    /// Refused unchecked and uncounted: the hashing queue for browsers the account does
    /// not know is full.
    Busy,
    /// Refused unchecked and uncounted: this known browser's account already has its one
    /// check waiting or running ([`crate::password::PasswordHasher::reserve_known`]).
    AccountBusy,
}

/// A counted password attempt.
#[derive(Debug)]
pub struct Pass {
    /// The counters spent that a right password gives back.
    refundable: Vec<Counter>,
    /// The account the e-mail names, if it is one.
    pub user: Option<crate::store::users::User>,
    /// The account's keyed hash (the device cookie to set names it).
    pub account: String,
    /// The password check's place in the hashing queue (known browsers' lane first).
    pub slot: Option<Slot>,
}

impl Pass {
    /// The password was right: the attempt is given back (all budgets but the global one),
    /// and a budget it had used up is no longer remembered as spent.
    pub async fn settle(self, state: &AppState) -> Result<(), StoreError> {
        let keys: Vec<String> = self.refundable.iter().map(|c| c.key.clone()).collect();
        state.store.throttle_refund(self.refundable).await?;
        state.spent.forget(&keys, &[]);
        Ok(())
    }
}

fn limit(state: &AppState, b: Budget) -> i64 {
    let c = &state.config.throttle;
    match b {
        Budget::Global => c.global,
        Budget::Source => c.per_source,
        Budget::Account => c.per_account,
        Budget::AccountSource => c.per_account_source,
        Budget::Device => c.per_device,
    }
}

/// Seconds until the longest-spent of `counters` has room again: a counter is spent when its
/// count reached its limit.
fn spent(counters: &[Counter], limits: &[(String, i64)], now: i64, window: i64) -> Option<i64> {
    counters
        .iter()
        .filter(|c| limits.iter().any(|(k, l)| k == &c.key && c.count >= *l))
        .map(|c| (c.window_start + window - now).max(1))
        .max()
}

/// The account `email` names (its keyed hash), the browser's device id if it is known to
/// that account, and the budgets an attempt spends.
fn budgets_of(
    state: &AppState,
    who: &Requester,
    email: &str,
) -> (String, Option<String>, Vec<(Budget, String)>) {
    let account = device::account(state, email);
    let known = who
        .device
        .as_deref()
        .and_then(|c| device::check(state, c, &account));
    let budgets = password_keys(&account, &source_of(who.ip), known.as_deref());
    (account, known, budgets)
}

/// Remembers the counters of `counters` at their limit.
fn note_spent(
    state: &AppState,
    counters: &[Counter],
    limits: &[(String, i64)],
    window: i64,
    now: i64,
) {
    for c in counters {
        if limits.iter().any(|(k, l)| k == &c.key && c.count >= *l) {
            state.spent.note(&c.key, c.window_start + window, now);
        }
    }
}

/// `Some(retry_after)` when this node saw one of the budgets an attempt on `email` from `who`
/// would spend spent in the last few seconds ([`crate::state::SPENT_TTL`]): the attempt is
/// refused from memory, before its sign-in page, its session or any counter is read. The
/// same for an e-mail that is no account.
pub fn spent_here(state: &AppState, who: &Requester, email: &str, now: i64) -> Option<i64> {
    let (_, _, budgets) = budgets_of(state, who, email);
    state
        .spent
        .check(budgets.iter().map(|(_, k)| k.as_str()), now)
}

/// Whether an attempt on `email` from `who` would be shed now: the hashing queue for browsers
/// not known to their account is full and this browser is not known to this one. Answered
/// `503` from memory, before anything is read (the same for an e-mail that is no account).
pub fn shed_here(state: &AppState, who: &Requester, email: &str) -> bool {
    if !state.hasher.anonymous_full() {
        return false;
    }
    let (_, known, _) = budgets_of(state, who, email);
    known.is_none()
}

/// Counts a password attempt on `email` from `who`, or refuses it unchecked. The budgets and
/// the answers are the same whether the e-mail is an account or not; once counted, the
/// account is looked up and returned with the pass.
pub async fn password_gate(
    state: &AppState,
    who: &Requester,
    email: &str,
    now: i64,
) -> Result<Gate, StoreError> {
    let window = state.config.throttle.window_secs;
    let (account, known, budgets) = budgets_of(state, who, email);
    let limits: Vec<(String, i64)> = budgets
        .iter()
        .map(|(b, k)| (k.clone(), limit(state, *b)))
        .collect();
    // A spent budget is refused with one read and no write.
    let live = state
        .store
        .throttle_counters(limits.iter().map(|(k, _)| k.clone()).collect(), now, window)
        .await?;
    if let Some(retry_after) = spent(&live, &limits, now, window) {
        note_spent(state, &live, &limits, window, now);
        return Ok(Gate::Closed { retry_after });
    }
    // A place in the hashing queue first: when the anonymous queue is full the attempt is
    // shed before any write (the check itself would be).
    // A known browser's check is never shed, but one account has one at a time.
    let slot = if known.is_some() {
        match state.hasher.reserve_known(&account) {
            Ok(slot) => slot,
            Err(_) => return Ok(Gate::AccountBusy),
        }
    } else {
        match state.hasher.reserve(Priority::Anonymous) {
            Ok(slot) => slot,
            Err(_) => return Ok(Gate::Busy),
        }
    };
    // Looked up only now: a refused attempt costs no more than the read above.
    let user = state.store.find_user_by_email(email).await?;
    let target = user
        .as_ref()
        .map_or("unknown", |u| u.id.as_str())
        .to_owned();
    let details = who.details();
    let (kinds, cfg_limits) = (budgets.clone(), limits.clone());
    let taken = state
        .store
        .throttle_take(limits.clone(), now, window, move |spent| {
            spent
                .iter()
                .filter_map(|c| {
                    let (b, _) = kinds.iter().find(|(_, k)| k == &c.key)?;
                    let (_, l) = cfg_limits.iter().find(|(k, _)| k == &c.key)?;
                    let t = match b {
                        Budget::Global | Budget::Source => "unknown",
                        _ => target.as_str(),
                    };
                    let mut d = details.clone();
                    d["budget"] = b.as_str().into();
                    d["limit"] = (*l).into();
                    d["window_secs"] = window.into();
                    Some(Event::new(t, Action::LoginThrottled, t, d))
                })
                .collect()
        })
        .await?;
    // Attempts racing this one may have spent a budget between the read and the count.
    let taken = match taken {
        Ok(taken) => {
            // The budgets this attempt used up: the next attempts are refused from memory.
            note_spent(state, &taken, &limits, window, now);
            taken
        }
        Err(full) => {
            tracing::info!(source = %who.ip, "password attempt throttled");
            state.spent.note(&full.key, full.window_start + window, now);
            return Ok(Gate::Closed {
                retry_after: (full.window_start + window - now).max(1),
            });
        }
    };
    let refundable = taken
        .iter()
        .filter(|c| budgets.iter().any(|(b, k)| k == &c.key && b.given_back()))
        .cloned()
        .collect();
    Ok(Gate::Open(Box::new(Pass {
        refundable,
        user,
        account,
        slot: Some(slot),
    })))
}

/// Where the user's second-factor codes stand at `now`: `Some(lock)` while codes are refused.
pub async fn code_standing(
    state: &AppState,
    user_id: &str,
    now: i64,
) -> Result<Option<CodeLock>, StoreError> {
    let max = state.config.authentication.max_code_failures;
    Ok(state
        .store
        .failures(user_id, Attempt::Code)
        .await?
        .filter(|(_, until)| *until > now)
        .and_then(|(failures, until)| {
            code_lock(failures, max).map(|l| match l {
                CodeLock::Blocked => CodeLock::Blocked,
                CodeLock::For(_) => CodeLock::For(until - now),
            })
        }))
}

/// Counts a wrong code; when it starts (or extends) a lock, audits it and returns it.
pub async fn code_fail(
    state: &AppState,
    user_id: &str,
    who: &Requester,
    now: i64,
) -> Result<Option<CodeLock>, StoreError> {
    let user = user_id.to_owned();
    let mut details = who.details();
    let max = state.config.authentication.max_code_failures;
    state
        .store
        .record_failure(user_id, Attempt::Code, now, max, move |failures, lock| {
            details["failures"] = failures.into();
            match lock {
                CodeLock::For(secs) => details["locked_for_secs"] = secs.into(),
                CodeLock::Blocked => details["blocked"] = true.into(),
            }
            Event::new(&user, Action::FactorLocked, &user, details)
        })
        .await
}

/// Settles a code that checked out. The standing is read again: a lock may have started
/// while this code was being checked (parallel guesses, each past the first read). Then the
/// right answer is refused like a wrong one, so racing requests learn nothing once the
/// threshold is reached: `Err(lock)`. Otherwise the count of failures is cleared (only when
/// there is one: no write on the common path).
pub async fn code_settle(
    state: &AppState,
    user_id: &str,
    now: i64,
) -> Result<Result<(), CodeLock>, StoreError> {
    if let Some(lock) = code_standing(state, user_id, now).await? {
        return Ok(Err(lock));
    }
    if state
        .store
        .failures(user_id, Attempt::Code)
        .await?
        .is_some()
    {
        state.store.reset_failures(user_id, Attempt::Code).await?;
    }
    Ok(Ok(()))
}

/// Counts a new login flow from `source`; `Some(retry_after)` when the address started
/// `throttle.flows_per_source` flows in this window already (the flow is not stored).
pub async fn flow_gate(
    state: &AppState,
    source: std::net::IpAddr,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let cfg = &state.config.throttle;
    let key = crate::protocol::throttle::flow_key(&source_of(source));
    let limits = vec![(key, cfg.flows_per_source)];
    let live = state
        .store
        .throttle_counters(vec![limits[0].0.clone()], now, cfg.window_secs)
        .await?;
    if let Some(secs) = spent(&live, &limits, now, cfg.window_secs) {
        return Ok(Some(secs));
    }
    let taken = state
        .store
        .throttle_take(limits, now, cfg.window_secs, |_| Vec::new())
        .await?;
    Ok(taken
        .err()
        .map(|full| (full.window_start + cfg.window_secs - now).max(1)))
}
