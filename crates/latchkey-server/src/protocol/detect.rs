//! The intrusion detectors' rules, pure: from the sign-in and refusal entries of the audit
//! log seen in the last window, which attacks are under way. `alerts` feeds them what it reads
//! and raises what they find; each finding names a key (detector, subject and window, or
//! the one entry) so that an attack is alerted once per window however many nodes see it.
//! `docs/security-monitoring.md` explains each detector and its thresholds.

use std::collections::{BTreeMap, BTreeSet};

/// What an audit entry says, for the detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `login.failed`: a wrong password, a disabled account or an unknown e-mail.
    Failed,
    /// `login.password` or `login.passkey`.
    SignedIn,
    /// `code.replayed`: an authorization code presented twice.
    CodeReplayed,
    /// `refresh.reuse_detected`: a rotated-out refresh token presented again.
    RefreshReplayed,
    /// `admin.refused`: an authenticated administrator's call refused by policy.
    AdminRefused,
}

impl Kind {
    /// The kind of the audit action named `action`, if the detectors read it.
    pub fn of(action: &str) -> Option<Kind> {
        Some(match action {
            "login.failed" => Kind::Failed,
            "login.password" | "login.passkey" => Kind::SignedIn,
            "code.replayed" => Kind::CodeReplayed,
            "refresh.reuse_detected" => Kind::RefreshReplayed,
            "admin.refused" => Kind::AdminRefused,
            _ => return None,
        })
    }

    /// Every audit action the detectors read.
    pub const ACTIONS: &'static [&'static str] = &[
        "login.failed",
        "login.password",
        "login.passkey",
        "code.replayed",
        "refresh.reuse_detected",
        "admin.refused",
    ];
}

/// One audit entry as the detectors see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub seq: i64,
    pub at: i64,
    pub kind: Kind,
    /// The entry's target: a user id, a client id, or `unknown`.
    pub target: String,
    /// Where the request came from (the budget's source: an IPv4 address or an IPv6 /64).
    pub source: Option<String>,
    pub user_agent: Option<String>,
    /// The account tried, as a pseudonym (unknown e-mails too: `login.failed`'s `account`).
    pub account: Option<String>,
}

/// An attack pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Detector {
    PasswordSpraying,
    CredentialStuffing,
    BruteForce,
    CodeReplay,
    RefreshTokenReplay,
    AdminOutsidePolicy,
    /// Not an attack: a scheduled backup failed to be written or verified.
    BackupFailed,
}

impl Detector {
    pub const ALL: &'static [Detector] = &[
        Detector::PasswordSpraying,
        Detector::CredentialStuffing,
        Detector::BruteForce,
        Detector::CodeReplay,
        Detector::RefreshTokenReplay,
        Detector::AdminOutsidePolicy,
        Detector::BackupFailed,
    ];

    /// The name in alerts, webhooks and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::PasswordSpraying => "password_spraying",
            Detector::CredentialStuffing => "credential_stuffing",
            Detector::BruteForce => "brute_force",
            Detector::CodeReplay => "code_replay",
            Detector::RefreshTokenReplay => "refresh_token_replay",
            Detector::AdminOutsidePolicy => "admin_outside_policy",
            Detector::BackupFailed => "backup_failed",
        }
    }
}

/// The thresholds (`[detection]`).
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub window_secs: i64,
    pub spraying_accounts: i64,
    pub stuffing_failures: i64,
    pub stuffing_sources: i64,
    pub stuffing_accounts: i64,
    pub stuffing_failure_percent: i64,
    pub brute_force_failures: i64,
}

/// An attack found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub detector: Detector,
    /// Who or what is attacked or attacking: a source, an account, `all`, or a client or user.
    pub subject: String,
    /// Unique per detector, subject and window (or per entry): one alert each.
    pub key: String,
    /// The audit target of the alert: a user id, or `unknown`.
    pub target: String,
    /// The latest triggering entry's source and user agent.
    pub source: Option<String>,
    pub user_agent: Option<String>,
    /// Counts and the entries' range, for the alert.
    pub details: serde_json::Value,
}

/// The failures of a group, and what the alert says of them.
#[derive(Default)]
struct Group<'a> {
    failures: i64,
    accounts: BTreeSet<&'a str>,
    sources: BTreeMap<&'a str, i64>,
    targets: BTreeSet<&'a str>,
    first_seq: i64,
    last: Option<&'a Seen>,
}

impl<'a> Group<'a> {
    fn add(&mut self, s: &'a Seen) {
        self.failures += 1;
        if let Some(a) = s.account.as_deref() {
            self.accounts.insert(a);
        }
        if let Some(src) = s.source.as_deref() {
            *self.sources.entry(src).or_default() += 1;
        }
        if s.target != "unknown" {
            self.targets.insert(&s.target);
        }
        if self.first_seq == 0 {
            self.first_seq = s.seq;
        }
        self.last = Some(s);
    }

    /// The five sources with the most failures.
    fn top_sources(&self) -> Vec<serde_json::Value> {
        let mut v: Vec<(&str, i64)> = self.sources.iter().map(|(s, n)| (*s, *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.into_iter()
            .take(5)
            .map(|(s, n)| serde_json::json!({"source": s, "failures": n}))
            .collect()
    }

    fn finding(&self, d: Detector, subject: String, target: String, bucket: i64) -> Finding {
        let last = self.last;
        Finding {
            detector: d,
            key: format!("{}:{subject}:{bucket}", d.as_str()),
            subject,
            target,
            source: last.and_then(|s| s.source.clone()),
            user_agent: last.and_then(|s| s.user_agent.clone()),
            details: serde_json::json!({
                "failures": self.failures,
                "accounts": self.accounts.len(),
                "sources": self.sources.len(),
                "top_sources": self.top_sources(),
                "first_seq": self.first_seq,
                "last_seq": last.map_or(0, |s| s.seq),
            }),
        }
    }
}

/// The attacks `seen` (entries in seq order) shows at `now`: the three guessing patterns
/// count the entries of the last `window_secs`; a replay or a refused administrator is one
/// finding per entry.
pub fn detect(seen: &[Seen], t: &Thresholds, now: i64) -> Vec<Finding> {
    let since = now - t.window_secs;
    let bucket = now / t.window_secs.max(1);
    let recent = seen.iter().filter(|s| s.at > since);
    let mut all = Group::default();
    // Successes count once per account: an attacker cannot pad the failure share by signing
    // in to their own account again and again.
    let mut signed_in_accounts: BTreeSet<&str> = BTreeSet::new();
    let mut by_source: BTreeMap<&str, Group> = BTreeMap::new();
    let mut by_account: BTreeMap<&str, Group> = BTreeMap::new();
    let mut out = Vec::new();
    for s in recent {
        match s.kind {
            Kind::Failed => {
                all.add(s);
                if let Some(src) = s.source.as_deref() {
                    by_source.entry(src).or_default().add(s);
                }
                let account = s.account.as_deref().unwrap_or(&s.target);
                by_account.entry(account).or_default().add(s);
            }
            Kind::SignedIn => {
                signed_in_accounts.insert(&s.target);
            }
            Kind::CodeReplayed | Kind::RefreshReplayed | Kind::AdminRefused => {
                let (d, key) = match s.kind {
                    // One entry per grant (the replay that revoked it): one alert each.
                    Kind::CodeReplayed => (Detector::CodeReplay, format!("seq:{}", s.seq)),
                    Kind::RefreshReplayed => {
                        (Detector::RefreshTokenReplay, format!("seq:{}", s.seq))
                    }
                    // One alert per administrator and window, however many refusals.
                    _ => (
                        Detector::AdminOutsidePolicy,
                        format!("{}:{bucket}", s.target),
                    ),
                };
                out.push(Finding {
                    detector: d,
                    subject: s.target.clone(),
                    key: format!("{}:{key}", d.as_str()),
                    target: s.target.clone(),
                    source: s.source.clone(),
                    user_agent: s.user_agent.clone(),
                    details: serde_json::json!({"seq": s.seq}),
                });
            }
        }
    }
    for (src, g) in &by_source {
        if g.accounts.len() as i64 >= t.spraying_accounts {
            out.push(g.finding(
                Detector::PasswordSpraying,
                (*src).to_owned(),
                "unknown".into(),
                bucket,
            ));
        }
    }
    for (account, g) in &by_account {
        if g.failures >= t.brute_force_failures {
            // The user, when the e-mail is an account; else the pseudonym.
            let target = g.targets.iter().next().map_or("unknown", |t| *t);
            let subject = if target == "unknown" {
                format!("account {account}")
            } else {
                target.to_owned()
            };
            out.push(g.finding(Detector::BruteForce, subject, target.to_owned(), bucket));
        }
    }
    let signed_in = signed_in_accounts.len() as i64;
    let attempts = all.failures + signed_in;
    if all.failures >= t.stuffing_failures
        && all.sources.len() as i64 >= t.stuffing_sources
        && all.accounts.len() as i64 >= t.stuffing_accounts
        && all.failures * 100 >= t.stuffing_failure_percent * attempts
    {
        let mut f = all.finding(
            Detector::CredentialStuffing,
            "all".into(),
            "unknown".into(),
            bucket,
        );
        f.details["signed_in"] = signed_in.into();
        out.push(f);
    }
    // Real accounts before e-mails that are none, so decoys cannot crowd them out of a
    // node's alerts for the window.
    out.sort_by(|a, b| {
        a.detector
            .cmp(&b.detector)
            .then((a.target == "unknown").cmp(&(b.target == "unknown")))
            .then(a.key.cmp(&b.key))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        window_secs: 900,
        spraying_accounts: 10,
        stuffing_failures: 100,
        stuffing_sources: 10,
        stuffing_accounts: 10,
        stuffing_failure_percent: 80,
        brute_force_failures: 20,
    };

    fn failed(seq: i64, source: &str, account: &str) -> Seen {
        Seen {
            seq,
            at: 10_500 + seq,
            kind: Kind::Failed,
            target: "unknown".into(),
            source: Some(source.into()),
            user_agent: Some("curl".into()),
            account: Some(account.into()),
        }
    }

    fn found(seen: &[Seen]) -> Vec<(&'static str, String)> {
        detect(seen, &T, 11_000)
            .into_iter()
            .map(|f| (f.detector.as_str(), f.subject))
            .collect()
    }

    #[test]
    fn one_source_failing_on_ten_accounts_is_password_spraying() {
        let nine: Vec<Seen> = (1..10)
            .map(|i| failed(i, "203.0.113.7", &format!("a{i}")))
            .collect();
        assert_eq!(found(&nine), vec![]);
        let mut ten = nine.clone();
        ten.push(failed(10, "203.0.113.7", "a10"));
        assert_eq!(
            found(&ten),
            vec![("password_spraying", "203.0.113.7".into())]
        );
    }

    #[test]
    fn twenty_failures_on_one_account_from_many_sources_is_brute_force() {
        let mut seen: Vec<Seen> = (1..=20)
            .map(|i| failed(i, &format!("198.51.100.{i}"), "victim"))
            .collect();
        for s in &mut seen {
            s.target = "user-1".into();
        }
        assert_eq!(found(&seen), vec![("brute_force", "user-1".into())]);
    }

    #[test]
    fn many_sources_on_many_accounts_mostly_failing_is_credential_stuffing() {
        let seen: Vec<Seen> = (1..=100)
            .map(|i| failed(i, &format!("198.51.100.{}", i % 20), &format!("a{i}")))
            .collect();
        let f = found(&seen);
        assert!(f.contains(&("credential_stuffing", "all".into())), "{f:?}");
        // Enough successes among them bring the failure share under 80 %: no alert.
        let mut busy = seen.clone();
        busy.extend((101..=130).map(|i| Seen {
            kind: Kind::SignedIn,
            target: format!("user-{i}"),
            ..failed(i, "192.0.2.1", "ok")
        }));
        // The same account signing in again and again counts once: no cover.
        let mut padded = seen.clone();
        padded.extend((101..=130).map(|i| Seen {
            kind: Kind::SignedIn,
            target: "attacker".into(),
            ..failed(i, "192.0.2.1", "ok")
        }));
        assert!(
            found(&padded)
                .iter()
                .any(|(d, _)| *d == "credential_stuffing")
        );
        assert!(
            !found(&busy)
                .iter()
                .any(|(d, _)| *d == "credential_stuffing")
        );
    }

    #[test]
    fn brute_force_on_real_accounts_comes_before_decoys() {
        let mut seen = Vec::new();
        for (n, (account, target)) in [("decoy", "unknown"), ("real", "user-9")]
            .iter()
            .enumerate()
        {
            for i in 0..20 {
                let mut s = failed((n as i64) * 100 + i + 1, "198.51.100.1", account);
                s.target = (*target).into();
                seen.push(s);
            }
        }
        let f = detect(&seen, &T, 11_000);
        let brute: Vec<&str> = f
            .iter()
            .filter(|f| f.detector == Detector::BruteForce)
            .map(|f| f.target.as_str())
            .collect();
        assert_eq!(brute, ["user-9", "unknown"]);
    }

    #[test]
    fn entries_older_than_the_window_are_not_counted() {
        let mut seen: Vec<Seen> = (1..=10)
            .map(|i| failed(i, "203.0.113.7", &format!("a{i}")))
            .collect();
        seen[0].at = 11_000 - 900;
        assert_eq!(found(&seen), vec![]);
    }

    #[test]
    fn each_replay_and_refused_administrator_is_its_own_finding() {
        let replay = |seq, kind| Seen {
            kind,
            target: "client-1".into(),
            ..failed(seq, "192.0.2.9", "x")
        };
        let f = detect(
            &[
                replay(1, Kind::CodeReplayed),
                replay(2, Kind::CodeReplayed),
                replay(3, Kind::RefreshReplayed),
                replay(4, Kind::AdminRefused),
            ],
            &T,
            11_000,
        );
        let keys: Vec<&str> = f.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "code_replay:seq:1",
                "code_replay:seq:2",
                "refresh_token_replay:seq:3",
                "admin_outside_policy:client-1:12"
            ]
        );
        assert_eq!(f[0].source.as_deref(), Some("192.0.2.9"));
    }

    #[test]
    fn the_same_attack_has_the_same_key_within_a_window_and_a_new_one_after() {
        let seen: Vec<Seen> = (1..=10)
            .map(|i| failed(i, "203.0.113.7", &format!("a{i}")))
            .collect();
        let k = |now| detect(&seen, &T, now)[0].key.clone();
        assert_eq!(k(10_900), k(10_950));
        let later: Vec<Seen> = seen
            .iter()
            .map(|s| Seen {
                at: s.at + 900,
                ..s.clone()
            })
            .collect();
        assert_ne!(k(10_900), detect(&later, &T, 11_800)[0].key);
    }
}
