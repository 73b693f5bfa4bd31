//! The next step of a login flow (OIDC Core section 3.1.2.3-3.1.2.4): whether the user counts
//! as signed in for the request (`prompt=login`, `max_age`), which factor is missing for the
//! level demanded, whether consent is needed, or whether a code can be issued.

use super::super::strength::{Demands, Enrolled, Factor, Gap, Grace, Strength, assess, offer};
use super::AuthRequest;
use latchkey_core::{Acr, ErrorCode};

/// Whether the session's factors include a first factor fresh enough for this request, i.e.
/// the user counts as signed in for it (the lab is decided only then).
pub fn signed_in(req: &AuthRequest, factors: &[Factor], now: i64) -> bool {
    match fresh_since(req, now) {
        None => false,
        Some(since) => !matches!(assess(factors, since, Acr::Pwd), Gap::FirstFactor),
    }
}

/// What is known about the signed-in user when deciding a step.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    /// The factors the session proved, and when.
    pub factors: &'a [Factor],
    /// The levels the request, the client, the lab and the user's roles demand.
    pub demands: Demands,
    /// The factors the user has enrolled.
    pub enrolled: Enrolled,
    /// The lab policy's enrolment grace as this user stands in it (`None`: no grace).
    pub grace: Option<Grace>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Ask for a first factor (password or passkey).
    Login,
    /// Ask only for the missing factor.
    StepUp {
        need: Acr,
    },
    /// The user has no factor that reaches `need`: enrol one now. `can_defer` while the
    /// policy's grace period lasts and nothing but policy demands it.
    Enrol {
        need: Acr,
        can_defer: bool,
    },
    Consent,
    /// Issue a code carrying this strength.
    Issue(Strength),
    /// Send an error to the client (`prompt=none`, or a level the user cannot reach).
    Refuse(ErrorCode),
}

/// The earliest time a factor may have been proven to count for this request: `max_age`
/// seconds ago, or this flow's start with `prompt=login` / `max_age=0`. Factors proven within
/// the flow always count. The outer `None`: the request demands an authentication in this
/// flow and none happened yet.
pub fn fresh_since(req: &AuthRequest, now: i64) -> Option<Option<i64>> {
    // max_age=0 means "authenticate now", like prompt=login (OIDC Core errata).
    if req.prompt.login || req.max_age == Some(0) {
        return req.authenticated.then_some(Some(req.requested_at));
    }
    Some(req.max_age.map(|m| {
        if req.authenticated {
            (now - m).min(req.requested_at)
        } else {
            now - m
        }
    }))
}

/// Decides the next step of a flow from the request, the user's standing and the consent on
/// record.
pub fn next_step(
    req: &AuthRequest,
    standing: Option<Standing<'_>>,
    consent_on_record: bool,
    now: i64,
) -> Next {
    let login = || {
        if req.prompt.none {
            Next::Refuse(ErrorCode::LoginRequired)
        } else {
            Next::Login
        }
    };
    let Some(since) = fresh_since(req, now) else {
        return login();
    };
    let Some(st) = standing else {
        return login();
    };
    let grace_open = st.grace.is_some_and(|g| g.open(now));
    // A deferral was granted (and counted) while the grace was open; it holds for this flow.
    let need = if req.deferred_enrolment && st.grace.is_some() {
        st.demands.without_policy()
    } else {
        st.demands.level()
    };
    let strength = match assess(st.factors, since, need) {
        Gap::FirstFactor => return login(),
        Gap::Met(s) => s,
        Gap::StepUp { have, need } => {
            let interactive = |n: Next| {
                if req.prompt.none {
                    Next::Refuse(ErrorCode::InteractionRequired)
                } else {
                    n
                }
            };
            if offer(&st.enrolled, need).any() {
                return interactive(Next::StepUp { need });
            }
            if grace_open {
                return interactive(Next::Enrol {
                    need,
                    can_defer: have >= st.demands.without_policy(),
                });
            }
            return Next::Refuse(ErrorCode::UnmetAuthenticationRequirements);
        }
    };
    if req.prompt.consent || !consent_on_record {
        return if req.prompt.none {
            Next::Refuse(ErrorCode::ConsentRequired)
        } else {
            Next::Consent
        };
    }
    Next::Issue(strength)
}
