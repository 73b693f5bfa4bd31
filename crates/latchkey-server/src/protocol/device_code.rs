//! The device authorization grant's pure rules (RFC 8628): user codes (section 6.1) and what a
//! device's poll of the token endpoint is answered (section 3.5).

use latchkey_core::ErrorCode;

/// RFC 8628 section 6.1: consonants only (no vowels, so no words; no look-alike pairs), upper
/// case. Eight of them: 20^8, about 2^34.6 codes, guessed at most
/// `throttle.user_codes_per_source` times per window from one address.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const USER_CODE_LEN: usize = 8;

/// The grant type of the token request (RFC 8628 section 3.4), also what a client's
/// `grant_types` lists.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// By how much `slow_down` lengthens the interval (RFC 8628 section 3.5).
pub const SLOW_DOWN_SECS: i64 = 5;

/// A user code from `random` bytes (uniform: bytes at or above 240 are skipped, 240 being the
/// largest multiple of 20 below 256); `None` when they ran out first (ask for more).
pub fn user_code_from(random: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(USER_CODE_LEN);
    for b in random {
        if *b >= 240 {
            continue;
        }
        out.push(USER_CODE_ALPHABET[usize::from(*b % 20)] as char);
        if out.len() == USER_CODE_LEN {
            return Some(out);
        }
    }
    None
}

/// What the user is shown and types: `WDJB-MJHT`.
pub fn display(code: &str) -> String {
    if code.len() == USER_CODE_LEN {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

/// The code as typed, in its stored form: case, spaces and dashes do not matter (section 6.1);
/// `None` when it cannot be a user code at all.
pub fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// Where a device authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The user has not answered yet.
    Pending,
    /// The user approved; the next poll takes the grant.
    Approved,
    /// The user denied, or could not sign in as the client requires.
    Denied,
    /// A poll took the approval: the device_code is spent.
    Used,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Used => "used",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "approved" => Status::Approved,
            "denied" => Status::Denied,
            "used" => Status::Used,
            _ => return None,
        })
    }
}

/// A poll as the stored authorization sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    pub status: Status,
    pub expires_at: i64,
    pub interval: i64,
    /// The previous poll, if any.
    pub last_polled_at: Option<i64>,
}

/// The answer to a poll at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollAnswer {
    /// Take the approval and issue tokens.
    Issue,
    /// An error for the device; `interval`: the interval from now on (slow_down raised it).
    Refuse { code: ErrorCode, interval: i64 },
}

/// RFC 8628 section 3.5. Expiry comes first (an expired request is never issued); a spent code
/// is `invalid_grant`; a device polling sooner than its interval after its previous poll is told
/// `slow_down` and its interval grows by five seconds, for this and later polls.
pub fn poll(p: Polled, now: i64) -> PollAnswer {
    let refuse = |code, interval| PollAnswer::Refuse { code, interval };
    if now >= p.expires_at {
        return refuse(ErrorCode::ExpiredToken, p.interval);
    }
    match p.status {
        Status::Used => refuse(ErrorCode::InvalidGrant, p.interval),
        Status::Denied => refuse(ErrorCode::AccessDenied, p.interval),
        Status::Approved => PollAnswer::Issue,
        Status::Pending => match p.last_polled_at {
            Some(last) if now - last < p.interval => {
                refuse(ErrorCode::SlowDown, p.interval + SLOW_DOWN_SECS)
            }
            _ => refuse(ErrorCode::AuthorizationPending, p.interval),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_use_the_consonant_alphabet_without_bias() {
        let code = user_code_from(&[0, 19, 20, 239, 240, 255, 1, 2, 3, 4]).unwrap();
        // 240 and 255 are skipped; 20 and 239 wrap to 0 and 19.
        assert_eq!(code, "BZBZCDFG");
        assert_eq!(user_code_from(&[250; 64]), None);
        assert_eq!(display("BZBZCDFG"), "BZBZ-CDFG");
    }

    #[test]
    fn user_code_entry_ignores_case_spaces_and_dashes() {
        assert_eq!(normalize(" wdjb-mjht "), Some("WDJBMJHT".into()));
        assert_eq!(normalize("WDJB MJHT"), Some("WDJBMJHT".into()));
        assert_eq!(normalize("WDJB-MJH"), None);
        // Vowels and digits are never in a code.
        assert_eq!(normalize("WAJB-MJHT"), None);
        assert_eq!(normalize("WDJB-MJH7"), None);
    }

    fn pending(last: Option<i64>) -> Polled {
        Polled {
            status: Status::Pending,
            expires_at: 1_000,
            interval: 5,
            last_polled_at: last,
        }
    }

    #[test]
    fn polling_before_the_interval_is_slow_down_and_lengthens_it() {
        assert_eq!(
            poll(pending(Some(100)), 103),
            PollAnswer::Refuse {
                code: ErrorCode::SlowDown,
                interval: 10
            }
        );
        assert_eq!(
            poll(pending(Some(100)), 105),
            PollAnswer::Refuse {
                code: ErrorCode::AuthorizationPending,
                interval: 5
            }
        );
        assert_eq!(
            poll(pending(None), 100),
            PollAnswer::Refuse {
                code: ErrorCode::AuthorizationPending,
                interval: 5
            }
        );
    }

    #[test]
    fn an_expired_request_is_never_issued() {
        let mut p = pending(None);
        p.status = Status::Approved;
        assert_eq!(poll(p, 999), PollAnswer::Issue);
        assert_eq!(
            poll(p, 1_000),
            PollAnswer::Refuse {
                code: ErrorCode::ExpiredToken,
                interval: 5
            }
        );
    }

    #[test]
    fn a_denied_request_is_access_denied_and_a_used_one_invalid_grant() {
        let mut p = pending(None);
        p.status = Status::Denied;
        assert!(matches!(
            poll(p, 10),
            PollAnswer::Refuse {
                code: ErrorCode::AccessDenied,
                ..
            }
        ));
        p.status = Status::Used;
        assert!(matches!(
            poll(p, 10),
            PollAnswer::Refuse {
                code: ErrorCode::InvalidGrant,
                ..
            }
        ));
    }
}
