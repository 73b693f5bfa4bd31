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
    /// The queue for anonymous checks is full ([`Priority::Anonymous`]).
    #[error("too many password checks are waiting")]
    Busy,
}

/// A reserved place in the hashing queue ([`PasswordHasher::reserve`]).
pub struct Slot {
    depth: Arc<std::sync::atomic::AtomicUsize>,
    priority: Priority,
    /// Still counted by this slot (not handed to a job yet).
    held: bool,
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

/// Argon2id on a fixed set of threads, one per permitted concurrent hash. Each thread keeps its
/// working memory (19 MiB by default) between hashes: memory use is bounded by the thread count
/// and is not handed back and forth to the allocator (which would keep the high-water mark).
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    queue: Arc<Queue>,
    /// Closes the queue (the threads end) when the last clone of the hasher is dropped.
    _closer: Arc<Closer>,
    dummy: Arc<OnceCell<String>>,
    /// Hashes queued or running, of any priority.
    depth: Arc<std::sync::atomic::AtomicUsize>,
    /// The depth from which anonymous checks are refused.
    anonymous_limit: usize,
}

/// The hashing threads' work: known browsers' checks (and hashes that are no guesses) are
/// taken before anonymous ones, and anonymous ones run on at most `anonymous_threads` threads
/// at once (three quarters of them from four threads on), so a flood of guesses leaves room
/// for everything else and never delays the people Latchkey knows by more than a hash.
struct Queue {
    lanes: std::sync::Mutex<Lanes>,
    ready: std::sync::Condvar,
    anonymous_threads: usize,
}

#[derive(Default)]
struct Lanes {
    known: std::collections::VecDeque<Job>,
    anonymous: std::collections::VecDeque<Job>,
    /// Anonymous jobs running now.
    running_anonymous: usize,
    closed: bool,
}

impl Queue {
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
        self.ready.notify_one();
        Ok(())
    }

    /// The next job, known ones first, and whether it is anonymous (then call
    /// [`Queue::anonymous_done`] after it); `None` once the queue is closed and empty.
    fn next(&self) -> Option<(Job, bool)> {
        let mut lanes = self.lanes.lock().ok()?;
        loop {
            if let Some(job) = lanes.known.pop_front() {
                return Some((job, false));
            }
            if lanes.running_anonymous < self.anonymous_threads
                && let Some(job) = lanes.anonymous.pop_front()
            {
                lanes.running_anonymous += 1;
                return Some((job, true));
            }
            if lanes.closed && lanes.anonymous.is_empty() {
                return None;
            }
            lanes = self.ready.wait(lanes).ok()?;
        }
    }

    fn anonymous_done(&self) {
        if let Ok(mut lanes) = self.lanes.lock() {
            lanes.running_anonymous = lanes.running_anonymous.saturating_sub(1);
        }
        self.ready.notify_all();
    }
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
        let queue = Arc::new(Queue {
            lanes: std::sync::Mutex::new(Lanes::default()),
            ready: std::sync::Condvar::new(),
            anonymous_threads: (n - n / 4).max(1),
        });
        for i in 0..n {
            let queue = queue.clone();
            let blocks = params.block_count();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut memory: Vec<Block> = Vec::new();
                    while let Some((job, anonymous)) = queue.next() {
                        if memory.len() != blocks {
                            memory = vec![Block::default(); blocks];
                        }
                        job(&mut memory);
                        if anonymous {
                            queue.anonymous_done();
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
            anonymous_limit,
        })
    }

    /// Hashes queued or running now (a gauge for monitoring and tests).
    pub fn depth(&self) -> usize {
        self.depth.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether an anonymous check would be shed now: `argon2.anonymous_queue` hashes are
    /// already waiting or running.
    pub fn anonymous_full(&self) -> bool {
        self.depth() >= self.anonymous_limit
    }

    /// A place in the queue for one hash of `priority`, taken now: an anonymous one is
    /// refused with [`HashError::Busy`] when `argon2.anonymous_queue` hashes are already
    /// waiting or running. Given back when dropped unused.
    pub fn reserve(&self, priority: Priority) -> Result<Slot, HashError> {
        use std::sync::atomic::Ordering;
        let before = self.depth.fetch_add(1, Ordering::AcqRel);
        if priority == Priority::Anonymous && before >= self.anonymous_limit {
            self.depth.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        Ok(Slot {
            depth: self.depth.clone(),
            priority,
            held: true,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        mut slot: Slot,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        use std::sync::atomic::Ordering;
        // From here the job counts down when it is done, even if the caller gave up waiting.
        slot.held = false;
        let depth = self.depth.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.queue.push(
            slot.priority,
            Box::new(move |mem| {
                let _ = tx.send(f(mem));
                depth.fetch_sub(1, Ordering::AcqRel);
            }),
        );
        if sent.is_err() {
            self.depth.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Pool);
        }
        rx.await.map_err(|_| HashError::Pool)
    }

    /// Hashes a (normalised) password into a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let pw = normalize(password);
        let params = self.params.clone();
        self.run(self.reserve(Priority::Known)?, move |mem| {
            hash_with(&params, mem, pw.as_bytes())
        })
        .await?
    }

    /// Verifies `password` against `stored`; with `stored = None` (unknown user) it burns the
    /// same time on a dummy hash so response timing does not reveal which accounts exist.
    /// An [`Priority::Anonymous`] check is refused ([`HashError::Busy`]) while the anonymous
    /// queue is full.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
        priority: Priority,
    ) -> Result<Verified, HashError> {
        let slot = self.reserve(priority)?;
        self.verify_in(slot, password, stored).await
    }

    /// [`PasswordHasher::verify`] in a place reserved before ([`PasswordHasher::reserve`]):
    /// never shed.
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
mod tests {
    use super::*;

    fn rules() -> PasswordConfig {
        PasswordConfig::default()
    }

    #[test]
    fn nist_800_63b_length_rules() {
        assert_eq!(
            check_new_password(&rules(), "short", &[]),
            Err(PasswordRejected::TooShort(15))
        );
        let long = "x".repeat(300);
        assert_eq!(
            check_new_password(&rules(), &long, &[]),
            Err(PasswordRejected::TooLong(256))
        );
        check_new_password(&rules(), "violet tractor sings at dawn", &[]).unwrap();
    }

    #[test]
    fn nist_800_63b_blocklist_refuses_common_and_context_passwords() {
        for common in ["passwordpassword", "123456789012345", "qwertyuiopasdfgh"] {
            assert_eq!(
                check_new_password(&rules(), common, &[]),
                Err(PasswordRejected::Guessable),
                "{common}"
            );
        }
        assert_eq!(
            check_new_password(
                &rules(),
                "ada.lovelace@lab.example1",
                &["ada.lovelace@lab.example"]
            ),
            Err(PasswordRejected::Guessable)
        );
    }

    #[test]
    fn known_checks_are_taken_before_anonymous_ones_and_a_closed_queue_ends() {
        let q = Queue {
            lanes: std::sync::Mutex::new(Lanes::default()),
            ready: std::sync::Condvar::new(),
            anonymous_threads: 2,
        };
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        for (p, name) in [
            (Priority::Anonymous, "a1"),
            (Priority::Anonymous, "a2"),
            (Priority::Known, "k1"),
        ] {
            let order = order.clone();
            q.push(p, Box::new(move |_| order.lock().unwrap().push(name)))
                .unwrap();
        }
        let closer = Closer(Arc::new(q));
        let mut mem = Vec::new();
        for _ in 0..3 {
            let (job, anonymous) = closer.0.next().unwrap();
            job(&mut mem);
            if anonymous {
                closer.0.anonymous_done();
            }
        }
        assert_eq!(*order.lock().unwrap(), ["k1", "a1", "a2"]);
        let queue = closer.0.clone();
        drop(closer);
        assert!(queue.next().is_none(), "closed and empty: the thread ends");
        assert!(queue.push(Priority::Known, Box::new(|_| {})).is_err());
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings() {
        use argon2::password_hash::PasswordVerifier;
        let h = PasswordHasher::new(&Argon2Config {
            memory_kib: 1024,
            iterations: 1,
            ..Argon2Config::default()
        })
        .unwrap();
        let phc = h.hash("correct horse battery").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .unwrap();
    }

    #[tokio::test]
    async fn hash_verify_and_rehash_on_parameter_change() {
        let small = Argon2Config {
            memory_kib: 1024,
            iterations: 1,
            ..Argon2Config::default()
        };
        let h = PasswordHasher::new(&small).unwrap();
        let phc = h.hash("correct horse battery").await.unwrap();
        assert_eq!(
            h.verify("correct horse battery", Some(&phc), Priority::Known)
                .await
                .unwrap(),
            Verified::Yes
        );
        assert_eq!(
            h.verify("wrong", Some(&phc), Priority::Known)
                .await
                .unwrap(),
            Verified::No
        );
        assert_eq!(
            h.verify("anything", None, Priority::Anonymous)
                .await
                .unwrap(),
            Verified::No
        );
        let bigger = PasswordHasher::new(&Argon2Config {
            memory_kib: 2048,
            ..small
        })
        .unwrap();
        assert!(matches!(
            bigger
                .verify("correct horse battery", Some(&phc), Priority::Known)
                .await
                .unwrap(),
            Verified::YesRehash(_)
        ));
    }
}
