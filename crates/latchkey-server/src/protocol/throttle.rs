//! The rules that slow guessing down (NIST SP 800-63B section 5.2.2, "rate limiting"; OWASP's
//! "device cookie" scheme). Pure: the counts live in the store and the sign-in service
//! (`signin::throttle`) applies these rules to them.
//!
//! - **Passwords** spend budgets per fixed window, counted before the password is checked
//!   (so a spent budget is refused before any Argon2 work); a right password gives its
//!   attempt back to every budget but the global one ([`Budget::given_back`]).
//!   Which budgets an attempt spends depends only on the e-mail typed, the source address and
//!   the browser, never on whether the account exists, so a known and an unknown e-mail get
//!   the same answers. A browser that signed in to the account before (a known device) spends
//!   only its own budget: an attacker's guesses from elsewhere never hold its user back.
//! - **Second-factor codes** (the password is already proven) count per user: from the 5th
//!   consecutive failure further codes wait 30 s, doubling up to an hour, and after
//!   `max_code_failures` they are refused until an administrator resets the user's attempts.

use std::net::IpAddr;

/// A password budget: what one counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Attempts from browsers not known to the account they try, everyone together.
    Global,
    /// Attempts from one source address (IPv6: its /64), browsers not known to the account.
    Source,
    /// Attempts on one account from browsers not known to it, every source together.
    Account,
    /// Attempts on one account from one source, browsers not known to it.
    AccountSource,
    /// Attempts from one known browser on the account it is known for.
    Device,
}

impl Budget {
    /// Whether a right password gives its attempt back: to every budget but everyone's
    /// (`Global`), so a user's typos never add up and a lab behind one address is not
    /// throttled by its own people signing in. `Global` keeps every attempt from browsers
    /// not known to the account: the bound on Argon2 work that an attacker with an account
    /// of their own cannot refill by signing in to it between guesses.
    pub fn given_back(self) -> bool {
        !matches!(self, Budget::Global)
    }

    /// The budget's name, in audit entries and documentation.
    pub fn as_str(self) -> &'static str {
        match self {
            Budget::Global => "global",
            Budget::Source => "source",
            Budget::Account => "account",
            Budget::AccountSource => "account_source",
            Budget::Device => "device",
        }
    }
}

/// What a source address counts as: an IPv4 address, or the /64 an IPv6 address is in (one
/// host usually holds a whole /64).
pub fn source_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The counter keys of a password attempt on `account` (its keyed hash, hex) from `source`:
/// a known browser's own (`device`: its id) or the four shared ones. Every key of an account
/// starts with [`account_key`], which is what an administrator's reset deletes.
pub fn password_keys(account: &str, source: &str, device: Option<&str>) -> Vec<(Budget, String)> {
    let a = account_key(account);
    match device {
        Some(d) => vec![(Budget::Device, format!("{a}:d:{d}"))],
        // Narrowest first: an attempt stops at the first spent budget without counting
        // against the wider ones, so one address cannot use up the account's or everyone's.
        None => vec![
            (Budget::AccountSource, format!("{a}:s:{source}")),
            (Budget::Account, a.clone()),
            (Budget::Source, format!("s:{source}")),
            (Budget::Global, "g".to_owned()),
        ],
    }
}

/// The key of the budget of login flows started from `source`.
pub fn flow_key(source: &str) -> String {
    format!("f:{source}")
}

/// The key of an account's shared budget; its other keys start with it and `:`.
pub fn account_key(account: &str) -> String {
    format!("a:{account}")
}

/// What a user is told when a budget is spent for `secs` more seconds.
pub fn throttled_message(secs: i64) -> String {
    format!(
        "Too many sign-in attempts. Wait {} before trying again, or sign in with a passkey.",
        wait(secs)
    )
}

fn wait(secs: i64) -> String {
    if secs < 90 {
        let s = secs.max(1);
        format!("{s} second{}", if s == 1 { "" } else { "s" })
    } else {
        format!("{} minutes", (secs + 59) / 60)
    }
}

/// Where consecutive wrong codes leave a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeLock {
    /// Codes are refused unchecked for this many seconds.
    For(i64),
    /// Codes are refused until an administrator resets the user's attempts.
    Blocked,
}

/// How consecutive wrong second-factor codes lock further codes: from the 5th, 30 s doubling
/// up to an hour; from `max` on (NIST: at most 100), until an administrator resets them.
pub fn code_lock(failures: i64, max: i64) -> Option<CodeLock> {
    const THRESHOLD: i64 = 5;
    if failures >= max {
        return Some(CodeLock::Blocked);
    }
    (failures >= THRESHOLD).then(|| {
        let exp = u32::try_from((failures - THRESHOLD).min(7)).unwrap_or(7);
        CodeLock::For((30_i64 << exp).min(3600))
    })
}

impl CodeLock {
    /// Seconds until codes are checked again (a block lasts "for ever": a year).
    pub fn secs(self) -> i64 {
        match self {
            CodeLock::For(s) => s,
            CodeLock::Blocked => 365 * 86_400,
        }
    }

    /// What the user reads.
    pub fn message(self) -> String {
        self.message_for("codes")
    }

    /// What the user reads where `what` (e.g. "passwords or codes") was wrong too often.
    pub fn message_for(self, what: &str) -> String {
        match self {
            CodeLock::For(secs) => {
                format!(
                    "Too many wrong {what}. Wait {} before trying again.",
                    wait(secs)
                )
            }
            CodeLock::Blocked => format!(
                "Too many wrong {what}: codes are no longer accepted for this account. Sign in \
                 with a passkey, or ask an administrator to reset your sign-in attempts."
            ),
        }
    }
}

/// The kind of attempt counted per user (the name `auth_failures` rows are stored under).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// A second-factor code (TOTP or recovery code).
    Code,
}

impl Attempt {
    pub fn as_str(self) -> &'static str {
        match self {
            Attempt::Code => "code",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_locks_start_at_the_threshold_double_up_to_an_hour_and_block_at_the_maximum() {
        assert_eq!(code_lock(4, 100), None);
        assert_eq!(code_lock(5, 100), Some(CodeLock::For(30)));
        assert_eq!(code_lock(6, 100), Some(CodeLock::For(60)));
        assert_eq!(code_lock(50, 100), Some(CodeLock::For(3600)));
        assert_eq!(code_lock(100, 100), Some(CodeLock::Blocked));
        assert_eq!(code_lock(3, 3), Some(CodeLock::Blocked));
    }

    #[test]
    fn messages_round_up_to_minutes_from_90_seconds() {
        assert_eq!(
            CodeLock::For(1).message(),
            "Too many wrong codes. Wait 1 second before trying again."
        );
        assert_eq!(
            CodeLock::For(89).message(),
            "Too many wrong codes. Wait 89 seconds before trying again."
        );
        assert_eq!(
            throttled_message(900),
            "Too many sign-in attempts. Wait 15 minutes before trying again, or sign in with a passkey."
        );
    }

    #[test]
    fn ipv6_sources_count_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            source_of("2001:db8:1:2:aaaa::1".parse().unwrap()),
            source_of("2001:db8:1:2:bbbb::9".parse().unwrap())
        );
        assert_eq!(
            source_of("2001:db8:1:2::1".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(source_of("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
    }

    #[test]
    fn a_known_browser_spends_only_its_own_budget_and_every_key_names_its_account() {
        let shared = password_keys("ab12", "192.0.2.1", None);
        assert_eq!(shared.len(), 4);
        let own = password_keys("ab12", "192.0.2.1", Some("xyz"));
        assert_eq!(own, vec![(Budget::Device, "a:ab12:d:xyz".to_owned())]);
        for (b, k) in shared.iter().chain(&own) {
            if matches!(b, Budget::Account | Budget::AccountSource | Budget::Device) {
                assert!(k == "a:ab12" || k.starts_with("a:ab12:"), "{k}");
            }
        }
    }
}
