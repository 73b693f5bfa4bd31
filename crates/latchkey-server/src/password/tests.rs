//! Unit tests of the password rules and the hashing pool.
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
    let q = Arc::new(Queue::new(1));
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let push = |p: Priority, name: &'static str| {
        let order = order.clone();
        q.push(p, Box::new(move |_| order.lock().unwrap().push(name)))
            .unwrap();
    };
    push(Priority::Anonymous, "a1");
    push(Priority::Anonymous, "a2");
    push(Priority::Known, "k1");
    let mut mem = Vec::new();
    // A shared thread leaves k1 to the idle reserved thread and takes a guess.
    q.next(Role::Shared).unwrap()(&mut mem);
    // The reserved thread takes k1 and nothing but known work.
    let k1 = q.next(Role::Reserved).unwrap();
    // While it is busy, a shared thread takes known work first.
    push(Priority::Known, "k2");
    q.next(Role::Shared).unwrap()(&mut mem);
    k1(&mut mem);
    q.done();
    q.next(Role::Shared).unwrap()(&mut mem);
    assert_eq!(*order.lock().unwrap(), ["a1", "k2", "k1", "a2"]);
    let closer = Closer(q.clone());
    drop(closer);
    assert!(
        q.next(Role::Shared).is_none(),
        "closed and empty: the thread ends"
    );
    assert!(q.next(Role::Reserved).is_none());
    assert!(q.push(Priority::Known, Box::new(|_| {})).is_err());
}

/// One account has one known check at a time: a second one is refused (`Busy`) until the
/// first is answered or its place given back; other accounts are not concerned.
#[tokio::test]
async fn one_known_check_per_account_at_a_time() {
    let cfg = Argon2Config {
        memory_kib: 64,
        iterations: 1,
        max_concurrent: 1,
        ..Argon2Config::default()
    };
    let hasher = PasswordHasher::new(&cfg).unwrap();
    let stored = hasher.hash("correct horse battery staple").await.unwrap();
    let first = hasher.reserve_known("account-a").unwrap();
    assert!(matches!(
        hasher.reserve_known("account-a"),
        Err(HashError::Busy)
    ));
    assert!(matches!(
        hasher
            .verify_known("account-a", "correct horse battery staple", &stored)
            .await,
        Err(HashError::Busy)
    ));
    // A new password of the same account waits its turn too (a reset link or an invitation
    // posted many times at once): refused, not queued.
    assert!(matches!(
        hasher.hash_for("account-a", "a new password").await,
        Err(HashError::Busy)
    ));
    let other = hasher.reserve_known("account-b").unwrap();
    drop(other);
    assert!(
        hasher
            .hash_for("account-b", "a new password")
            .await
            .unwrap()
            .starts_with("$argon2id$")
    );
    // Used: the account is free again once the check is answered.
    let v = hasher
        .verify_in(first, "correct horse battery staple", Some(&stored))
        .await
        .unwrap();
    assert_eq!(v, Verified::Yes);
    let again = hasher.reserve_known("account-a").unwrap();
    // Given back unused: free again too.
    drop(again);
    assert_eq!(
        hasher
            .verify_known("account-a", "wrong", &stored)
            .await
            .unwrap(),
        Verified::No
    );
}

/// The anonymous queue's bound counts anonymous checks only: known work (one per account)
/// never sheds them, however many accounts check at once; anonymous places are given back
/// unused or after their hash.
#[tokio::test]
async fn known_work_does_not_fill_the_anonymous_queue() {
    let cfg = Argon2Config {
        memory_kib: 64,
        iterations: 1,
        max_concurrent: 1,
        anonymous_queue: 1,
        ..Argon2Config::default()
    };
    let hasher = PasswordHasher::new(&cfg).unwrap();
    let known: Vec<_> = (0..5)
        .map(|i| hasher.reserve_known(&format!("account-{i}")).unwrap())
        .collect();
    assert_eq!(hasher.depth(), 5);
    assert!(!hasher.anonymous_full());
    let guess = hasher.reserve(Priority::Anonymous).unwrap();
    assert!(hasher.anonymous_full());
    assert!(matches!(
        hasher.reserve(Priority::Anonymous),
        Err(HashError::Busy)
    ));
    drop(guess);
    assert!(!hasher.anonymous_full());
    let guess = hasher.reserve(Priority::Anonymous).unwrap();
    assert_eq!(
        hasher.verify_in(guess, "pw", None).await.unwrap(),
        Verified::No
    );
    assert!(!hasher.anonymous_full());
    drop(known);
    assert_eq!(hasher.depth(), 0);
}

/// Each `argon2-…` thread of this process: name and nice value, from /proc (field 19 of
/// stat, after the parenthesised name).
#[cfg(target_os = "linux")]
fn hashing_threads() -> Vec<(String, i32)> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| {
            let dir = t.ok()?.path();
            let name = std::fs::read_to_string(dir.join("comm")).ok()?;
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 2..];
            let nice = after.split(' ').nth(16)?.parse().ok()?;
            Some((name.trim().to_owned(), nice))
        })
        .filter(|(name, _)| name.starts_with("argon2-"))
        .collect()
}

/// The threads that check anonymous passwords yield the CPU (`argon2.anonymous_nice`);
/// the one kept for known browsers is never lowered.
#[cfg(target_os = "linux")]
#[test]
fn anonymous_hashing_threads_run_at_a_lower_cpu_priority() {
    let cfg = Argon2Config {
        memory_kib: 64,
        iterations: 1,
        max_concurrent: 2,
        anonymous_nice: 7,
        ..Argon2Config::default()
    };
    let hasher = PasswordHasher::new(&cfg).unwrap();
    let own = rustix::process::getpriority_process(None).unwrap();
    let threads = hashing_threads;
    // The threads set their priority as they start. Other tests' hashers run in this
    // process too: only this one lowers by 7.
    let expected = (own + 7).min(19);
    let mut lowered = 0;
    for _ in 0..200 {
        lowered = threads()
            .iter()
            .filter(|(n, p)| !n.contains("known") && *p == expected)
            .count();
        if lowered >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        lowered >= 2,
        "the two shared threads run at nice {expected}"
    );
    let known: Vec<_> = threads()
        .into_iter()
        .filter(|(n, _)| n.starts_with("argon2-known"))
        .collect();
    assert!(!known.is_empty());
    assert!(known.iter().all(|(_, p)| *p <= own), "{known:?}");
    drop(hasher);
}

/// The threads kept for known browsers ask for a higher CPU priority (`argon2.known_nice`):
/// granted where the process may raise it (root, `CAP_SYS_NICE`, `RLIMIT_NICE`), and
/// otherwise the hasher works at the process's priority all the same.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn known_browsers_hashing_threads_ask_for_a_higher_cpu_priority() {
    use rustix::process::{getpriority_process, setpriority_process};
    // Whether a thread of this process may raise its own priority to -3, tried on a thread
    // of its own (nice is per thread).
    let may_raise = std::thread::spawn(|| setpriority_process(None, -3).is_ok())
        .join()
        .unwrap();
    let own = getpriority_process(None).unwrap();
    let cfg = Argon2Config {
        memory_kib: 64,
        iterations: 1,
        max_concurrent: 1,
        known_nice: -3,
        ..Argon2Config::default()
    };
    let hasher = PasswordHasher::new(&cfg).unwrap();
    let stored = hasher.hash("pw").await.unwrap();
    assert_eq!(
        hasher.verify_known("a", "pw", &stored).await.unwrap(),
        Verified::Yes
    );
    // Other tests' hashers run in this process too (default -10): only this one asks for -3.
    let raised = || {
        hashing_threads()
            .iter()
            .any(|(n, p)| n.starts_with("argon2-known") && *p == -3)
    };
    if may_raise && own > -3 {
        let mut seen = raised();
        for _ in 0..200 {
            if seen {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            seen = raised();
        }
        assert!(seen, "a known browsers' thread runs at nice -3");
    } else {
        assert!(!raised() || own <= -3);
    }
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
