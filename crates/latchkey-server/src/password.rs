//! Passwords: NIST SP 800-63B rules (length limits, a blocklist of common and context-specific
//! passwords, no composition rules) and Argon2id hashing on a fixed pool of threads with reused
//! memory, so a burst of logins can neither stall the async workers nor grow memory.

use crate::config::{Argon2Config, PasswordConfig};
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::Arc;
use tokio::sync::OnceCell;
use unicode_normalization::UnicodeNormalization;

/// Why a new password was refused; the message is shown next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    #[error("Use at least {0} characters.")]
    TooShort(usize),
    #[error("Use at most {0} characters.")]
    TooLong(usize),
    #[error("This password is too common or too easy to guess; choose another one.")]
    Guessable,
}

/// NFKC-normalises a password (NIST SP 800-63B-4 section 3.1.1.2) so the same password typed
/// on different keyboards hashes the same.
pub fn normalize(password: &str) -> String {
    password.nfkc().collect()
}

/// Checks a new password against the length rules and the blocklist; `context` holds words an
/// attacker would try first (the user's email and name, the service's name).
pub fn check_new_password(
    rules: &PasswordConfig,
    password: &str,
    context: &[&str],
) -> Result<(), PasswordRejected> {
    let normalized = normalize(password);
    let len = normalized.chars().count();
    if len < rules.min_length {
        return Err(PasswordRejected::TooShort(rules.min_length));
    }
    if len > rules.max_length {
        return Err(PasswordRejected::TooLong(rules.max_length));
    }
    let mut words: Vec<&str> = vec!["latchkey", "lab", "password"];
    words.extend_from_slice(context);
    // zxcvbn matches against its frequency lists of leaked passwords, common words and names,
    // plus our context words; score 3 means more than 10^8 guesses are needed.
    let estimate = zxcvbn::zxcvbn(&normalized, &words);
    if (estimate.score() as u8) < 3 {
        return Err(PasswordRejected::Guessable);
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing pool is shut down")]
    Pool,
    /// The queue for anonymous checks is full ([`Priority::Anonymous`]), or the account's
    /// one known check is already waiting or running ([`PasswordHasher::reserve_known`]).
    #[error("too many password checks are waiting")]
    Busy,
}

/// A reserved place in the hashing queue ([`PasswordHasher::reserve`]).
pub struct Slot {
    depth: Arc<std::sync::atomic::AtomicUsize>,
    /// The anonymous checks' own count, for an anonymous slot.
    anonymous: Option<Arc<std::sync::atomic::AtomicUsize>>,
    priority: Priority,
    /// Still counted by this slot (not handed to a job yet).
    held: bool,
    /// The account whose one known check this is ([`PasswordHasher::reserve_known`]).
    account: Option<AccountHold>,
}

/// Accounts with a known check waiting or running.
type InFlight = Arc<std::sync::Mutex<std::collections::HashSet<String>>>;

/// An account's one known check at a time: given back when dropped (after its hash, or with
/// a slot that was never used).
struct AccountHold {
    in_flight: InFlight,
    key: String,
}

impl Drop for AccountHold {
    fn drop(&mut self) {
        // A set of keys stays whole whatever panicked while it was locked: the key is always
        // given back, or the account would stay "busy" for good.
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("priority", &self.priority)
            .finish()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.held {
            self.depth.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            if let Some(a) = &self.anonymous {
                a.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            }
        }
    }
}

/// Who a password check is for: under load, anonymous work is shed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A browser the account knows, or an operation that is not a guess: always queued.
    Known,
    /// Anyone else: refused with [`HashError::Busy`] when `argon2.anonymous_queue` checks
    /// are already waiting or running.
    Anonymous,
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but hashed with other parameters than the configured ones: store this new hash.
    YesRehash(String),
}

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// Argon2id on a fixed set of threads: `argon2.max_concurrent` shared ones (one per core by
/// default) and one more per four of them kept for browsers the account knows. Each thread
/// keeps its working memory (19 MiB by default) between hashes, allocated at its first hash:
/// memory use is bounded by the thread count and is not handed back and forth to the
/// allocator (which would keep the high-water mark).
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    queue: Arc<Queue>,
    /// Closes the queue (the threads end) when the last clone of the hasher is dropped.
    _closer: Arc<Closer>,
    dummy: Arc<OnceCell<String>>,
    /// Hashes queued or running, of any priority.
    depth: Arc<std::sync::atomic::AtomicUsize>,
    /// Anonymous checks queued or running.
    anonymous: Arc<std::sync::atomic::AtomicUsize>,
    /// How many anonymous checks may be queued or running: known work does not count (it
    /// has its own bound, one per account), so no number of known checks sheds anonymous
    /// ones.
    anonymous_limit: usize,
    /// Accounts with a known check waiting or running: one each, so that nobody can fill the
    /// known lane with checks of their own password.
    known_in_flight: InFlight,
}

/// Which work a hashing thread takes ([`Queue::next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Known checks only, at the process's own CPU priority: a browser the account knows
    /// never waits behind a guess for a thread, nor for the CPU.
    Reserved,
    /// Anonymous checks, and known ones while every reserved thread is busy, at a lower CPU
    /// priority (`argon2.anonymous_nice`): a flood of guesses yields the CPU to requests and
    /// to the reserved threads.
    Shared,
}

/// The hashing threads' work, in two lanes: known browsers' checks (and hashes that are no
/// guesses) and anonymous checks.
struct Queue {
    lanes: std::sync::Mutex<Lanes>,
    ready: std::sync::Condvar,
    /// How many [`Role::Reserved`] threads there are.
    reserved: usize,
}

#[derive(Default)]
struct Lanes {
    known: std::collections::VecDeque<Job>,
    anonymous: std::collections::VecDeque<Job>,
    /// Reserved threads running a job now.
    busy_reserved: usize,
    closed: bool,
}

impl Queue {
    fn new(reserved: usize) -> Queue {
        Queue {
            lanes: std::sync::Mutex::new(Lanes::default()),
            ready: std::sync::Condvar::new(),
            reserved,
        }
    }

    fn push(&self, priority: Priority, job: Job) -> Result<(), HashError> {
        let mut lanes = self.lanes.lock().map_err(|_| HashError::Pool)?;
        if lanes.closed {
            return Err(HashError::Pool);
        }
        match priority {
            Priority::Known => lanes.known.push_back(job),
            Priority::Anonymous => lanes.anonymous.push_back(job),
        }
        drop(lanes);
        // Not every thread takes every job: wake them all (a handful), each takes its own.
        self.ready.notify_all();
        Ok(())
    }

    /// The next job for a thread of `role`; `None` once the queue is closed and holds no more
    /// work of the role. A reserved thread calls [`Queue::done`] after its job.
    fn next(&self, role: Role) -> Option<Job> {
        let mut lanes = self.lanes.lock().ok()?;
        loop {
            match role {
                Role::Reserved => {
                    if let Some(job) = lanes.known.pop_front() {
                        lanes.busy_reserved += 1;
                        return Some(job);
                    }
                    if lanes.closed {
                        return None;
                    }
                }
                Role::Shared => {
                    if lanes.busy_reserved >= self.reserved
                        && let Some(job) = lanes.known.pop_front()
                    {
                        return Some(job);
                    }
                    if let Some(job) = lanes.anonymous.pop_front() {
                        return Some(job);
                    }
                    if lanes.closed && lanes.known.is_empty() {
                        return None;
                    }
                }
            }
            lanes = self.ready.wait(lanes).ok()?;
        }
    }

    /// A reserved thread finished its job: the shared threads leave known work to it again.
    fn done(&self) {
        if let Ok(mut lanes) = self.lanes.lock() {
            lanes.busy_reserved = lanes.busy_reserved.saturating_sub(1);
        }
        self.ready.notify_all();
    }
}

/// Asks for nice value `nice` (below 0) for the calling thread (Linux: per thread), as a
/// thread kept for known browsers' checks: granted with `CAP_SYS_NICE` or a `RLIMIT_NICE`
/// that allows it; otherwise the thread keeps the process's priority, which is said once.
fn raise_cpu_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    if nice < 0 {
        use rustix::process::{getpriority_process, setpriority_process};
        let raised = getpriority_process(None).and_then(|now| {
            if now <= nice {
                return Ok(());
            }
            setpriority_process(None, nice)
        });
        static SAID: std::sync::Once = std::sync::Once::new();
        if let Err(e) = raised {
            SAID.call_once(|| {
                tracing::info!(
                    error = %e,
                    nice,
                    "known browsers' hashing threads keep the service's CPU priority (raising \
                     it needs CAP_SYS_NICE or RLIMIT_NICE, systemd LimitNICE=)"
                );
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Lowers the calling thread's CPU priority by `by` nice steps (Linux: per thread). Raising
/// it back would need a privilege, so a thread that calls this keeps it.
fn lower_cpu_priority(by: i32) {
    #[cfg(target_os = "linux")]
    if by > 0 {
        use rustix::process::{getpriority_process, setpriority_process};
        let lowered = getpriority_process(None).and_then(|now| {
            // `None`: on Linux the calling thread alone.
            setpriority_process(None, (now + by).min(19))
        });
        if let Err(e) = lowered {
            tracing::warn!(error = %e, "cannot lower the anonymous hashing threads' CPU priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = by;
}

struct Closer(Arc<Queue>);

impl Drop for Closer {
    fn drop(&mut self) {
        if let Ok(mut lanes) = self.0.lanes.lock() {
            lanes.closed = true;
        }
        self.0.ready.notify_all();
    }
}

fn argon2id(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn compute(
    argon: &Argon2<'_>,
    blocks: usize,
    memory: &mut [Block],
    pw: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), HashError> {
    let e = |e: argon2::Error| HashError::Hash(e.to_string());
    if memory.len() == blocks {
        argon
            .hash_password_into_with_memory(pw, salt, out, &mut memory[..])
            .map_err(e)
    } else {
        // A stored hash with other parameters (before a rehash): use memory for this once.
        let mut other = vec![Block::default(); blocks];
        argon
            .hash_password_into_with_memory(pw, salt, out, &mut other[..])
            .map_err(e)
    }
}

fn phc(params: &Params, salt: &[u8], out: &[u8]) -> Result<String, HashError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| HashError::Hash(e.to_string()))?;
    let output = Output::new(out).map_err(|e| HashError::Hash(e.to_string()))?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        salt.as_str(),
        output
    ))
}

fn hash_with(params: &Params, memory: &mut [Block], pw: &[u8]) -> Result<String, HashError> {
    let salt = crate::secret::random_bytes(16);
    let mut out = [0u8; 32];
    compute(
        &argon2id(params.clone()),
        params.block_count(),
        memory,
        pw,
        &salt,
        &mut out,
    )?;
    phc(params, &salt, &out)
}

/// Checks `pw` against a PHC string; `Ok(None)` when it does not match.
fn verify_with(
    params: &Params,
    memory: &mut [Block],
    pw: &[u8],
    stored: &str,
) -> Result<Option<Option<String>>, HashError> {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Ok(None);
    };
    let (Ok(alg), Ok(stored_params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return Ok(None);
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return Ok(None);
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(alg, version, stored_params.clone());
    compute(
        &argon,
        stored_params.block_count(),
        memory,
        pw,
        salt,
        &mut out,
    )?;
    // Output's equality is constant-time.
    if Output::new(&out).ok() != Some(expected) {
        return Ok(None);
    }
    let same = alg == Algorithm::Argon2id
        && stored_params.m_cost() == params.m_cost()
        && stored_params.t_cost() == params.t_cost()
        && stored_params.p_cost() == params.p_cost();
    if same {
        Ok(Some(None))
    } else {
        hash_with(params, memory, pw).map(|h| Some(Some(h)))
    }
}

impl PasswordHasher {
    pub fn new(cfg: &Argon2Config) -> Result<PasswordHasher, HashError> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| HashError::Params(e.to_string()))?;
        let n = if cfg.max_concurrent == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            cfg.max_concurrent
        };
        let reserved = (n / 4).max(1);
        let queue = Arc::new(Queue::new(reserved));
        let threads = (0..reserved)
            .map(|i| (Role::Reserved, format!("argon2-known-{i}")))
            .chain((0..n).map(|i| (Role::Shared, format!("argon2-{i}"))));
        for (role, name) in threads {
            let queue = queue.clone();
            let blocks = params.block_count();
            let (nice, known_nice) = (i32::from(cfg.anonymous_nice), i32::from(cfg.known_nice));
            std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    match role {
                        Role::Shared => lower_cpu_priority(nice),
                        Role::Reserved => raise_cpu_priority(known_nice),
                    }
                    let mut memory: Vec<Block> = Vec::new();
                    while let Some(job) = queue.next(role) {
                        if memory.len() != blocks {
                            memory = vec![Block::default(); blocks];
                        }
                        job(&mut memory);
                        if role == Role::Reserved {
                            queue.done();
                        }
                    }
                })
                .map_err(|e| HashError::Params(format!("cannot start hashing threads: {e}")))?;
        }
        let anonymous_limit = if cfg.anonymous_queue == 0 {
            4 * n
        } else {
            cfg.anonymous_queue
        };
        Ok(PasswordHasher {
            params,
            _closer: Arc::new(Closer(queue.clone())),
            queue,
            dummy: Arc::new(OnceCell::new()),
            depth: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            anonymous: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            anonymous_limit,
            known_in_flight: InFlight::default(),
        })
    }

    /// Hashes queued or running now (a gauge for monitoring and tests).
    pub fn depth(&self) -> usize {
        self.depth.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether an anonymous check would be shed now: `argon2.anonymous_queue` anonymous
    /// checks are already waiting or running.
    pub fn anonymous_full(&self) -> bool {
        self.anonymous.load(std::sync::atomic::Ordering::Relaxed) >= self.anonymous_limit
    }

    /// A place in the queue for one hash of `priority`, taken now: an anonymous one is
    /// refused with [`HashError::Busy`] when `argon2.anonymous_queue` anonymous checks are
    /// already waiting or running. Given back when dropped unused.
    pub fn reserve(&self, priority: Priority) -> Result<Slot, HashError> {
        use std::sync::atomic::Ordering;
        let anonymous = if priority == Priority::Anonymous {
            let before = self.anonymous.fetch_add(1, Ordering::AcqRel);
            if before >= self.anonymous_limit {
                self.anonymous.fetch_sub(1, Ordering::AcqRel);
                return Err(HashError::Busy);
            }
            Some(self.anonymous.clone())
        } else {
            None
        };
        self.depth.fetch_add(1, Ordering::AcqRel);
        Ok(Slot {
            depth: self.depth.clone(),
            anonymous,
            priority,
            held: true,
            account: None,
        })
    }

    /// A place in the known lane for a check of `account`'s password (any stable key of the
    /// account): refused with [`HashError::Busy`] (its only error) while another known check of
    /// the same account is waiting or running. Known checks are never shed otherwise, so without this
    /// one account holder, checking their own password again and again in parallel (their
    /// own known browsers, the account page), could keep the known lane, and the threads
    /// reserved for it, to themselves.
    pub fn reserve_known(&self, account: &str) -> Result<Slot, HashError> {
        let in_flight = self.known_in_flight.clone();
        {
            let mut set = in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !set.insert(account.to_owned()) {
                return Err(HashError::Busy);
            }
        }
        let hold = AccountHold {
            in_flight,
            key: account.to_owned(),
        };
        let mut slot = self.reserve(Priority::Known)?;
        slot.account = Some(hold);
        Ok(slot)
    }

    /// Checks the password of a signed-in account in the known lane, one check per account at
    /// a time ([`PasswordHasher::reserve_known`]; `account`: the key the login uses too,
    /// [`crate::signin::device::account`], so that the two share the one check).
    pub async fn verify_known(
        &self,
        account: &str,
        password: &str,
        stored: &str,
    ) -> Result<Verified, HashError> {
        let slot = self.reserve_known(account)?;
        self.verify_in(slot, password, Some(stored)).await
    }

    async fn run<T: Send + 'static>(
        &self,
        mut slot: Slot,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        use std::sync::atomic::Ordering;
        // From here the job counts down when it is done, even if the caller gave up waiting.
        slot.held = false;
        let hold = slot.account.take();
        let anonymous = slot.anonymous.take();
        let anonymous_back = anonymous.clone();
        let depth = self.depth.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.queue.push(
            slot.priority,
            Box::new(move |mem| {
                let out = f(mem);
                // Done before the answer goes out: whoever hears it sees this job gone from
                // the queue, and the account free for its next check.
                drop(hold);
                depth.fetch_sub(1, Ordering::AcqRel);
                if let Some(a) = &anonymous {
                    a.fetch_sub(1, Ordering::AcqRel);
                }
                let _ = tx.send(out);
            }),
        );
        if sent.is_err() {
            // Never run (the pool is shut down): its counts go back here.
            self.depth.fetch_sub(1, Ordering::AcqRel);
            if let Some(a) = &anonymous_back {
                a.fetch_sub(1, Ordering::AcqRel);
            }
            return Err(HashError::Pool);
        }
        rx.await.map_err(|_| HashError::Pool)
    }

    /// Hashes a new (normalised) password of `account` (the key of
    /// [`PasswordHasher::reserve_known`]) into a PHC string, in the account's one place in the
    /// known lane: refused with [`HashError::Busy`] while another check or hash of the account
    /// is waiting or running. For what a browser can send many times at once (a reset link,
    /// an invitation, the account page): each would otherwise queue a hash of its own.
    pub async fn hash_for(&self, account: &str, password: &str) -> Result<String, HashError> {
        let pw = normalize(password);
        let params = self.params.clone();
        self.run(self.reserve_known(account)?, move |mem| {
            hash_with(&params, mem, pw.as_bytes())
        })
        .await?
    }

    /// Hashes a (normalised) password into a PHC string, in the known lane without a
    /// per-account place: for administrators and provisioning. What anyone can ask for goes
    /// through [`PasswordHasher::hash_for`].
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let pw = normalize(password);
        let params = self.params.clone();
        self.run(self.reserve(Priority::Known)?, move |mem| {
            hash_with(&params, mem, pw.as_bytes())
        })
        .await?
    }

    /// Tests' shorthand: [`PasswordHasher::reserve`] then [`PasswordHasher::verify_in`].
    #[cfg(test)]
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
        priority: Priority,
    ) -> Result<Verified, HashError> {
        let slot = self.reserve(priority)?;
        self.verify_in(slot, password, stored).await
    }

    /// Verifies `password` against `stored` in a place reserved before
    /// ([`PasswordHasher::reserve`], [`PasswordHasher::reserve_known`]): never shed. With
    /// `stored = None` (unknown user) it burns the same time on a dummy hash so response
    /// timing does not reveal which accounts exist.
    pub async fn verify_in(
        &self,
        slot: Slot,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let known = stored.is_some();
        let stored = match stored {
            Some(s) => s.to_owned(),
            None => self
                .dummy
                .get_or_try_init(|| self.hash("latchkey-dummy-password"))
                .await?
                .clone(),
        };
        let pw = normalize(password);
        let params = self.params.clone();
        let ok = self
            .run(slot, move |mem| {
                verify_with(&params, mem, pw.as_bytes(), &stored)
            })
            .await??;
        Ok(match ok {
            _ if !known => Verified::No,
            None => Verified::No,
            Some(None) => Verified::Yes,
            Some(Some(rehash)) => Verified::YesRehash(rehash),
        })
    }
}

#[cfg(test)]
mod tests;
