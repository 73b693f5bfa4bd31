//! Authentication strength without I/O: which `acr` level and RFC 8176 `amr` values the
//! factors a session proved (and **when**) support, what level a request needs, and what is
//! missing.
//!
//! | acr   | satisfied by (factors fresh enough for the request)                          |
//! | ----- | ---------------------------------------------------------------------------- |
//! | `pwd` | a password, or a WebAuthn credential without user verification               |
//! | `mfa` | a password plus TOTP, a recovery code or a WebAuthn credential                |
//! | `phr` | a WebAuthn credential with user verification (a passkey), alone or after more |
//!
//! With `authentication.phr_requires_attestation` ([`Rules`]) only a passkey proven to be
//! hardware (`hw`: attested by a trusted root, not synced; see [`crate::attestation`]) reaches
//! `phr`; any other user-verifying passkey proves `mfa` (possession plus the PIN or biometric).
//!
//! A factor counts only if it was proven at or after the request's freshness bound (from
//! `max_age` or `prompt=login`), so a session's strength drops back as its factors age and a
//! token never claims more than is currently true. The required level is the highest of the
//! request's `acr_values` and essential `acr` claim, the client's minimum, the lab's policy and
//! the user's roles' policy; lab and role policy can be deferred while an enrolment grace
//! period lasts.

use latchkey_core::{Acr, Amr};
use serde::{Deserialize, Serialize};

/// How a factor was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Password,
    Totp,
    RecoveryCode,
    /// A WebAuthn assertion. `uv`: the authenticator verified the user (PIN, biometric);
    /// `synced`: the credential is backup-eligible, so its key is not bound to one device;
    /// `hw`: its attestation chained to a trusted root and it is not synced (a hardware key).
    Webauthn {
        uv: bool,
        synced: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        hw: bool,
    },
}

/// What this deployment asks of a factor beyond its kind (`[authentication]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rules {
    /// `phr` only from a hardware passkey (`hw`).
    pub phr_requires_attestation: bool,
}

impl Rules {
    pub fn of(config: &crate::config::Config) -> Rules {
        Rules {
            phr_requires_attestation: config.authentication.phr_requires_attestation,
        }
    }

    /// Whether a proof by `m` alone reaches `phr`.
    fn phishing_resistant(self, m: Method) -> bool {
        matches!(m, Method::Webauthn { uv: true, hw, .. } if hw || !self.phr_requires_attestation)
    }
}

impl Method {
    fn is_primary(self) -> bool {
        matches!(self, Method::Password | Method::Webauthn { .. })
    }

    fn amr(self) -> Vec<Amr> {
        match self {
            Method::Password => vec![Amr::Pwd],
            // RFC 8176 has no value for look-up secrets; `otp` is the nearest (a one-time code).
            Method::Totp | Method::RecoveryCode => vec![Amr::Otp],
            // `hwk` (RFC 8176: a hardware-secured key) only for a key whose attestation chained
            // to a trusted root and that is not synced off its device; any other key is `swk`
            // (proof of possession of a key, whatever holds it): an authenticator's own flags
            // are unsigned claims.
            Method::Webauthn { uv, hw, .. } => {
                let key = if hw { Amr::Hwk } else { Amr::Swk };
                if uv { vec![key, Amr::User] } else { vec![key] }
            }
        }
    }

    /// A short name for the audit log and pages.
    pub fn label(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::Totp => "authenticator app code",
            Method::RecoveryCode => "recovery code",
            Method::Webauthn { uv: true, .. } => "passkey",
            Method::Webauthn { uv: false, .. } => "security key",
        }
    }
}

/// A factor a session proved, and when (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Factor {
    #[serde(rename = "m")]
    pub method: Method,
    pub at: i64,
}

/// What the factors support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strength {
    pub acr: Acr,
    pub amr: Vec<Amr>,
    /// The earliest of the factors that make up this level (OIDC `auth_time`).
    pub auth_time: i64,
}

/// The strength of the factors proven at or after `since` (all factors when `None`) under
/// `rules`; `None` when no first factor (password or WebAuthn) is among them.
pub fn strength(factors: &[Factor], since: Option<i64>, rules: Rules) -> Option<Strength> {
    let fresh: Vec<Factor> = factors
        .iter()
        .copied()
        .filter(|f| since.is_none_or(|s| f.at >= s))
        .collect();
    let latest = |pred: &dyn Fn(Method) -> bool| {
        fresh
            .iter()
            .filter(|f| pred(f.method))
            .max_by_key(|f| f.at)
            .copied()
    };
    let passkey = latest(&|m| rules.phishing_resistant(m));
    let password = latest(&|m| m == Method::Password);
    let second = latest(&|m| {
        matches!(
            m,
            Method::Totp | Method::RecoveryCode | Method::Webauthn { .. }
        ) && !rules.phishing_resistant(m)
    });
    let used: Vec<Factor> = if let Some(p) = passkey {
        vec![p]
    } else if let (Some(p), Some(s)) = (password, second) {
        vec![p, s]
    } else if let Some(p) = password.or(latest(&Method::is_primary)) {
        vec![p]
    } else {
        return None;
    };
    let acr = match used.as_slice() {
        [f] if rules.phishing_resistant(f.method) => Acr::Phr,
        // A user-verifying passkey short of `phr` (not attested where that is required) is
        // still two factors in one: the key and the PIN or biometric that unlocked it.
        [f] if matches!(f.method, Method::Webauthn { uv: true, .. }) => Acr::Mfa,
        [_, _] => Acr::Mfa,
        _ => Acr::Pwd,
    };
    let mut amr: Vec<Amr> = Vec::new();
    for f in &used {
        for a in f.method.amr() {
            if !amr.contains(&a) {
                amr.push(a);
            }
        }
    }
    if acr > Acr::Pwd {
        amr.push(Amr::Mfa);
    }
    let auth_time = used.iter().map(|f| f.at).min().unwrap_or_default();
    Some(Strength {
        acr,
        amr,
        auth_time,
    })
}

/// Adds a newly proven factor, replacing an older proof of the same method.
pub fn record(factors: &mut Vec<Factor>, method: Method, at: i64) {
    factors.retain(|f| f.method != method);
    factors.push(Factor { method, at });
}

/// Where a level comes from, for pages and error descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Request,
    Client,
    Lab,
    Role,
}

/// The levels demanded of one login.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demands {
    /// From `acr_values` and an essential `acr` claim.
    pub request: Option<Acr>,
    pub client: Option<Acr>,
    pub lab: Option<Acr>,
    pub role: Option<Acr>,
}

impl Demands {
    /// The level all demands together require.
    pub fn level(&self) -> Acr {
        self.strictest().map_or(Acr::Pwd, |(a, _)| a)
    }

    /// The strictest demand and where it comes from.
    pub fn strictest(&self) -> Option<(Acr, Source)> {
        [
            (self.request, Source::Request),
            (self.client, Source::Client),
            (self.lab, Source::Lab),
            (self.role, Source::Role),
        ]
        .into_iter()
        .filter_map(|(a, s)| a.map(|a| (a, s)))
        .max_by_key(|(a, _)| *a)
    }

    /// The level when lab and role policy are deferred (enrolment grace).
    pub fn without_policy(&self) -> Acr {
        Demands {
            lab: None,
            role: None,
            ..*self
        }
        .level()
    }
}

/// The level a list of acr values asks for: the weakest known one (any listed value is
/// acceptable); `None` when none is known to Latchkey.
pub fn requested_level<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Acr> {
    values.into_iter().filter_map(|v| v.parse().ok()).min()
}

/// Why a `claims` request parameter cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimsError {
    /// Not a JSON object: `invalid_request`.
    Malformed(String),
    /// An essential `acr` names only values this provider does not know (they are
    /// case-sensitive: `PHR` is not `phr`). OIDC Core 5.5.1.1: the requirement cannot be met,
    /// which is a failed authentication, not a reason to issue another level.
    UnknownEssentialAcr(Vec<String>),
}

/// The essential `acr` of an OIDC `claims` request parameter (OIDC Core 5.5.1.1), from its
/// `id_token` or `userinfo` member.
pub fn essential_acr(claims: &str) -> Result<Option<Acr>, ClaimsError> {
    let v: serde_json::Value = serde_json::from_str(claims)
        .map_err(|e| ClaimsError::Malformed(format!("`claims` is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ClaimsError::Malformed(
            "`claims` must be a JSON object".into(),
        ));
    }
    let mut level = None;
    for member in ["id_token", "userinfo"] {
        let Some(acr) = v.get(member).and_then(|m| m.get("acr")) else {
            continue;
        };
        if acr.get("essential").and_then(|e| e.as_bool()) != Some(true) {
            continue;
        }
        // OIDC Core 5.5.1: `value` is a string, `values` an array of strings. A member of
        // another shape is malformed, not absent: reading it as "no values" would issue any
        // level for a client that demanded one.
        let malformed = |m: &str| {
            ClaimsError::Malformed(format!(
                "`claims`: the essential acr's `{m}` must be {}",
                if m == "value" {
                    "a string"
                } else {
                    "a non-empty array of strings"
                }
            ))
        };
        let mut values: Vec<&str> = Vec::new();
        if let Some(v) = acr.get("value") {
            values.push(v.as_str().ok_or_else(|| malformed("value"))?);
        }
        if let Some(a) = acr.get("values") {
            let a = a
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| malformed("values"))?;
            for v in a {
                values.push(v.as_str().ok_or_else(|| malformed("values"))?);
            }
        }
        match requested_level(values.iter().copied()) {
            Some(l) => level = level.max(Some(l)),
            None if !values.is_empty() => {
                return Err(ClaimsError::UnknownEssentialAcr(
                    values.into_iter().map(str::to_owned).collect(),
                ));
            }
            // Essential without values: any level satisfies it.
            None => {}
        }
    }
    Ok(level)
}

/// What a session lacks for a required level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gap {
    /// The level is met: these are the token's `acr`, `amr`, `auth_time`.
    Met(Strength),
    /// No fresh first factor: ask for a password or passkey.
    FirstFactor,
    /// A fresh first factor, but not the level: ask only for what is missing.
    StepUp { have: Acr, need: Acr },
}

/// Compares the session's fresh factors with the required level.
pub fn assess(factors: &[Factor], since: Option<i64>, need: Acr, rules: Rules) -> Gap {
    match strength(factors, since, rules) {
        None => Gap::FirstFactor,
        Some(s) if s.acr >= need => Gap::Met(s),
        Some(s) => Gap::StepUp { have: s.acr, need },
    }
}

/// The second factors a user has enrolled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enrolled {
    pub totp: bool,
    pub webauthn: usize,
    pub passkeys: usize,
    pub recovery_codes: usize,
    /// WebAuthn credentials that are hardware keys now: attested at registration by a root
    /// still trusted, and not synced. Any of them may verify its user and reach `phr`.
    pub hardware: usize,
    /// Of those, the passkeys (they verify their user by design).
    pub hardware_passkeys: usize,
}

impl Enrolled {
    /// The highest level these factors can reach under `rules`.
    pub fn best(&self, rules: Rules) -> Acr {
        let phr = if rules.phr_requires_attestation {
            self.hardware_passkeys
        } else {
            self.passkeys
        };
        if phr > 0 {
            Acr::Phr
        } else if self.totp || self.webauthn > 0 {
            Acr::Mfa
        } else {
            Acr::Pwd
        }
    }
}

/// The factors that can lift a session with a fresh first factor to `need`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offer {
    pub totp: bool,
    /// A WebAuthn ceremony (with user verification required when `need` is `phr`).
    pub webauthn: bool,
    pub recovery_code: bool,
}

impl Offer {
    pub fn any(&self) -> bool {
        self.totp || self.webauthn || self.recovery_code
    }
}

pub fn offer(enrolled: &Enrolled, need: Acr, rules: Rules) -> Offer {
    match need {
        Acr::Pwd => Offer::default(),
        Acr::Mfa => Offer {
            totp: enrolled.totp,
            webauthn: enrolled.webauthn > 0,
            recovery_code: enrolled.recovery_codes > 0,
        },
        // Only a user-verifying WebAuthn credential reaches `phr`; any credential may do UV,
        // but only a hardware key where the rules ask for attestation.
        Acr::Phr => Offer {
            webauthn: if rules.phr_requires_attestation {
                enrolled.hardware > 0
            } else {
                enrolled.webauthn > 0
            },
            ..Offer::default()
        },
    }
}

/// An enrolment grace period of a lab policy, as the user stands in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grace {
    pub days: Option<i64>,
    pub logins: Option<i64>,
    /// When the grace started: the policy was set or the member joined, whichever is later
    /// (`None`: now).
    pub started_at: Option<i64>,
    /// Sign-ins on which the member deferred enrolment.
    pub used_logins: i64,
}

impl Grace {
    /// Whether the user may still defer enrolment (counting this sign-in).
    pub fn open(&self, now: i64) -> bool {
        if self.days.is_none() && self.logins.is_none() {
            return false;
        }
        let started = self.started_at.unwrap_or(now);
        let days_ok = self.days.is_none_or(|d| now - started < d * 86_400);
        let logins_ok = self.logins.is_none_or(|l| self.used_logins < l);
        days_ok && logins_ok
    }

    /// Whole days left (rounded up), if the grace is counted in days.
    pub fn days_left(&self, now: i64) -> Option<i64> {
        let started = self.started_at.unwrap_or(now);
        self.days
            .map(|d| ((started + d * 86_400 - now).max(0) + 86_399) / 86_400)
    }

    pub fn logins_left(&self) -> Option<i64> {
        self.logins.map(|l| (l - self.used_logins).max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The rules by default (no attestation required); tests of the rules call `super::`.
    fn strength(factors: &[Factor], since: Option<i64>) -> Option<Strength> {
        super::strength(factors, since, Rules::default())
    }
    fn assess(factors: &[Factor], since: Option<i64>, need: Acr) -> Gap {
        super::assess(factors, since, need, Rules::default())
    }
    fn offer(enrolled: &Enrolled, need: Acr) -> Offer {
        super::offer(enrolled, need, Rules::default())
    }
    const ATTESTED: Rules = Rules {
        phr_requires_attestation: true,
    };

    fn f(method: Method, at: i64) -> Factor {
        Factor { method, at }
    }
    const PASSKEY: Method = Method::Webauthn {
        uv: true,
        synced: false,
        hw: false,
    };
    const SECURITY_KEY: Method = Method::Webauthn {
        uv: false,
        synced: false,
        hw: false,
    };
    const HARDWARE_PASSKEY: Method = Method::Webauthn {
        uv: true,
        synced: false,
        hw: true,
    };

    /// RFC 8176 `hwk`: a key whose attestation chained to a trusted root (and that is not
    /// synced) says so, in place of `swk`.
    #[test]
    fn rfc8176_an_attested_device_bound_key_claims_hwk() {
        let s = strength(&[f(HARDWARE_PASSKEY, 5)], None).unwrap();
        assert_eq!(s.acr, Acr::Phr);
        assert_eq!(s.amr, vec![Amr::Hwk, Amr::User, Amr::Mfa]);
        let key = Method::Webauthn {
            uv: false,
            synced: false,
            hw: true,
        };
        let s = strength(&[f(Method::Password, 1), f(key, 2)], None).unwrap();
        assert_eq!(s.amr, vec![Amr::Pwd, Amr::Hwk, Amr::Mfa]);
    }

    /// `authentication.phr_requires_attestation`: an unattested passkey proves `mfa` (the key
    /// and its PIN or biometric), a hardware passkey still `phr`; the step-up for `phr` is
    /// offered only to a user with a hardware passkey.
    #[test]
    fn phr_requires_attestation_demotes_an_unattested_passkey_to_mfa() {
        let s = super::strength(&[f(PASSKEY, 5)], None, ATTESTED).unwrap();
        assert_eq!(s.acr, Acr::Mfa);
        assert_eq!(s.amr, vec![Amr::Swk, Amr::User, Amr::Mfa]);
        let s = super::strength(&[f(Method::Password, 1), f(PASSKEY, 5)], None, ATTESTED).unwrap();
        assert_eq!((s.acr, s.auth_time), (Acr::Mfa, 1));
        let s = super::strength(&[f(HARDWARE_PASSKEY, 5)], None, ATTESTED).unwrap();
        assert_eq!(s.acr, Acr::Phr);
        assert!(matches!(
            super::assess(&[f(PASSKEY, 5)], None, Acr::Phr, ATTESTED),
            Gap::StepUp {
                have: Acr::Mfa,
                need: Acr::Phr
            }
        ));
        let some = Enrolled {
            webauthn: 1,
            passkeys: 1,
            ..Enrolled::default()
        };
        assert!(!super::offer(&some, Acr::Phr, ATTESTED).any());
        assert!(super::offer(&some, Acr::Phr, Rules::default()).any());
        assert_eq!(some.best(ATTESTED), Acr::Mfa);
        assert_eq!(some.best(Rules::default()), Acr::Phr);
        let hardware = Enrolled {
            hardware: 1,
            hardware_passkeys: 1,
            ..some
        };
        assert!(super::offer(&hardware, Acr::Phr, ATTESTED).any());
        assert_eq!(hardware.best(ATTESTED), Acr::Phr);
    }

    /// Sessions stored before `hw` existed read back as software keys.
    #[test]
    fn a_factor_stored_without_hw_reads_as_a_software_key() {
        let f: Factor =
            serde_json::from_str(r#"{"m":{"webauthn":{"uv":true,"synced":false}},"at":3}"#)
                .unwrap();
        assert_eq!(f.method, PASSKEY);
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"m":{"webauthn":{"uv":true,"synced":false}},"at":3}"#
        );
    }

    #[test]
    fn password_alone_is_pwd() {
        let s = strength(&[f(Method::Password, 10)], None).unwrap();
        assert_eq!((s.acr, s.amr, s.auth_time), (Acr::Pwd, vec![Amr::Pwd], 10));
    }

    #[test]
    fn password_and_totp_is_mfa_from_the_earlier_factor() {
        let s = strength(&[f(Method::Password, 10), f(Method::Totp, 20)], None).unwrap();
        assert_eq!(s.acr, Acr::Mfa);
        assert_eq!(s.amr, vec![Amr::Pwd, Amr::Otp, Amr::Mfa]);
        assert_eq!(s.auth_time, 10);
    }

    #[test]
    fn password_and_security_key_is_mfa_not_phr() {
        let s = strength(&[f(Method::Password, 10), f(SECURITY_KEY, 11)], None).unwrap();
        assert_eq!(s.acr, Acr::Mfa);
        assert_eq!(s.amr, vec![Amr::Pwd, Amr::Swk, Amr::Mfa]);
    }

    /// RFC 8176 `hwk` claims a hardware-secured key: a key without verified attestation
    /// never claims it, device-bound or synced.
    #[test]
    fn rfc8176_no_webauthn_key_claims_hwk_without_verified_attestation() {
        for uv in [false, true] {
            for synced in [false, true] {
                let s = strength(
                    &[
                        f(Method::Password, 1),
                        f(
                            Method::Webauthn {
                                uv,
                                synced,
                                hw: false,
                            },
                            2,
                        ),
                    ],
                    None,
                )
                .unwrap();
                assert!(!s.amr.contains(&Amr::Hwk), "{uv} {synced}: {:?}", s.amr);
                assert!(s.amr.contains(&Amr::Swk));
            }
        }
    }

    #[test]
    fn user_verifying_passkey_is_phr() {
        let synced = Method::Webauthn {
            uv: true,
            synced: true,
            hw: false,
        };
        let s = strength(&[f(synced, 5)], None).unwrap();
        assert_eq!(s.acr, Acr::Phr);
        assert_eq!(s.amr, vec![Amr::Swk, Amr::User, Amr::Mfa]);
        let s = strength(&[f(Method::Password, 1), f(PASSKEY, 5)], None).unwrap();
        assert_eq!((s.acr, s.auth_time), (Acr::Phr, 5));
    }

    #[test]
    fn a_second_factor_alone_authenticates_nobody() {
        assert_eq!(strength(&[f(Method::Totp, 1)], None), None);
        assert_eq!(strength(&[f(Method::RecoveryCode, 1)], None), None);
        assert_eq!(
            assess(&[f(Method::Totp, 1)], None, Acr::Pwd),
            Gap::FirstFactor
        );
    }

    #[test]
    fn strength_drops_back_as_factors_age() {
        let factors = [f(Method::Password, 100), f(Method::Totp, 100)];
        assert_eq!(strength(&factors, Some(50)).unwrap().acr, Acr::Mfa);
        assert_eq!(strength(&factors, Some(101)), None);
        // A fresh password after an old TOTP code is one factor again.
        let factors = [f(Method::Totp, 100), f(Method::Password, 200)];
        assert_eq!(strength(&factors, Some(150)).unwrap().acr, Acr::Pwd);
        assert_eq!(strength(&factors, None).unwrap().acr, Acr::Mfa);
    }

    #[test]
    fn step_up_asks_only_for_what_is_missing() {
        let factors = [f(Method::Password, 100)];
        assert_eq!(
            assess(&factors, None, Acr::Mfa),
            Gap::StepUp {
                have: Acr::Pwd,
                need: Acr::Mfa
            }
        );
        assert!(matches!(assess(&factors, None, Acr::Pwd), Gap::Met(_)));
        assert_eq!(assess(&factors, Some(200), Acr::Pwd), Gap::FirstFactor);
    }

    #[test]
    fn record_replaces_an_older_proof_of_the_same_method() {
        let mut v = vec![f(Method::Password, 1), f(Method::Totp, 2)];
        record(&mut v, Method::Password, 9);
        assert_eq!(v, vec![f(Method::Totp, 2), f(Method::Password, 9)]);
    }

    #[test]
    fn demands_take_the_strictest_and_policy_can_be_deferred() {
        let d = Demands {
            request: Some(Acr::Mfa),
            client: None,
            lab: Some(Acr::Phr),
            role: None,
        };
        assert_eq!(d.strictest(), Some((Acr::Phr, Source::Lab)));
        assert_eq!(d.without_policy(), Acr::Mfa);
        assert_eq!(Demands::default().level(), Acr::Pwd);
    }

    #[test]
    fn acr_values_ask_for_the_weakest_known_value() {
        assert_eq!(requested_level(["phr", "mfa"]), Some(Acr::Mfa));
        assert_eq!(requested_level(["urn:other"]), None);
    }

    #[test]
    fn essential_acr_claims_are_read_from_either_member() {
        let c = r#"{"id_token":{"acr":{"essential":true,"values":["phr"]}}}"#;
        assert_eq!(essential_acr(c), Ok(Some(Acr::Phr)));
        let c = r#"{"userinfo":{"acr":{"essential":true,"value":"mfa"}}}"#;
        assert_eq!(essential_acr(c), Ok(Some(Acr::Mfa)));
        let c = r#"{"id_token":{"acr":{"values":["phr"]}}}"#;
        assert_eq!(essential_acr(c), Ok(None));
        assert!(essential_acr("[1]").is_err());
        assert!(essential_acr("{").is_err());
    }

    #[test]
    fn offers_only_factors_that_reach_the_level() {
        let all = Enrolled {
            totp: true,
            webauthn: 1,
            passkeys: 1,
            recovery_codes: 10,
            hardware: 0,
            hardware_passkeys: 0,
        };
        let o = offer(&all, Acr::Mfa);
        assert!(o.totp && o.webauthn && o.recovery_code);
        let o = offer(&all, Acr::Phr);
        assert!(!o.totp && o.webauthn && !o.recovery_code);
        assert!(!offer(&Enrolled::default(), Acr::Mfa).any());
    }

    #[test]
    fn grace_counts_days_or_logins() {
        let g = Grace {
            days: Some(7),
            logins: None,
            started_at: Some(0),
            used_logins: 100,
        };
        assert!(g.open(6 * 86_400));
        assert!(!g.open(7 * 86_400));
        assert_eq!(g.days_left(6 * 86_400 + 1), Some(1));
        let g = Grace {
            days: None,
            logins: Some(3),
            started_at: Some(0),
            used_logins: 2,
        };
        assert!(g.open(1_000_000));
        assert!(
            !Grace {
                used_logins: 3,
                ..g
            }
            .open(0)
        );
        let none = Grace {
            days: None,
            logins: None,
            started_at: None,
            used_logins: 0,
        };
        assert!(!none.open(0));
    }
}
